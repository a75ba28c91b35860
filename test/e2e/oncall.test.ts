/**
 * The on-call view (`#/oncall?deployment=`) in a real Chromium against a real server seeded through the API
 * (ops-seed.ts): the latency and error figures equal the traffic route's, the firing alerts are split page vs
 * ticket as the alerts route says, with their runbook links; drift, quality and completeness equal the newest
 * window's; deploys are listed and marked on the charts. A deployer silences an alert from the page with the
 * keyboard (GET /api/v1/alerts/silences then has it and the alert's status is silenced); a viewer sees no Silence
 * button. axe finds nothing in light or dark, and the page logs no error.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fmtMs, fmtNum, fmtPct } from '../../web/src/format.ts';
import { fixturesDir } from '../helpers/server.ts';
import { CSP_PROBE, axe, cspViolations, chromiumPath, describeViolations, openBrowser, screenshot, type BrowserSession, docsScreenshot } from './browser.ts';
import { BUSY, DEMAND, RULE_NAME, RUNBOOK, seed, signIn, until, type Seeded } from './ops-seed.ts';

const HOUR = 3_600_000;

interface Alert {
  fingerprint: string;
  alertname: string;
  labels: Record<string, string>;
  severity: 'page' | 'ticket';
  state: string;
  status: string;
  silencedBy: string[];
  annotations: { runbook_url?: string };
}

describe.skipIf(!chromiumPath)(`on-call view${chromiumPath ? '' : ' (skipped: no Chromium at /usr/bin/chromium; install Debian package chromium)'}`, () => {
  let s: Seeded;
  let b: BrowserSession;
  const text = async (testid: string) => (await b.page.getByTestId(testid).textContent())?.trim();
  const alerts = async (): Promise<Alert[]> => (await s.get(`/api/v1/alerts?deployment=${BUSY}`)).alerts;
  const open = async (key: string, deployment = BUSY) => {
    await signIn(b.page, b.problems, `${s.srv.url}/#/oncall?deployment=${deployment}`, key);
    await b.page.getByTestId('oncall-requests').waitFor();
  };

  beforeAll(async () => {
    s = await seed();
    b = await openBrowser({ viewport: { width: 1400, height: 900 } });
    await b.context.addInitScript(CSP_PROBE);
  }, 120_000);
  afterAll(async () => {
    await b?.close();
    await s?.srv.close();
  });

  it('shows the last 6 h of latency and errors as the traffic route gives them', async () => {
    await open(s.keys.deployer);
    const t = await s.get(`/api/v1/deployments/${BUSY}/traffic?step=minute&since=${Date.now() - 6 * HOUR}`);
    expect(t.totals.requests).toBe(24);
    expect(await text('oncall-requests')).toBe(fmtNum(t.totals.requests));
    expect(await text('oncall-availability')).toBe(fmtPct(t.totals.availability, 2));
    expect(await text('oncall-error-rate')).toBe(fmtPct(t.totals.errorRate, 2));
    expect(await text('oncall-p50')).toBe(fmtMs(t.totals.p50Ms));
    expect(await text('oncall-p95')).toBe(fmtMs(t.totals.p95Ms));
    expect(await text('oncall-p99')).toBe(fmtMs(t.totals.p99Ms));
    for (const e of t.totals.errors as { code: string; count: number }[]) expect(await text(`oncall-errors-${e.code}`)).toBe(fmtNum(e.count));
    const latency = await b.page.getByTestId('oncall-chart-latency').locator('[role="img"]').getAttribute('aria-label');
    expect(latency).toContain(`p99 ${fmtMs(t.totals.p99Ms)} overall`);
    expect(await b.page.getByRole('button', { name: '6 h' }).getAttribute('aria-pressed')).toBe('true');
  });

  it('lists deploys on the charts\' time axis, only those of the range', async () => {
    // A change 7 h ago, before the 6 h range: the view asks the history route for the range only (since=).
    await s.srv.warden.stores.metadata.setAlias(BUSY, 'e2e-old', 1, Date.now() - 7 * HOUR, { kind: 'alias', strategy: 'direct', actor: 'e2e', reason: 'before the range', data: {} });
    await b.page.getByRole('button', { name: 'Refresh', exact: true }).click();
    const all = (await s.get(`/api/v1/deployments/${BUSY}/history`)).events as { at: number; kind: string; toVersion: number; reason: string | null }[];
    expect(all.some((e) => e.reason === 'before the range')).toBe(true);
    const history = (await s.get(`/api/v1/deployments/${BUSY}/history?since=${Date.now() - 6 * HOUR}`)).events as { at: number; kind: string; toVersion: number }[];
    expect(history.length).toBeGreaterThan(0);
    expect(history.length).toBeLessThan(all.length);
    const rows = b.page.getByTestId('oncall-history').locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(history.length);
    expect(await b.page.getByTestId('oncall-history').textContent()).not.toContain('before the range');
    expect(await rows.first().textContent()).toContain(`${history.at(-1)!.kind} v${history.at(-1)!.toVersion}`);
    // Each event is a marker named in the chart's text alternative.
    const summary = await b.page.getByTestId('oncall-chart-errors').locator('[role="img"]').getAttribute('aria-label');
    expect(summary).toContain(`${history[0]!.kind} v${history[0]!.toVersion} at`);
  });

  it('splits the firing alerts into page and ticket, each with its runbook', async () => {
    const firing = (await alerts()).filter((a) => a.state === 'firing');
    for (const sev of ['page', 'ticket'] as const) {
      const want = firing.filter((a) => a.severity === sev);
      expect(want.length, `${sev} alerts firing`).toBeGreaterThan(0);
      const items = b.page.getByTestId(`oncall-${sev}-alerts`).locator('li.oncall-alert');
      expect(await items.count()).toBe(want.length);
      for (const a of want) expect(await b.page.getByTestId(`oncall-${sev}-alerts`).getByTestId(`alert-${a.fingerprint}`).count()).toBe(1);
    }
    const rule = firing.find((a) => a.alertname === RULE_NAME)!;
    const link = b.page.getByTestId(`alert-${rule.fingerprint}`).getByRole('link', { name: /Runbook/ });
    expect(await link.getAttribute('href')).toBe(RUNBOOK);
    // A repository-relative runbook is shown as its path (nothing at that path on this server).
    const slo = firing.find((a) => a.alertname === 'SLOErrorBudgetBurn')!;
    expect(await b.page.getByTestId(`alert-${slo.fingerprint}`).getByTestId('runbook').textContent()).toContain(slo.annotations.runbook_url!);
  });

  it('shows the newest window\'s drift, quality failures and completeness', async () => {
    const summaries = (await s.get(`/api/v1/models/${BUSY}/versions/1/monitoring/windows?summary=true&since=${Date.now() - 7 * 24 * HOUR}`)).windows;
    const w = summaries.at(-1);
    const full = (await s.get(`/api/v1/models/${BUSY}/versions/1/monitoring/windows?since=${w.windowStart}&limit=1`)).windows[0];
    expect(await text('oncall-dataset-drift')).toBe(w.datasetDrift ? 'yes' : 'no');
    const features = w.features.filter((f: { role: string }) => f.role === 'feature');
    expect(await text('oncall-drifted')).toBe(`${features.filter((f: { drift: boolean }) => f.drift).length} of ${features.length}`);
    expect(await text('oncall-quality-failures')).toBe(fmtNum(w.qualityFailures));
    // Two refused rows with no humidity: its completeness check fails in the current window.
    const hum = full.quality.checks.find((c: { column: string; metric: string }) => c.column === 'hum' && c.metric === 'completeness');
    expect(hum.failed).toBe(true);
    expect(w.qualityFailures).toBeGreaterThan(0);
    expect(await text('oncall-completeness-hum')).toBe(fmtPct(hum.value, 1));
  });

  it('has no accessibility violation in light and dark (with the silence form open), and no console error', async () => {
    const rule = (await alerts()).find((a) => a.alertname === RULE_NAME && a.state === 'firing')!;
    const item = b.page.getByTestId(`alert-${rule.fingerprint}`);
    await item.getByTestId('silence-open').click();
    await item.getByTestId('silence-form').waitFor();
    const light = await axe(b.page);
    expect(light, describeViolations(light)).toEqual([]);
    await b.page.keyboard.press('Escape');
    await expect.poll(() => item.getByTestId('silence-form').count()).toBe(0);
    await screenshot(b.page, 'oncall');
    await docsScreenshot(b.page, 'oncall');

    await b.page.getByRole('button', { name: 'Switch to dark theme' }).click();
    await expect.poll(() => b.page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    await item.getByTestId('silence-open').click();
    const dark = await axe(b.page);
    expect(dark, describeViolations(dark)).toEqual([]);
    await b.page.keyboard.press('Escape');
    await screenshot(b.page, 'oncall-dark');
    await b.page.getByRole('button', { name: 'Switch to light theme' }).click();
    expect(b.problems).toEqual([]);
    expect(await cspViolations(b.page)).toEqual([]);
  });

  it('silences an alert from the page with the keyboard; the API then lists the silence and the alert is silenced', async () => {
    const { page } = b;
    const rule = (await alerts()).find((a) => a.alertname === RULE_NAME && a.state === 'firing' && a.status === 'firing')!;
    const item = page.getByTestId(`alert-${rule.fingerprint}`);
    await item.getByTestId('silence-open').focus();
    await page.keyboard.press('Enter');
    const form = item.getByTestId('silence-form');
    await form.waitFor();
    // Focus moves into the form: the first duration; the arrow keys pick 4h.
    await expect.poll(() => page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.value)).toBe('1h');
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.value)).toBe('4h');
    // Every label of the alert is a matcher, checked.
    const boxes = form.getByRole('checkbox');
    expect(await boxes.count()).toBe(Object.keys(rule.labels).length);
    await form.getByLabel('Comment (why, and the ticket)').focus();
    await page.keyboard.type('crashing runtime under investigation, OPS-42');
    await form.getByTestId('silence-submit').focus();
    await page.keyboard.press('Enter');
    await item.getByTestId('silence-done').waitFor();

    const silences = (await s.get('/api/v1/alerts/silences')).silences as { id: string; comment: string; createdBy: string; startsAt: number; endsAt: number; matchers: { name: string; value: string }[] }[];
    const mine = silences.find((x) => x.comment === 'crashing runtime under investigation, OPS-42');
    expect(mine, 'the silence made from the page').toBeDefined();
    expect(mine!.createdBy).toBe('dana');
    expect(mine!.endsAt - mine!.startsAt).toBe(4 * HOUR);
    expect(Object.fromEntries(mine!.matchers.map((m) => [m.name, m.value]))).toEqual(rule.labels);
    expect(await item.getByTestId('silence-done').textContent()).toContain(mine!.id);

    const after = await until(async () => (await alerts()).find((a) => a.fingerprint === rule.fingerprint && a.status === 'silenced'), 5000, 'the alert to be silenced');
    expect(after.silencedBy).toEqual([mine!.id]);
    await expect.poll(() => item.locator('.badge').first().textContent()).toBe('silenced');
    // A silenced alert offers no second silence.
    expect(await item.getByTestId('silence-open').count()).toBe(0);
    expect(b.problems).toEqual([]);
  });

  it('shows a viewer the alerts without any Silence button', async () => {
    await b.page.getByRole('button', { name: 'Sign out' }).click();
    await open(s.keys.viewer);
    const firing = (await alerts()).filter((a) => a.state === 'firing');
    await expect.poll(() => b.page.locator('li.oncall-alert').count()).toBe(firing.length);
    expect(await b.page.getByTestId('silence-open').count()).toBe(0);
    expect(await b.page.getByRole('button', { name: /Silence/ }).count()).toBe(0);
    expect(await text('session-role')).toBe('vera · viewer');
    expect(b.problems).toEqual([]);
  });

  it('marks a rollout\'s start and steps on the charts and lists them', async () => {
    // A second version under bike-busy (the regressor's file: its output differs, hence force) in a canary.
    const push = await fetch(`${s.srv.url}/api/v1/models/${BUSY}/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...s.as('admin') },
      body: readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx')),
    });
    expect(push.status, await push.clone().text()).toBe(201);
    const deploy = await s.srv.json(
      'POST',
      `/api/v1/deployments/${BUSY}/deploy`,
      { version: 2, strategy: 'canary', force: true, inheritMonitoring: false, spec: { steps: [{ weight: 10 }, { weight: 50 }], abortOnPage: false }, reason: 'e2e canary' },
      s.as('admin'),
    );
    expect(deploy.status, JSON.stringify(deploy.body)).toBe(200);
    const promote = await s.srv.json('POST', `/api/v1/deployments/${BUSY}/rollout/promote`, { reason: 'next step' }, s.as('admin'));
    expect(promote.status, JSON.stringify(promote.body)).toBe(200);
    await b.page.getByRole('button', { name: 'Refresh', exact: true }).click();

    const history = (await s.get(`/api/v1/deployments/${BUSY}/history?since=${Date.now() - 6 * HOUR}`)).events as { kind: string }[];
    expect(history.map((e) => e.kind)).toEqual(expect.arrayContaining(['rollout-start', 'rollout-step']));
    const table = b.page.getByTestId('oncall-history');
    await expect.poll(() => table.locator('tbody tr').count()).toBe(history.length);
    // Newest first: the step to 50 %, then the start.
    expect(await table.locator('tbody tr').nth(0).textContent()).toContain('step 2 → 50%');
    expect(await table.locator('tbody tr').nth(1).textContent()).toContain('rollout start v2');
    const summary = await b.page.getByTestId('oncall-chart-latency').locator('[role="img"]').getAttribute('aria-label');
    expect(summary).toContain('step 2 → 50% at');
    await expect.poll(() => b.page.locator('#oncall-now').textContent()).toContain('canary v2 running, step 2/2 · 50 %');
    expect((await s.srv.json('POST', `/api/v1/deployments/${BUSY}/rollout/abort`, { reason: 'done' }, s.as('admin'))).status).toBe(200);
    expect(b.problems).toEqual([]);
  });

  it('switches deployment and range from the page', async () => {
    await b.page.getByTestId('oncall-deployment').selectOption(DEMAND);
    await expect.poll(() => b.page.evaluate(() => location.hash)).toBe(`#/oncall?deployment=${DEMAND}`);
    await b.page.getByRole('button', { name: '1 h' }).click();
    await expect.poll(() => b.page.evaluate(() => location.hash)).toBe(`#/oncall?deployment=${DEMAND}&range=1h`);
    const t = await s.get(`/api/v1/deployments/${DEMAND}/traffic?step=minute&since=${Date.now() - HOUR}`);
    await expect.poll(() => text('oncall-requests')).toBe(fmtNum(t.totals.requests));
    expect(await b.page.getByTestId('oncall-page-alerts').textContent()).toContain(`No page alert firing for ${DEMAND}`);
    expect(await b.page.locator('#oncall-drift').textContent()).toContain('No monitoring window of this version has been evaluated yet');
    expect(b.problems).toEqual([]);
  });
});
