/**
 * The executive view (`#/`) in a real Chromium against a real server seeded through the API (ops-seed.ts): per
 * deployment, every headline figure on screen equals what the public routes answer — availability, requests and
 * cost from the traffic route, the error budget and SLO state from the SLO status, incidents from the alerts, live
 * accuracy (realized from the newest labelled window) against the offline metric of the version — for 7 and 30
 * days; the trend charts have text summaries; axe finds nothing in light or dark; the page logs no error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fmtNum, fmtPct } from '../../web/src/format.ts';
import { CSP_PROBE, axe, cspViolations, chromiumPath, describeViolations, openBrowser, screenshot, type BrowserSession, docsScreenshot } from './browser.ts';
import { BUSY, DEMAND, SLO_NAME, seed, signIn, type Seeded } from './ops-seed.ts';

const DAY = 86_400_000;
const COST_PER_CPU_HOUR = 0.05;

describe.skipIf(!chromiumPath)(`executive view${chromiumPath ? '' : ' (skipped: no Chromium at /usr/bin/chromium; install Debian package chromium)'}`, () => {
  let s: Seeded;
  let b: BrowserSession;
  const text = async (testid: string) => (await b.page.getByTestId(testid).textContent())?.trim();
  const traffic = (name: string, days: number) => s.get(`/api/v1/deployments/${name}/traffic?step=hour&since=${Date.now() - days * DAY}`);
  /** Waits until every card has its figures (the requests stat stops showing the loading text). */
  const loaded = async () => {
    for (const name of [BUSY, DEMAND]) await b.page.getByTestId(`exec-requests-${name}`).waitFor();
  };

  beforeAll(async () => {
    s = await seed({ slo: { costPerCpuHour: COST_PER_CPU_HOUR } });
    b = await openBrowser({ viewport: { width: 1400, height: 900 } });
    await b.context.addInitScript(CSP_PROBE);
  }, 120_000);
  afterAll(async () => {
    await b?.close();
    await s?.srv.close();
  });

  it('renders every deployment with the figures the API gives, in parallel and quickly', async () => {
    const t0 = Date.now();
    await signIn(b.page, b.problems, `${s.srv.url}/#/`, s.keys.viewer);
    await loaded();
    const ms = Date.now() - t0;
    // A tiny store: every call answers at once; the 1 s budget of the big store is bench/dashboard's to measure.
    expect(ms).toBeLessThan(10_000);

    const t = await traffic(BUSY, 7);
    expect(t.totals.requests).toBe(24);
    expect(await text(`exec-requests-${BUSY}`)).toBe(fmtNum(t.totals.requests));
    expect(await text(`exec-availability-${BUSY}`)).toBe(fmtPct(t.totals.availability, 2));
    // Process CPU is charged to the requests counted since the last flush (the route flushes first), so with no
    // request since the page's read the figure is the same.
    expect(t.totals.costPer1k).toBeGreaterThan(0);
    expect(await text(`exec-cost-${BUSY}`)).toBe(fmtNum(t.totals.costPer1k, 4));

    const status = await s.get(`/api/v1/slos/${SLO_NAME}/status`);
    expect(await text(`exec-budget-${BUSY}`)).toBe(fmtPct(status.budget.remaining, 1));
    expect(await text(`exec-slo-budget-${SLO_NAME}`)).toBe(fmtPct(status.budget.remaining, 1));
    expect(status.firing.length).toBeGreaterThan(0);
    expect(await text(`exec-slo-state-${BUSY}`)).toBe('firing');

    const alerts = (await s.get(`/api/v1/alerts?deployment=${BUSY}`)).alerts as { state: string }[];
    expect(await text(`exec-incidents-${BUSY}`)).toBe(String(alerts.filter((a) => a.state === 'firing').length));

    // Live accuracy: the newest window with labels, realized, against the version's offline accuracy.
    const windows = (await s.get(`/api/v1/models/${BUSY}/versions/1/monitoring/windows?summary=true&since=${Date.now() - 7 * DAY}`)).windows as {
      performance?: { realized?: { accuracy: number } };
    }[];
    const newestLabelled = [...windows].reverse().find((w) => w.performance?.realized);
    expect(newestLabelled, 'a labelled window').toBeDefined();
    expect(await text(`exec-accuracy-${BUSY}`)).toBe(fmtPct(newestLabelled!.performance!.realized!.accuracy, 1));
    const card = b.page.locator(`#deployment-${BUSY}`);
    expect(await card.textContent()).toContain('Live accuracy (realized)');
    expect(await text(`exec-offline-${BUSY}`)).toBe(fmtPct((await s.get(`/api/v1/models/${BUSY}/versions/1`)).metadata.metrics.accuracy, 1));

    // The regressor has no reference: no accuracy, and the card says why.
    const d = await traffic(DEMAND, 7);
    expect(await text(`exec-requests-${DEMAND}`)).toBe(fmtNum(d.totals.requests));
    expect(await text(`exec-accuracy-${DEMAND}`)).toBe('—');
    expect(await b.page.locator(`#deployment-${DEMAND}`).textContent()).toContain('no evaluated window yet');
    expect(await text(`exec-budget-${DEMAND}`)).toBe('—');
    expect(await b.page.locator(`#deployment-${DEMAND}`).textContent()).toContain('no SLO for this deployment');

    // Each chart has a text summary a screen reader reads.
    const summary = await b.page.getByTestId(`exec-chart-traffic-${BUSY}`).locator('[role="img"]').getAttribute('aria-label');
    expect(summary).toContain(`${fmtNum(t.totals.requests)} in all`);
    expect(await b.page.getByTestId(`exec-chart-accuracy-${BUSY}`).locator('[role="img"]').getAttribute('aria-label')).toContain('with labels (realized)');
  });

  it('switches the trends and figures to 30 days', async () => {
    await b.page.getByRole('button', { name: '30 days' }).click();
    await expect.poll(() => b.page.evaluate(() => location.hash)).toBe('#/?range=30d');
    await expect.poll(() => b.page.locator(`#deployment-${BUSY}`).textContent()).toContain('Requests (30 d)');
    await loaded();
    const t = await traffic(BUSY, 30);
    expect(await text(`exec-requests-${BUSY}`)).toBe(fmtNum(t.totals.requests));
    expect(await text(`exec-availability-${BUSY}`)).toBe(fmtPct(t.totals.availability, 2));
    expect(await b.page.getByRole('button', { name: '30 days' }).getAttribute('aria-pressed')).toBe('true');
  });

  it('has no accessibility violation in light and dark, and no console error or CSP violation', async () => {
    await b.page.getByRole('button', { name: '7 days' }).click();
    await loaded();
    const light = await axe(b.page);
    expect(light, describeViolations(light)).toEqual([]);
    await screenshot(b.page, 'executive');
    await docsScreenshot(b.page, 'executive');

    await b.page.getByRole('button', { name: 'Switch to dark theme' }).click();
    await expect.poll(() => b.page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    const dark = await axe(b.page);
    expect(dark, describeViolations(dark)).toEqual([]);
    await screenshot(b.page, 'executive-dark');
    expect(b.problems).toEqual([]);
    expect(await cspViolations(b.page)).toEqual([]);
  });
});

