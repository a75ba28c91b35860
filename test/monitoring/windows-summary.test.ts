/**
 * GET …/monitoring/windows?summary=true against a real server: the seeded bike-demand model, the 2011 rows of the
 * UCI bike-sharing data (Fanaee-T & Gama 2013) as reference with weekly windows, three weeks of 2012 replayed.
 * The summary must say what the full windows say, without histograms, worst features first; a window stored
 * before summaries existed (NULL summary column) is summarised from its report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURES, MONITORED, WEEK_MS, bikeRows } from '../../scripts/demo/monitoring-demo.ts';
import { seedDemo } from '../../src/lifecycle/index.ts';
import type { WindowResult, WindowSummary } from '../../src/monitoring/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const MODEL = 'bike-demand';
const WINDOWS = `/api/v1/models/${MODEL}/versions/champion/monitoring/windows`;

describe('monitoring windows summary', () => {
  let srv: TestServer;
  let full: WindowResult[];
  let summary: WindowSummary[];

  beforeAll(async () => {
    srv = await startTestServer({ monitoring: { tickMs: 100, idleCloseMs: 200 }, predictionLog: { flushIntervalMs: 50 } });
    await seedDemo(srv.warden.registry, srv.warden.logger);
    const ref = bikeRows(0);
    const csv = [FEATURES.join(','), ...ref.map((r) => FEATURES.map((f) => r.values[f]).join(','))].join('\n');
    const put = await fetch(`${srv.url}/api/v1/models/${MODEL}/versions/champion/reference`, {
      method: 'PUT',
      headers: { 'content-type': 'text/csv', 'x-warden-monitoring': JSON.stringify({ window: { kind: 'time', sizeMs: WEEK_MS }, columns: MONITORED }) },
      body: csv,
    });
    expect(put.status).toBe(201);
    // Three weeks of 2012, the last with temperatures in Fahrenheit (drift and out-of-range values).
    const rows = bikeRows(1).slice(0, 24 * 21);
    for (let d = 0; d < 21; d++) {
      const day = rows.slice(d * 24, d * 24 + 24);
      const instances = day.map((r) => (d >= 14 ? { ...r.values, temp: (r.values.temp as number) * 41 * 1.8 + 32 } : r.values));
      const res = await srv.json('POST', `/v1/models/${MODEL}:predict`, { instances, parameters: { event_time: day[0]!.ts } });
      expect([200, 400]).toContain(res.status);
    }
    await new Promise((r) => setTimeout(r, 300));
    await srv.json('POST', '/api/v1/monitoring/flush', {});
    full = (await srv.json('GET', WINDOWS)).body.windows;
    summary = (await srv.json('GET', `${WINDOWS}?summary=true`)).body.windows;
  }, 120_000);
  afterAll(() => srv?.close());

  it('has one summary per window with the full window verdicts, and no histograms', () => {
    expect(full.length).toBeGreaterThanOrEqual(3);
    expect(summary.map((w) => w.windowStart)).toEqual(full.map((w) => w.windowStart));
    for (const [i, w] of full.entries()) {
      const s = summary[i]!;
      expect(s).not.toHaveProperty('histograms');
      expect(s).toMatchObject({ windowEnd: w.windowEnd, rows: w.rows, datasetDrift: w.drift.datasetDrift, driftShare: w.drift.driftShare, predictionDrift: w.drift.predictionDrift });
      expect(s.features).toHaveLength(w.drift.columns.length);
      for (const c of w.drift.columns) {
        const f = s.features.find((x) => x.column === c.column)!;
        expect(f).toMatchObject({ test: c.test, drift: c.drift, scoreKind: c.scoreKind, threshold: c.threshold });
        // Four significant digits.
        expect(Math.abs(f.score! - c.score)).toBeLessThanOrEqual(Math.abs(c.score) * 5e-4);
      }
      if (w.performance) expect(s.performance).toEqual(w.performance);
    }
  });

  it('lists features worst first: drifted first, then by severity (p-values: lower is worse; distances: higher)', () => {
    const drifted = summary.find((s) => s.features.some((f) => f.drift));
    expect(drifted, 'the Fahrenheit week drifts').toBeDefined();
    for (const s of summary) {
      const firstCalm = s.features.findIndex((f) => !f.drift);
      if (firstCalm >= 0) expect(s.features.slice(firstCalm).every((f) => !f.drift)).toBe(true);
      for (let i = 1; i < s.features.length; i++) {
        const [a, b] = [s.features[i - 1]!, s.features[i]!];
        if (a.drift === b.drift) expect(a.severity ?? -1).toBeGreaterThanOrEqual(b.severity ?? -1);
      }
      for (const f of s.features) {
        if (f.severity === null || f.score === null) continue;
        const expected = Math.min(1e9, f.scoreKind === 'p_value' ? f.threshold / f.score : f.score / f.threshold);
        expect(Math.abs(f.severity - expected)).toBeLessThanOrEqual(expected * 1e-3);
        // Above 1 when the test calls it drift (at four digits, 1 itself can go either way).
        if (f.severity !== 1) expect(f.severity > 1).toBe(f.drift);
      }
    }
    const temp = drifted!.features.find((f) => f.column === 'temp')!;
    expect(temp.drift).toBe(true);
  });

  it('order=newest lists the latest windows first, full and summary alike; limit=1 is the newest window', async () => {
    const newest = (await srv.json('GET', `${WINDOWS}?order=newest`)).body.windows as WindowResult[];
    expect(newest.map((w) => w.windowStart)).toEqual(full.map((w) => w.windowStart).reverse());
    const newestSummary = (await srv.json('GET', `${WINDOWS}?summary=true&order=newest`)).body.windows as WindowSummary[];
    expect(newestSummary).toEqual([...summary].reverse());
    const [last] = (await srv.json('GET', `${WINDOWS}?order=newest&limit=1`)).body.windows as WindowResult[];
    expect(last).toEqual(full.at(-1));
    const one = (await srv.json('GET', `${WINDOWS}?summary=true&order=newest&limit=1`)).body.windows as WindowSummary[];
    expect(one).toEqual([summary.at(-1)]);
    // With until, the newest window starting before it.
    const before = (await srv.json('GET', `${WINDOWS}?summary=true&order=newest&limit=1&until=${full.at(-1)!.windowStart}`)).body.windows as WindowSummary[];
    expect(before).toEqual([summary.at(-2)]);
    expect((await srv.json('GET', `${WINDOWS}?order=oldest`)).body.windows).toEqual(full);
  });

  it('summarises a window stored without a summary (before the column existed) from its report', async () => {
    const [stored] = await srv.warden.stores.events.listMonitorResults({ model: MODEL, version: full[0]!.version, limit: 1 });
    const { summary: _dropped, ...old } = stored!;
    const start = stored!.windowStart + 100 * WEEK_MS;
    await srv.warden.stores.events.saveMonitorResult({ ...old, windowStart: start, windowEnd: start + WEEK_MS });
    const all = (await srv.json('GET', `${WINDOWS}?summary=true`)).body.windows as WindowSummary[];
    const legacy = all.find((w) => w.windowStart === start)!;
    expect({ ...legacy, windowStart: 0, windowEnd: 0 }).toEqual({ ...summary[0]!, windowStart: 0, windowEnd: 0 });
    // Newest first merges stored and legacy summaries in window order: the legacy window is the latest.
    const newest = (await srv.json('GET', `${WINDOWS}?summary=true&order=newest&limit=2`)).body.windows as WindowSummary[];
    expect(newest.map((w) => w.windowStart)).toEqual([start, summary.at(-1)!.windowStart]);
  });

  it('refuses a bad summary value', async () => {
    const r = await srv.json('GET', `${WINDOWS}?summary=yes`);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('WARDEN_BAD_REQUEST');
  });

  it('refuses a bad order value', async () => {
    for (const q of ['order=latest', 'summary=true&order=desc']) {
      const r = await srv.json('GET', `${WINDOWS}?${q}`);
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ code: 'WARDEN_BAD_REQUEST', error: expect.stringContaining('order must be oldest or newest') });
    }
  });
});
