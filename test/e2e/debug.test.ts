/**
 * The debug view and one request's detail in a real Chromium against a real server: a linear bike model pushed
 * through the API with a 2011 reference and hourly windows, four hours of traffic (the
 * current one 0.4 warmer), refused requests (a missing feature) and failing ones (a crashed model run), all seeded through the
 * API. The view must rank the features worst first, show each window's drift score and histogram shares as the
 * windows API gives them, chart the score over time, count and list the failed requests, and link each to its
 * detail: inputs, outputs, version, latency and trace id as the prediction log has them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { BIKE_FEATURES, BIKE_ROWS_2011, bikeInstance } from '../helpers/rollouts.ts';
import { startTestServer, withCrashingRuntime, type TestServer } from '../helpers/server.ts';
import { CSP_PROBE, axe, chromiumPath, cspViolations, describeViolations, openBrowser, screenshot, type BrowserSession, docsScreenshot } from './browser.ts';

const HOUR = 3_600_000;
const MONITORED = ['hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed', 'variable'];



/** As the view formats a drift score (web/src/components/predictions.tsx fmtScore). */
function fmtScore(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1000 || a < 0.001 ? v.toExponential(2) : String(Number(v.toPrecision(3)));
}

/** As the view shows a bin's label (web/src/views/debug.tsx binLabel). */
function binLabel(label: string): string {
  return label.replace(/-?\d+\.\d{5,}(?:e[-+]?\d+)?/g, (n) => String(Number(Number(n).toPrecision(4))));
}

/** As the view formats a latency (web/src/format.ts fmtMs). */
function fmtMs(v: number): string {
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  if (v >= 10) return `${v.toFixed(0)} ms`;
  return `${v.toFixed(2)} ms`;
}

interface ColumnDrift {
  column: string;
  score: number;
  threshold: number;
  scoreKind: 'p_value' | 'distance';
  drift: boolean;
  skipped?: string;
}
interface Window {
  windowStart: number;
  rows: number;
  drift: { columns: ColumnDrift[] };
  histograms: { column: string; labels: string[]; reference: number[]; current: number[] }[];
}

