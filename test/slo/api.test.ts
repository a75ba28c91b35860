/**
 * SLOs on a real server: definitions through /api/v1/slos (written to slo.yaml in the data directory), SLIs
 * recorded from real traffic — successes, client errors that must not burn availability, and a model whose run
 * fails with a 500 — status with budget and burn rates, the alert source registered with alerting, and the CLI.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multiWindowAlerts } from '../../src/slo/index.ts';
import { fixturesDir, startTestServer, type TestServer, withCrashingRuntime } from '../helpers/server.ts';
import { runWarden } from '../helpers/cli.ts';


const cli = (args: string[]) => runWarden(args);

const good = { inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: new Array(12).fill(0.25) }] };

describe('SLO API and recording from real traffic', () => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startTestServer({
      predictionLog: { flushIntervalMs: 20 },
      // One model run per request, so replacing the runtime's run makes exactly the requests we choose fail.
      serving: { dynamicBatching: false },
      slo: { tickMs: 50 },
    });
    await srv.warden.registry.push({ model: 'busy', bytes: readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx')), aliases: ['champion'] });
    await srv.warden.table.settled();
  });
  afterAll(() => srv.close());

  it('creates (201), replaces (200), lists and reads SLOs; slo.yaml in the data directory holds them', async () => {
    const availability = { deployment: 'busy', sli: { kind: 'availability' }, objective: 0.999, period: '30d' };
    expect((await srv.json('PUT', '/api/v1/slos/busy-availability', { ...availability, objective: 0.99 })).status).toBe(201);
    const replaced = await srv.json('PUT', '/api/v1/slos/busy-availability', availability);
    expect(replaced.status).toBe(200);
    expect(replaced.body).toEqual({ name: 'busy-availability', ...availability });
    const latency = await srv.json('PUT', '/api/v1/slos/busy-latency', { deployment: 'busy', sli: { kind: 'latency', thresholdMs: 10_000 }, objective: 0.99, period: '7d' });
    expect(latency.status).toBe(201);

    const list = await srv.json('GET', '/api/v1/slos');
    expect(list.status).toBe(200);
    expect(list.body.slos.map((s: { name: string }) => s.name)).toEqual(['busy-availability', 'busy-latency']);
    expect(list.body.file).toBe(path.join(srv.dataDir, 'slo.yaml'));
    expect(list.body.timeScale).toBe(1);
    expect((await srv.json('GET', '/api/v1/slos/busy-latency')).body.sli).toEqual({ kind: 'latency', thresholdMs: 10_000 });
    const text = readFileSync(path.join(srv.dataDir, 'slo.yaml'), 'utf8');
    expect(text).toContain('name: busy-availability');
    expect(text).toContain('thresholdMs: 10000');
  });

  it('answers 400 with the path of each problem, 404 for unknown SLOs', async () => {
    const bad = await srv.json('PUT', '/api/v1/slos/x', { deployment: 'busy', sli: { kind: 'latency' }, objective: 1.5, period: 'a month' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('WARDEN_BAD_REQUEST');
    expect(bad.body.error).toContain('sli.thresholdMs: Required');
    expect(bad.body.error).toContain('objective: must be below 1');
    expect(bad.body.error).toContain('period: must be a duration');
    const kind = await srv.json('PUT', '/api/v1/slos/x', { deployment: 'busy', sli: { kind: 'p99' }, objective: 0.9, period: '1d' });
    expect(kind.body.error).toContain('sli.kind: must be one of latency, availability, accuracy, drift_free, completeness, cost');
    expect((await srv.json('PUT', '/api/v1/slos/Bad Name', { deployment: 'busy', sli: { kind: 'availability' }, objective: 0.9, period: '1d' })).body.error).toContain('name: must be');
    expect((await srv.json('PUT', '/api/v1/slos/x', 'not json')).status).toBe(400);
    expect((await srv.json('PUT', '/api/v1/slos/x', { name: 'y', deployment: 'busy', sli: { kind: 'availability' }, objective: 0.9, period: '1d' })).status).toBe(400);
    expect((await srv.json('PUT', '/api/v1/slos/cost', { deployment: 'busy', sli: { kind: 'cost', maxCostPer1k: 1 }, objective: 0.9, period: '1d' })).body.error).toContain(
      'slo.costPerCpuHour',
    );
    for (const p of ['/api/v1/slos/nope', '/api/v1/slos/nope/status', '/api/v1/slos/nope/series']) {
      const r = await srv.json('GET', p);
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('WARDEN_NOT_FOUND');
    }
    expect((await srv.json('DELETE', '/api/v1/slos/nope')).status).toBe(404);
    expect((await srv.json('GET', '/api/v1/slos')).body.slos).toHaveLength(2);
  });

  it('counts successes and 5xx failures against availability, but not 400s; latency counts successes only', async () => {
    for (let i = 0; i < 6; i++) expect((await srv.json('POST', '/v2/models/busy/infer', good)).status).toBe(200);
    // Client errors: an empty inputs array, and a tensor of the wrong shape.
    expect((await srv.json('POST', '/v2/models/busy/infer', { inputs: [] })).status).toBe(400);
    expect((await srv.json('POST', '/v2/models/busy/infer', { inputs: [{ ...good.inputs[0], shape: [1, 3], data: [1, 2, 3] }] })).status).toBe(400);
    expect((await srv.json('POST', '/v2/models/nope/infer', good)).status).toBe(404);
    // A model whose run fails: the runtime throws, the caller gets a 500.
    await withCrashingRuntime(srv, 'busy', 1, async () => {
      for (let i = 0; i < 2; i++) expect((await srv.json('POST', '/v2/models/busy/infer', good)).status).toBe(500);
    });
    await srv.warden.log!.flush();

    const st = await srv.json('GET', '/api/v1/slos/busy-availability/status');
    expect(st.status).toBe(200);
    // 6 good + 2 bad; the two 400s and the 404 are left out.
    expect(st.body.budget).toMatchObject({ good: 6, total: 8, bad: 2 });
    expect(st.body.budget.sli).toBeCloseTo(0.75, 12);
    // 25% errors against a 0.1% budget: burn rate 250 over every window, every row fires.
    expect(st.body.burnRates[0].longBurnRate).toBeCloseTo(250, 6);
    expect(st.body.firing).toEqual(['1h/5m', '6h/30m', '1d/2h', '3d/6h']);
    expect(st.body.slo.name).toBe('busy-availability');

    const lat = await srv.json('GET', '/api/v1/slos/busy-latency/status');
    expect(lat.body.budget).toMatchObject({ good: 6, total: 6 });
    expect(lat.body.firing).toEqual([]);
    // A 7-day SLO: its fast page looks at 14 minutes.
    expect(lat.body.burnRates[0].longMs).toBe(14 * 60_000);

    const series = await srv.json('GET', '/api/v1/slos/busy-availability/series');
    expect(series.body.bucketMs).toBe(60_000);
    const sum = series.body.points.reduce((a: { good: number; total: number }, p: { good: number; total: number }) => ({ good: a.good + p.good, total: a.total + p.total }), { good: 0, total: 0 });
    expect(sum).toEqual({ good: 6, total: 8 });
    expect((await srv.json('GET', '/api/v1/slos/busy-availability/series?since=nope')).status).toBe(400);

    // The counts reach the store (not just this replica's memory).
    const stored = await srv.warden.stores.events.querySli({ slo: 'busy-availability' });
    expect(stored.reduce((a, p) => a + p.total, 0)).toBe(8);
  });

  it('registers its alert source with alerting; the page of a burning SLO is active', async () => {
    expect(srv.warden.alerting?.sourceNames()).toContain('slo');
    const conditions = await srv.warden.slo!.alertSource().evaluate(Date.now() + 1000);
    const page = conditions.find((c) => c.labels.slo === 'busy-availability' && c.labels.window === '1h/5m')!;
    expect(page).toMatchObject({ alertname: 'SLOErrorBudgetBurn', severity: 'page', active: true });
  });

  it('warden slo list and status print the SLOs, budgets and burn rates', async () => {
    const list = await cli(['slo', 'list', '--url', srv.url]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/NAME\s+DEPLOYMENT\s+SLI\s+OBJECTIVE\s+PERIOD/);
    expect(list.stdout).toMatch(/busy-latency\s+busy\s+latency <= 10000ms\s+99%\s+7d/);
    const status = await cli(['slo', 'status', 'busy-availability', '--url', srv.url]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('objective 99.9% over 30d');
    expect(status.stdout).toContain('SLI 75.00% of 8 events; error budget remaining');
    expect(status.stdout).toMatch(/1h\/5m\s+page\s+14.4x\s+250.00x\s+250.00x\s+FIRING/);
    const json = await cli(['slo', 'status', '--json', '--url', srv.url]);
    expect(JSON.parse(json.stdout).slos.map((s: { slo: { name: string } }) => s.slo.name)).toEqual(['busy-availability', 'busy-latency']);
    const missing = await cli(['slo', 'status', 'nope', '--url', srv.url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('WARDEN_NOT_FOUND');
  });

  it('deletes an SLO with its series (204), then 404', async () => {
    expect((await srv.json('DELETE', '/api/v1/slos/busy-availability')).status).toBe(204);
    expect((await srv.json('GET', '/api/v1/slos/busy-availability')).status).toBe(404);
    expect(await srv.warden.stores.events.querySli({ slo: 'busy-availability' })).toEqual([]);
    expect(readFileSync(path.join(srv.dataDir, 'slo.yaml'), 'utf8')).not.toContain('busy-availability');
  });
});

describe('time-scaled SLOs on a real server (slo.timeScale 0.001, as a game day runs them)', () => {
  it('pages within seconds of failures and lets the fast page go once the 0.3 s short window is clean', async () => {
    const srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 }, serving: { dynamicBatching: false }, slo: { timeScale: 0.001, tickMs: 20 } });
    try {
      await srv.warden.registry.push({ model: 'busy', bytes: readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx')) });
      await srv.warden.table.settled();
      expect((await srv.json('PUT', '/api/v1/slos/avail', { deployment: 'busy', sli: { kind: 'availability' }, objective: 0.99, period: '30d' })).status).toBe(201);
      const lv = srv.warden.table.peek('busy', 1)!;
      const run = lv.runtime.run;
      lv.runtime.run = async () => {
        throw new Error('session crashed');
      };
      try {
        for (let i = 0; i < 5; i++) expect((await srv.json('POST', '/v2/models/busy/infer', good)).status).toBe(500);
      } finally {
        lv.runtime.run = run;
      }
      await srv.warden.log!.flush();
      const st = (await srv.json('GET', '/api/v1/slos/avail/status')).body;
      // 30 days → 43.2 minutes; 1h/5m → 3.6 s / 0.3 s; 6h/30m → 21.6 s / 1.8 s; buckets of 60 ms.
      expect(st.periodMs).toBe(2_592_000);
      expect(st.burnRates.map((b: { longMs: number; shortMs: number }) => [b.longMs, b.shortMs])).toEqual([
        [3600, 300],
        [21_600, 1800],
        [86_400, 7200],
        [259_200, 21_600],
      ]);
      // Every valid request failed: burn rate 100 against a 1% budget (over the last 3.6 s, which holds them).
      expect(st.burnRates[0].longBurnRate).toBeCloseTo(100, 9);
      // The decisions over time, from the series the server recorded (so no assertion races the wall clock):
      // just after the last failure every row fires; 0.4 s later the 0.3 s window is clean and the fast page
      // stops while the 1.8 s window still burns.
      const series = (await srv.json('GET', '/api/v1/slos/avail/series')).body;
      expect(series.bucketMs).toBe(60);
      expect(series.points.reduce((a: number, p: { total: number }) => a + p.total, 0)).toBe(5);
      const last = Math.max(...series.points.map((p: { ts: number }) => p.ts)) + 60;
      const slo = { objective: 0.99, period: '30d' };
      const firing = (at: number) => multiWindowAlerts(slo, series.points, at, { timeScale: 0.001 }).filter((a) => a.firing).map((a) => a.name);
      expect(firing(last)).toEqual(['1h/5m', '6h/30m', '1d/2h', '3d/6h']);
      expect(firing(last + 400)).toEqual(['6h/30m', '1d/2h', '3d/6h']);
      // 1.8 s on, the slower page stops too; the tickets' 7.2 s and 21.6 s short windows still burn.
      expect(firing(last + 1900)).toEqual(['1d/2h', '3d/6h']);
    } finally {
      await srv.close();
    }
  });
});

describe('SLOs switched off', () => {
  it('answers 409 on every SLO route and writes no file', async () => {
    const srv = await startTestServer({ slo: { enabled: false } });
    try {
      for (const [m, p] of [
        ['GET', '/api/v1/slos'],
        ['GET', '/api/v1/slos/a/status'],
        ['PUT', '/api/v1/slos/a'],
      ] as const) {
        const r = await srv.json(m, p, m === 'PUT' ? { deployment: 'busy', sli: { kind: 'availability' }, objective: 0.9, period: '1d' } : undefined);
        expect(r.status).toBe(409);
        expect(r.body.error).toContain('slo.enabled: false');
      }
      expect(srv.warden.slo).toBeUndefined();
      expect(existsSync(path.join(srv.dataDir, 'slo.yaml'))).toBe(false);
    } finally {
      await srv.close();
    }
  });
});