describe.skipIf(!chromiumPath)('executive view without a CPU price or labels', () => {
  it('shows CPU ms per 1,000 inferences (slo.costPerCpuHour is not set) and the CBPE estimate, saying so', async () => {
    const s = await seed({}, { labels: false });
    const b = await openBrowser({ viewport: { width: 1400, height: 900 } });
    try {
      await signIn(b.page, b.problems, `${s.srv.url}/#/`, s.keys.viewer);
      await b.page.getByTestId(`exec-cost-${BUSY}`).waitFor();
      const t = await s.get(`/api/v1/deployments/${BUSY}/traffic?step=hour&since=${Date.now() - 7 * DAY}`);
      expect(t.totals.costPer1k).toBeNull();
      const card = b.page.locator(`#deployment-${BUSY}`);
      await expect.poll(() => card.textContent()).toContain('slo.costPerCpuHour is not set');
      expect(await card.textContent()).toContain('CPU / 1,000 inferences');
      expect(await b.page.getByTestId(`exec-cost-${BUSY}`).textContent()).toMatch(/^[\d,]+\.\d ms$/);
      // No window has labels: the newest window's estimate, named as such.
      const windows = (await s.get(`/api/v1/models/${BUSY}/versions/1/monitoring/windows?summary=true`)).windows as { performance?: { realized?: unknown; estimated?: { accuracy: number } } }[];
      expect(windows.some((w) => w.performance?.realized)).toBe(false);
      expect(await card.textContent()).toContain('Estimated accuracy (CBPE, no labels yet)');
      expect(await b.page.getByTestId(`exec-accuracy-${BUSY}`).textContent()).toBe(fmtPct(windows.at(-1)!.performance!.estimated!.accuracy, 1));
      expect(b.problems).toEqual([]);
    } finally {
      await b.close();
      await s.srv.close();
    }
  }, 120_000);
});