describe.skipIf(!chromiumPath)('debug view and request detail', () => {
  let srv: TestServer;
  let b: BrowserSession;
  let windows: Window[];
  const hourStart = Math.floor(Date.now() / HOUR) * HOUR;

  beforeAll(async () => {
    srv = await startTestServer({
      monitoring: { tickMs: 100, idleCloseMs: 200 },
      predictionLog: { flushIntervalMs: 20 },
      // Spans are made (so events carry a W3C trace id) but never exported during the test.
      tracing: { enabled: true, otlpEndpoint: 'http://127.0.0.1:9/v1/traces', scheduledDelayMs: 60_000 },
    } as never);
    const onnx = (await train({ ...bikeSharingDemoOptions('linear'), seed: 1 })).onnx;
    const push = await fetch(`${srv.url}/api/v1/models/bike/versions?alias=champion`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(onnx) });
    expect(push.status).toBe(201);
    await srv.warden.table.settled();
    const csv = [BIKE_FEATURES.join(','), ...BIKE_ROWS_2011.slice(0, 3000).map((r) => BIKE_FEATURES.map((f) => r[f]).join(','))].join('\n');
    const ref = await fetch(`${srv.url}/api/v1/models/bike/versions/1/reference`, {
      method: 'PUT',
      headers: { 'content-type': 'text/csv', 'x-warden-monitoring': JSON.stringify({ window: { kind: 'time', sizeMs: HOUR }, columns: MONITORED }) },
      body: csv,
    });
    expect(ref.status, await ref.clone().text()).toBe(201);
    // Four hourly windows of traffic: real 2011 rows three hours back, and in the current hour 0.4 warmer.
    for (const [h, offset] of [
      [3, 0],
      [2, 2000],
      [1, 4000],
      [0, 6000],
    ] as const) {
      const instances = Array.from({ length: 120 }, (_, i) => bikeInstance(offset + i * 7));
      if (h === 0) for (const x of instances) x.temp = Math.min(1, x.temp! + 0.4);
      const r = await srv.json('POST', '/v1/models/bike:predict', { instances, ...(h > 0 ? { parameters: { event_time: hourStart - h * HOUR + 60_000 } } : {}) });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    // One answered request to open by its id, refused ones (a feature missing) and failing ones (a crashed run).
    expect((await srv.json('POST', '/v1/models/bike:predict', { instances: [bikeInstance(5), bikeInstance(6)] }, { 'x-request-id': 'dbg-ok-1' })).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const { hum: _hum, ...missing } = bikeInstance(i);
      expect((await srv.json('POST', '/v1/models/bike:predict', { instances: [missing] }, { 'x-request-id': `dbg-refused-${i}` })).status).toBe(400);
    }
    await withCrashingRuntime(srv, 'bike', 1, async () => {
      for (let i = 0; i < 2; i++) expect((await srv.json('POST', '/v1/models/bike:predict', { instances: [bikeInstance(i)] }, { 'x-request-id': `dbg-failed-${i}` })).status).toBe(500);
    });
    expect((await srv.json('POST', '/api/v1/monitoring/flush', {})).status).toBe(200);
    windows = (await srv.json('GET', '/api/v1/models/bike/versions/1/monitoring/windows?limit=100')).body.windows;
    expect(windows.length).toBeGreaterThanOrEqual(4);
    b = await openBrowser({ viewport: { width: 1400, height: 900 } });
    await b.context.addInitScript(CSP_PROBE);
  }, 120_000);

  afterAll(async () => {
    await b?.close();
    await srv?.close();
  });

  it('lists the latest window\'s features worst first with the API\'s drift scores', async () => {
    const { page } = b;
    await page.goto(`${srv.url}/#/debug`);
    await page.getByTestId('drift-features').waitFor();
    const latest = windows.at(-1)!;
    // The warm hour is the latest window: temp drifted there.
    const temp = latest.drift.columns.find((c) => c.column === 'temp')!;
    expect(temp.drift).toBe(true);
    const rows = page.getByTestId('drift-features').locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(latest.drift.columns.length);
    const shown = await rows.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.column));
    // In the order of the windows summary's features: drifted first, then by severity.
    const summary = (await srv.json('GET', `/api/v1/models/bike/versions/1/monitoring/windows?summary=true&since=${latest.windowStart}`)).body.windows[0];
    expect(shown).toEqual(summary.features.map((f: { column: string }) => f.column));
    for (const c of latest.drift.columns) {
      expect(await page.getByTestId(`drift-score-${c.column}`).textContent(), c.column).toBe(c.skipped ? '—' : fmtScore(c.score));
    }
    expect(await page.getByTestId('window-summary').textContent()).toContain(`${latest.rows} rows`);
  });

  it('shows the chosen feature\'s reference and current histogram shares and its score over time', async () => {
    const { page } = b;
    await page.getByRole('link', { name: 'temp', exact: true }).click();
    await expect.poll(() => page.evaluate(() => location.hash)).toContain('column=temp');
    const hist = windows.at(-1)!.histograms.find((h) => h.column === 'temp')!;
    const share = (xs: number[], i: number) => `${((xs[i]! / xs.reduce((a, x) => a + x, 0)) * 100).toFixed(1)} %`;
    const trs = page.getByTestId('histogram').locator('tbody tr');
    await expect.poll(() => trs.count()).toBe(hist.labels.length);
    for (let i = 0; i < hist.labels.length; i++) {
      const tr = trs.nth(i);
      expect(await tr.locator('th').textContent()).toBe(binLabel(hist.labels[i]!));
      expect(await tr.locator('td').nth(0).locator('.num').textContent()).toBe(share(hist.reference, i));
      expect(await tr.locator('td').nth(1).locator('.num').textContent()).toBe(share(hist.current, i));
    }
    // The chart's text summary counts the windows and gives the latest score.
    const summary = await page.getByTestId('drift-chart').locator('[role=img]').getAttribute('aria-label');
    const temps = windows.map((w) => w.drift.columns.find((c) => c.column === 'temp')!);
    expect(summary).toContain(`over ${windows.length} windows`);
    expect(summary).toContain(`drifted in ${temps.filter((c) => c.drift).length}`);
    expect(summary).toContain(`latest score ${fmtScore(temps.at(-1)!.score)}`);
    expect(await page.getByTestId('drift-chart').locator('canvas').count()).toBeGreaterThan(0);
    // An earlier window, chosen from the list, shows its own scores.
    const first = windows[0]!;
    await page.getByLabel('Window', { exact: true }).selectOption(String(first.windowStart));
    await expect.poll(() => page.getByTestId('drift-score-temp').textContent()).toBe(fmtScore(first.drift.columns.find((c) => c.column === 'temp')!.score));
    await page.getByLabel('Window', { exact: true }).selectOption(String(windows.at(-1)!.windowStart));
    await expect.poll(() => page.getByTestId('drift-score-temp').textContent()).toBe(fmtScore(temps.at(-1)!.score));
  });

  it('counts the refused and failing requests by reason and links each to its detail', async () => {
    const { page } = b;
    const events = (await srv.json('GET', '/api/v1/predictions?model=bike&status=error&limit=1000')).body.events as { requestId: string; error: string }[];
    const byCode = new Map<string, number>();
    for (const e of events) byCode.set(e.error.split(':')[0]!, (byCode.get(e.error.split(':')[0]!) ?? 0) + 1);
    expect(byCode.get('WARDEN_INVALID_INPUT')).toBe(3);
    expect(byCode.get('WARDEN_INFERENCE_FAILED') ?? byCode.get('WARDEN_INTERNAL')).toBe(2);
    const traffic = await srv.json('GET', '/api/v1/deployments/bike/traffic');
    expect(traffic.status).toBe(200);
    const counts = new Map((traffic.body.totals.errors as { code: string; count: number }[]).map((e) => [e.code, e.count]));
    expect(counts).toEqual(byCode);
    await page.getByTestId('error-codes').waitFor();
    for (const [code, n] of counts) expect(await page.getByTestId(`error-count-${code}`).textContent(), code).toBe(String(n));
    expect(await page.getByTestId('traffic-requests').textContent()).toBe(traffic.body.totals.requests.toLocaleString('en-US'));
    expect(await page.getByTestId('traffic-server-errors').textContent()).toBe(String(traffic.body.totals.serverErrors));
    expect(await page.getByTestId('traffic-client-errors').textContent()).toBe(String(traffic.body.totals.clientErrors));
    // Failing (5xx) or refused (4xx) as the route's status for the code says.
    for (const e of traffic.body.totals.errors as { code: string; status: number }[]) {
      expect(await page.locator(`[data-code=${e.code}] .badge`).textContent(), e.code).toBe(e.status >= 500 ? 'failing' : 'refused');
    }
    // The latest failures table starts with the newest failure the log has.
    const newest = (await srv.json('GET', '/api/v1/predictions?model=bike&status=error&order=newest&limit=15')).body.events as { requestId: string }[];
    const shownIds = await page.getByTestId('latest-errors').locator('tbody tr td:nth-child(2)').allTextContents();
    expect(shownIds).toEqual(newest.map((e) => e.requestId));
    const refused = page.locator('[data-code=WARDEN_INVALID_INPUT]');
    expect(await refused.locator('.badge').textContent()).toBe('refused');
    const failing = page.locator(`[data-code=${byCode.has('WARDEN_INFERENCE_FAILED') ? 'WARDEN_INFERENCE_FAILED' : 'WARDEN_INTERNAL'}]`);
    expect(await failing.locator('.badge').textContent()).toBe('failing');
    // The newest refused request is linked and opens its detail with the logged error.
    await refused.getByRole('link', { name: 'dbg-refused-2' }).click();
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/requests/dbg-refused-2');
    await page.getByTestId('request-error').waitFor();
    const ev = (await srv.json('GET', '/api/v1/predictions?requestId=dbg-refused-2')).body.events[0];
    expect(await page.getByTestId('request-error').textContent()).toBe(ev.error.replace(/^(\w+): /, '$1 '));
    expect(await page.getByTestId('request-latency').textContent()).toBe(fmtMs(ev.latencyMs));
    expect(await page.getByTestId('request-version').textContent()).toBe(`v${ev.version}`);
  });

  it('opens a request from the search box: inputs, outputs, version, latency and trace id as logged', async () => {
    const { page } = b;
    await page.goto(`${srv.url}/#/debug`);
    await page.getByLabel('Request id').fill('dbg-ok-1');
    await page.getByLabel('Request id').press('Enter');
    await expect.poll(() => page.evaluate(() => location.hash)).toBe('#/requests/dbg-ok-1');
    const ev = (await srv.json('GET', '/api/v1/predictions?requestId=dbg-ok-1')).body.events[0];
    expect(ev.traceId).toMatch(/^[0-9a-f]{32}$/);
    await page.getByTestId('request-latency').waitFor();
    expect(await page.getByTestId('request-latency').textContent()).toBe(fmtMs(ev.latencyMs));
    expect(await page.getByTestId('request-version').textContent()).toBe('v1');
    expect(await page.getByTestId('request-trace').textContent()).toBe(ev.traceId);
    expect(await page.getByTestId('request-status').textContent()).toBe('ok');
    // Inputs as logged (one tensor, a row per instance), its columns named by the version's features.
    const input = ev.inputs[0] as { shape: number[]; data: number[] };
    const table = page.getByTestId('request-inputs').locator('table');
    expect(await table.locator('thead th').allTextContents()).toEqual(['row', ...BIKE_FEATURES]);
    const cells = (await table.locator('tbody td').allTextContents()).map(Number);
    expect(cells).toHaveLength(input.shape[0]! * input.shape[1]!);
    cells.forEach((c, i) => expect(c).toBeCloseTo(input.data[i]!, 5));
    const output = ev.outputs[0] as { name: string; data: number[] };
    const outCells = (await page.getByTestId('request-outputs').locator(`table[data-tensor=${output.name}] tbody td`).allTextContents()).map(Number);
    expect(outCells).toHaveLength(output.data.length);
    outCells.forEach((c, i) => expect(c).toBeCloseTo(output.data[i]!, 3));
    // No explanation feature exists: nothing is shown for one.
    expect(await page.getByText(/explanation/i).count()).toBe(0);
    await screenshot(page, 'request');
    await docsScreenshot(page, 'request');
    const v = await axe(page);
    expect(v, describeViolations(v)).toEqual([]);
  });

  it('says so for a request id the log does not have', async () => {
    const { page } = b;
    await page.goto(`${srv.url}/#/requests/no-such-request`);
    await expect.poll(() => page.getByText('Not in the prediction log').count()).toBe(1);
  });

  it('has no accessibility violations in light and dark, no CSP violation or console error, and leaves screenshots', async () => {
    const { page } = b;
    await page.goto(`${srv.url}/#/debug?deployment=bike&column=temp`);
    await page.getByTestId('histogram').waitFor();
    await page.getByTestId('error-codes').waitFor();
    await page.mouse.move(0, 0);
    await docsScreenshot(page, 'debug');
    await screenshot(page, 'debug');
    const light = await axe(page);
    expect(light, describeViolations(light)).toEqual([]);
    await page.getByRole('button', { name: 'Switch to dark theme' }).click();
    await expect.poll(() => page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    const dark = await axe(page);
    expect(dark, describeViolations(dark)).toEqual([]);
    await screenshot(page, 'debug-dark');
    await page.goto(`${srv.url}/#/requests/dbg-failed-0`);
    await page.getByTestId('request-error').waitFor();
    const darkReq = await axe(page);
    expect(darkReq, describeViolations(darkReq)).toEqual([]);
    await page.getByRole('button', { name: 'Switch to light theme' }).click();
    expect(await cspViolations(page)).toEqual([]);
    expect(b.problems).toEqual([]);
  });
});
