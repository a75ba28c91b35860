/**
 * The model card view (`#/card?model=&version=`) in a real Chromium against a real server with auth on, seeded
 * through the API (test/helpers/model-card.ts: the bike logistic regression with owner, lineage, a reference with
 * performance, three labelled hours of 2012, the third drifting). A viewer reaches it from the registry's version
 * panel; every figure on the page is the one GET …/card gives: owner, commit, realized and estimated accuracy per
 * window, drift history, importance, deployment history, alerts and gaps. The Markdown form shows on request. A bare
 * model's card lists its gaps. axe finds nothing, and the page logs no error or CSP violation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelCard } from '../../src/registry/index.ts';
import { createApiKey } from '../../src/security/index.ts';
import { CARD_SERVER, GBR, OWNER, pushVersion, seedCardModel } from '../helpers/model-card.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { CSP_PROBE, axe, chromiumPath, cspViolations, describeViolations, openBrowser, screenshot, type BrowserSession } from './browser.ts';
import { signIn } from './ops-seed.ts';

/** As the card view formats a number (web/src/views/card.tsx n4). */
const n4 = (v: number | null | undefined) => (v === null || v === undefined ? '—' : String(Number(v.toPrecision(4))));

describe.skipIf(!chromiumPath)(`model card view${chromiumPath ? '' : ' (skipped: no Chromium at /usr/bin/chromium; install Debian package chromium)'}`, () => {
  let srv: TestServer;
  let b: BrowserSession;
  const keys: Record<string, string> = {};
  const as = (role: string) => ({ authorization: `Bearer ${keys[role]}` });
  const apiCard = async (p: string): Promise<ModelCard> => {
    const r = await srv.json('GET', `/api/v1/models/${p}/card`, undefined, as('viewer'));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body as ModelCard;
  };
  const text = async (testid: string) => (await b.page.getByTestId(testid).textContent())?.trim();

  beforeAll(async () => {
    srv = await startTestServer({ ...CARD_SERVER, auth: { required: true } });
    for (const role of ['deployer', 'viewer'] as const) keys[role] = (await createApiKey(srv.warden.stores.metadata, `${role}-1`, role)).secret;
    await srv.warden.keys.reload();
    await seedCardModel(srv, as('deployer'));
    await pushVersion(srv, 'bare', GBR, as('deployer'));
    b = await openBrowser({ viewport: { width: 1400, height: 1000 } });
    await b.context.addInitScript(CSP_PROBE);
  }, 120_000);
  afterAll(async () => {
    await b?.close();
    await srv?.close();
  });

  it('is reached from the registry and shows what GET …/card gives', async () => {
    const { page } = b;
    await signIn(page, b.problems, `${srv.url}/#/registry?model=busy&version=1`, keys.viewer!);
    await page.getByTestId('card-link').click();
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/card?model=busy&version=1');
    await page.getByTestId('card-owner').waitFor();
    const c = await apiCard('busy/versions/1');
    expect(c.overview.owner!.value).toBe(OWNER);
    expect(await text('card-owner')).toBe(`${c.overview.owner!.value} (${c.overview.owner!.from})`);
    expect(await text('card-intended-use')).toBe(`${c.overview.intendedUse!.value} (${c.overview.intendedUse!.from})`);
    expect(await text('card-commit')).toBe(c.lineage.sourceCommit);
    expect(await text('card-data-sha')).toBe(c.lineage.trainingDataSha256);
    expect(await text('card-parent')).toBe('—');
    expect(await text('card-serving')).toBe('stable');
    expect(await text('card-offline-accuracy')).toBe(n4(c.offlineMetrics!.accuracy));

    const p = c.performance!;
    expect(p.windows).toHaveLength(3);
    expect(await text('card-realized')).toBe(n4(p.latest.realized));
    expect(await text('card-estimated')).toBe(n4(p.latest.estimated));
    expect(await text('card-trend')).toContain(p.trend!.direction);
    const perfRows = page.getByTestId('card-perf-windows').locator('tbody tr');
    expect(await perfRows.count()).toBe(p.windows.length);
    for (const [i, w] of p.windows.entries()) {
      expect(await perfRows.nth(i).getAttribute('data-window')).toBe(String(w.windowStart));
      expect(await perfRows.nth(i).locator('[data-field=realized]').textContent()).toBe(n4(w.realized));
      expect(await perfRows.nth(i).locator('[data-field=estimated]').textContent()).toBe(n4(w.estimated));
    }

    const d = c.drift!;
    expect(await text('card-drifted-windows')).toBe(`${d.driftedWindows} of the newest ${d.windows} windows drifted.`);
    const driftRows = page.getByTestId('card-drift-history').locator('tbody tr');
    for (const [i, w] of d.history.entries()) expect(await driftRows.nth(i).locator('[data-field=drifted]').textContent()).toBe(w.drifted.join(', ') || '—');
    expect(d.history[0]!.drifted).toContain('temp');

    expect(await page.getByTestId('card-segments-table').locator('tbody tr').count()).toBe(c.segments!.rows.length);
    const imp = page.getByTestId('card-importance').locator('tbody tr');
    expect(await imp.locator('th').allTextContents()).toEqual(c.importance!.features.map((f) => f.feature));
    expect(await imp.locator('[data-field=shap]').allTextContents()).toEqual(c.importance!.features.map((f) => n4(f.meanAbsShap)));

    expect(await page.getByTestId('card-deploy-events').locator('tbody tr').count()).toBe(c.deployments.events.length);
    expect(await page.getByTestId('card-deploy-events').locator('[data-kind=alias] [data-field=stable]').textContent()).toBe('— → v1');
    expect(c.alerts!.length).toBeGreaterThan(0);
    expect((await page.getByTestId('card-alerts-table').locator('tbody th').allTextContents()).sort()).toEqual(c.alerts!.map((a) => a.alertname).sort());
    expect(await page.getByTestId('card-gaps-table').locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-gap')))).toEqual(c.gaps.map((g) => g.field));

    await page.mouse.move(0, 0);
    await screenshot(page, 'model-card');
    const v = await axe(page);
    expect(v, describeViolations(v)).toEqual([]);
  });

  it('shows the Markdown card on request', async () => {
    const { page } = b;
    await page.getByRole('button', { name: 'Show Markdown' }).click();
    const md = page.getByTestId('card-markdown');
    await md.waitFor();
    const shown = (await md.textContent()) ?? '';
    expect(shown).toMatch(/^# Model card: busy v1\n/);
    expect(shown).toContain(`**Owner:** ${OWNER} _(from v1 tags.owner)_`);
  });

  it('a bare model: every gap listed, the sections say they are not filled', async () => {
    const { page } = b;
    await page.goto(`${srv.url}/#/card?model=bare&version=1`);
    await page.getByTestId('card-gaps-table').waitFor();
    const c = await apiCard('bare/versions/1');
    expect(c.gaps.length).toBeGreaterThanOrEqual(10);
    const rows = page.getByTestId('card-gaps-table').locator('tbody tr');
    expect(await rows.evaluateAll((r) => r.map((x) => x.getAttribute('data-gap')))).toEqual(c.gaps.map((g) => g.field));
    for (const [i, g] of c.gaps.entries()) expect(await rows.nth(i).locator('td').nth(1).textContent()).toBe(g.fill);
    expect(await text('card-owner')).toBe('gap');
    expect(await page.locator('#card-performance').textContent()).toContain('performance is listed under Gaps below');
    const v = await axe(page);
    expect(v, describeViolations(v)).toEqual([]);
    expect(b.problems).toEqual([]);
    expect(await cspViolations(page)).toEqual([]);
  });
});
