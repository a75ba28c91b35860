/**
 * GET /api/v1/deployments/{name}/traffic on a real server: the counts equal what was sent (ok, 4xx, 5xx, shadow
 * copies of a shadow rollout), the parameters are validated, an unknown deployment is 404, and the series survives
 * a restart (the last counts are written at close).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWarden } from '../../src/app.ts';
import { parseConfig } from '../../src/config.ts';
import { bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { HISTOGRAM_LENGTH } from '../../src/telemetry/index.ts';
import { bikeInstance } from '../helpers/rollouts.ts';
import { fixturesDir, startTestServer, withCrashingRuntime, type TestServer } from '../helpers/server.ts';

const good = (rows: number) => ({ inputs: [{ name: 'input', shape: [rows, 12], datatype: 'FP32', data: new Array(rows * 12).fill(0.25) }] });
const sum = (points: { requests: number }[]) => points.reduce((s, p) => s + p.requests, 0);

describe('GET /api/v1/deployments/{name}/traffic', () => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startTestServer({ slo: { costPerCpuHour: 2 }, rollouts: { syncMs: 100 } });
    await srv.warden.registry.push({ model: 'busy', bytes: readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx')) });
    for (const seed of [1, 2]) {
      const { onnx } = await train({ ...bikeSharingDemoOptions('linear'), seed });
      await srv.warden.registry.push({ model: 'bike', bytes: onnx, ...(seed === 1 ? { aliases: ['champion'] } : {}) });
    }
    await srv.warden.table.settled();
  }, 60_000);
  afterAll(() => srv.close());

  it('counts ok, 4xx and 5xx requests, rows and error codes', async () => {
    for (let i = 0; i < 7; i++) expect((await srv.json('POST', '/v2/models/busy/infer', good(3))).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await srv.json('POST', '/v2/models/busy/infer', { inputs: [] })).status).toBe(400);
    await withCrashingRuntime(srv, 'busy', 1, async () => {
      expect((await srv.json('POST', '/v2/models/busy/infer', good(1))).status).toBe(500);
    });
    // Not a version of busy: a 404 before any version was chosen, counted under version 0.
    expect((await srv.json('POST', '/v2/models/busy/versions/9/infer', good(1))).status).toBe(404);
    const r = await srv.json('GET', '/api/v1/deployments/busy/traffic');
    expect(r.status).toBe(200);
    const t = r.body.totals;
    expect(t).toMatchObject({ requests: 11, ok: 7, clientErrors: 3, serverErrors: 1, shadow: 0, rows: 21 });
    expect(t.availability).toBeCloseTo(7 / 8);
    expect(t.errorRate).toBeCloseTo(4 / 11);
    // Most frequent first, each with the HTTP status its callers got (the error catalogue's).
    expect(t.errors).toEqual([
      { code: 'WARDEN_BAD_REQUEST', count: 2, status: 400 },
      { code: 'WARDEN_INTERNAL', count: 1, status: 500 },
      { code: 'WARDEN_VERSION_NOT_FOUND', count: 1, status: 404 },
    ]);
    expect(t.p50Ms).toBeGreaterThan(0);
    expect(t.p99Ms).toBeGreaterThanOrEqual(t.p50Ms);
    expect(t.costPer1k).toBeCloseTo((t.cpuMsPer1k / 3_600_000) * 2);
    expect(r.body).toMatchObject({ deployment: 'busy', stepMs: 60_000, costPerCpuHour: 2, versions: [{ version: 0, requests: 1 }, { version: 1, requests: 10 }] });
    expect(r.body.until - r.body.since).toBe(86_400_000);
    expect(sum(r.body.points)).toBe(11);
    for (const p of r.body.points) expect(Object.keys(p).sort()).toEqual(['clientErrors', 'cpuMs', 'meanMs', 'ok', 'p50Ms', 'p95Ms', 'p99Ms', 'requests', 'rows', 'serverErrors', 'shadow', 'ts'].sort());
    // A week defaults to hour steps.
    const week = await srv.json('GET', `/api/v1/deployments/busy/traffic?since=${Date.now() - 7 * 86_400_000}`);
    expect(week.body.stepMs).toBe(3_600_000);
    expect(week.body.totals.requests).toBe(11);
    const v1 = await srv.json('GET', '/api/v1/deployments/busy/traffic?version=1&step=hour');
    expect(v1.body.totals.requests).toBe(10);
    expect(v1.body.versions).toEqual([{ version: 1, requests: 10 }]);
  });

  it('gives each error code its status: 429 for rate limiting, 500 for a code outside the catalogue (or "other")', async () => {
    const ts = Date.UTC(2026, 0, 5, 10);
    const histogram = new Array(HISTOGRAM_LENGTH).fill(0);
    await srv.warden.stores.events.addTraffic([
      { model: 'busy', version: 1, step: 'hour', ts, requests: 9, ok: 0, clientErrors: 4, serverErrors: 5, shadow: 0, rows: 0, latencySumMs: 9, minMs: 1, maxMs: 1, cpuMs: 0, histogram, errors: { WARDEN_RATE_LIMITED: 4, other: 3, WARDEN_SOMETHING_NEW: 2 } },
    ]);
    const r = await srv.json('GET', `/api/v1/deployments/busy/traffic?since=${ts}&until=${ts + 3_600_000}&step=hour`);
    expect(r.status).toBe(200);
    expect(r.body.totals.errors).toEqual([
      { code: 'WARDEN_RATE_LIMITED', count: 4, status: 429 },
      { code: 'other', count: 3, status: 500 },
      { code: 'WARDEN_SOMETHING_NEW', count: 2, status: 500 },
    ]);
  });

  it('counts the shadow copies of a rollout under the candidate, apart from requests', async () => {
    const start = await srv.json('POST', '/api/v1/deployments/bike/deploy', { version: 2, strategy: 'shadow', spec: { mirror: 100, analysis: { interval: '1h', minSamples: 30 } } });
    expect(start.status).toBe(200);
    for (let i = 0; i < 40; i++) expect((await srv.json('POST', '/v1/models/bike:predict', { instances: [bikeInstance(i)] })).status).toBe(200);
    await srv.warden.shadow.drained();
    const st = srv.warden.shadow.stats();
    const r = await srv.json('GET', '/api/v1/deployments/bike/traffic');
    expect(r.body.totals).toMatchObject({ requests: 40, ok: 40, shadow: st.run + st.failed });
    expect(st.run).toBe(40);
    expect(r.body.versions).toEqual([{ version: 1, requests: 40 }, { version: 2, requests: 0 }]);
    const cand = await srv.json('GET', '/api/v1/deployments/bike/traffic?version=2');
    expect(cand.body.totals).toMatchObject({ requests: 0, shadow: 40, p50Ms: null, availability: null, errorRate: null });
  });

  it('validates its parameters', async () => {
    const now = Date.now();
    const cases: [string, RegExp][] = [
      ['since=yesterday', /since must be epoch milliseconds or an ISO-8601 time/],
      ['until=-5', /until must be epoch milliseconds or an ISO-8601 time/],
      [`since=${now}&until=${now - 1000}`, /since .* must be before until/],
      ['step=day', /step must be "minute" or "hour"/],
      ['version=1.5', /version must be a version number/],
      ['version=abc', /version must be a version number/],
      ['limit=10', /unknown parameter "limit"/],
      [`since=${now - 60 * 86_400_000}&step=minute`, /at most 50000 points per call: narrow since\/until or use step=hour/],
      [`since=1970-01-01T00:00:00Z&step=hour`, /at most 50000 points/],
    ];
    for (const [query, message] of cases) {
      const r = await srv.json('GET', `/api/v1/deployments/busy/traffic?${query}`);
      expect(r.status, query).toBe(400);
      expect(r.body.code, query).toBe('WARDEN_BAD_REQUEST');
      expect(r.body.error, query).toMatch(message);
    }
    const iso = await srv.json('GET', `/api/v1/deployments/busy/traffic?since=${new Date(now - 3_600_000).toISOString()}&until=${new Date(now + 60_000).toISOString()}`);
    expect(iso.status).toBe(200);
    expect(iso.body.totals.requests).toBe(11);
    const unknown = await srv.json('GET', '/api/v1/deployments/nope/traffic');
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('WARDEN_MODEL_NOT_FOUND');
  });
});

describe('traffic series across a restart', () => {
  it('writes the last counts at close, and the next process reads them', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'warden-traffic-restart-'));
    // A flush interval far longer than the test: only the flush at close can write the counts.
    const config = parseConfig({ server: { host: '127.0.0.1', port: 0 }, storage: { dataDir }, auth: { required: false }, logLevel: 'silent', traffic: { flushIntervalMs: 600_000 } });
    try {
      const first = createWarden(config);
      const url = await first.listen();
      await first.registry.push({ model: 'busy', bytes: readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx')) });
      await first.table.settled();
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${url}/v2/models/busy/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(good(2)) });
        expect(res.status).toBe(200);
      }
      await first.close();
      const second = createWarden(config);
      const url2 = await second.listen();
      const r = (await (await fetch(`${url2}/api/v1/deployments/busy/traffic`)).json()) as { totals: { requests: number; rows: number } };
      expect(r.totals).toMatchObject({ requests: 5, rows: 10 });
      await second.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
