/**
 * Skew and freshness on a real server: a CSV view materialized, a linear model bound to it and served by entity key
 * (:predict); the source then rewritten with cnt_lag1 ×100 (the online store keeps the old values). The skew check
 * (the features-skew lease holder's turn) gives warden_feature_skew_rate 1 for cnt_lag1 and 0 for temp_lag1, the
 * report is at GET /api/v1/features/skew (the WardenFeatureSkew rule is tested in skew.test.ts). warden_feature_staleness_seconds is exported and
 * a feature_freshness SLO counts good minutes while the view is fresh and bad ones once its threshold is passed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeOnnx } from '../../src/lifecycle/trainer/onnx-writer.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const HOUR = 3_600_000;
const NOW = Date.now();
const DAYS = 40;
const FEATURES = ['hr', 'cnt_lag1', 'temp_lag1'];

const csv = (scale: number) =>
  `dteday,ts,cnt_lag1,temp_lag1\n${Array.from({ length: DAYS }, (_, d) => `day${d},${NOW - (DAYS - d) * HOUR},${(4000 + d) * scale},${0.3 + d / 100}`).join('\n')}\n`;

describe('feature skew and freshness over HTTP', () => {
  let srv: TestServer;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-skew-http-'));
    file = path.join(dir, 'daily.csv');
    writeFileSync(file, csv(1));
    // The skew timer never fires here (the test takes the turn itself); SLO minutes are 60 ms.
    srv = await startTestServer({ features: { skewEveryMs: 3_600_000 }, slo: { timeScale: 0.001, tickMs: 10 } });
    const defs = await srv.json('PUT', '/api/v1/features', {
      entities: [{ name: 'day', joinKeys: ['dteday'] }],
      featureViews: [
        {
          name: 'daily',
          entities: ['day'],
          source: { kind: 'file', path: file, format: 'csv' },
          timestampField: 'ts',
          ttl: 0,
          schema: [
            { name: 'cnt_lag1', dtype: 'int' },
            { name: 'temp_lag1', dtype: 'float' },
          ],
        },
      ],
    });
    expect(defs.status, JSON.stringify(defs.body)).toBe(200);
    const model = writeOnnx({ kind: 'linear', featureCount: 3, weights: Float32Array.from([1, 0.001, 10]), bias: 0.5, metadata: {} });
    const pushed = await fetch(`${srv.url}/api/v1/models/bike/versions?alias=champion`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'x-warden-features': JSON.stringify(FEATURES.map((name) => ({ name }))) },
      body: Buffer.from(model),
    });
    expect(pushed.status, await pushed.text()).toBe(201);
    await srv.warden.table.settled();
    const bound = await srv.json('PUT', '/api/v1/deployments/bike/features', { views: ['daily'] });
    expect(bound.status, JSON.stringify(bound.body)).toBe(200);
    const run = await srv.json('POST', '/api/v1/features/materialize', { views: ['daily'] });
    expect(run.status, JSON.stringify(run.body)).toBe(202);
    for (let i = 0; i < 200; i++) {
      const st = (await srv.json('GET', `/api/v1/features/materialize/${run.body.run.id}`)).body.run;
      if (st.state !== 'running' && st.state !== 'queued') break;
      await new Promise((r) => setTimeout(r, 20));
    }
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const metric = async (name: string) => (await (await fetch(`${srv.url}/metrics`)).text()).split('\n').filter((l) => l.startsWith(name));

  it('exports the view\'s staleness: an hour since the newest event', async () => {
    const [line] = await metric('warden_feature_staleness_seconds{view="daily"}');
    const seconds = Number(line!.split(' ')[1]);
    expect(seconds).toBeGreaterThanOrEqual(3600);
    expect(seconds).toBeLessThan(3600 + 60);
  });

  it('served by entity key; the source rewritten ×100 gives skew 1 on cnt_lag1 only, by metric and API', async () => {
    const instances = Array.from({ length: DAYS }, (_, d) => ({ hr: 8, dteday: `day${d}` }));
    const res = await srv.json('POST', '/v1/models/bike:predict', { instances });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    writeFileSync(file, csv(100));
    const reports = await srv.warden.online.skew.turn();
    expect(reports.map((r) => r.rows)).toEqual([DAYS]);
    const api = await srv.json('GET', '/api/v1/features/skew');
    expect(api.status).toBe(200);
    const daily = api.body.views.find((v: { view: string }) => v.view === 'daily');
    expect(Object.fromEntries(daily.features.map((f: { feature: string; rate: number }) => [f.feature, f.rate]))).toEqual({ cnt_lag1: 1, temp_lag1: 0 });
    expect(daily.examples[0]).toMatchObject({ feature: 'cnt_lag1', deployment: 'bike', served: 4000, offline: 400_000, joinKeys: { dteday: 'day0' } });
    expect(await metric('warden_feature_skew_rate{')).toEqual(['warden_feature_skew_rate{view="daily",feature="cnt_lag1"} 1', 'warden_feature_skew_rate{view="daily",feature="temp_lag1"} 0']);
    expect(await metric('warden_feature_skew_sample_rows{')).toEqual([`warden_feature_skew_sample_rows{view="daily"} ${DAYS}`]);
  });

  it('POST /api/v1/features/skew/check runs a check now; with nothing sampled it says so; a body with fields is refused', async () => {
    const res = await srv.json('POST', '/v1/models/bike:predict', { instances: [{ hr: 9, dteday: 'day3' }, { hr: 9, dteday: 'day4' }] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const now = await srv.json('POST', '/api/v1/features/skew/check', {});
    expect(now.status, JSON.stringify(now.body)).toBe(200);
    expect(now.body.views).toHaveLength(1);
    expect(now.body.views[0]).toMatchObject({ view: 'daily', rows: 2, seen: 2 });
    // The file still says ×100: both rows differ on cnt_lag1.
    expect(now.body.views[0].features.find((f: { feature: string }) => f.feature === 'cnt_lag1')).toMatchObject({ compared: 2, differing: 2, rate: 1 });
    const empty = await srv.json('POST', '/api/v1/features/skew/check');
    expect(empty.status).toBe(200);
    expect(empty.body.views).toEqual([]);
    expect(empty.body.message).toMatch(/no served rows of a feature view were sampled since the last check/);
    const bad = await srv.json('POST', '/api/v1/features/skew/check', { view: 'daily' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'WARDEN_BAD_REQUEST' });
    expect(bad.body.error).toMatch(/body must be empty or \{\}/);
    // The last report is still the one with rows: an empty check does not overwrite it.
    const last = await srv.json('GET', '/api/v1/features/skew?view=daily');
    expect(last.body.views[0]).toMatchObject({ rows: 2 });
  });

  it('feature_freshness: good minutes while under the threshold, bad once past it', async () => {
    const put = async (name: string, maxStalenessMs: number) =>
      srv.json('PUT', `/api/v1/slos/${name}`, { deployment: 'bike', sli: { kind: 'feature_freshness', view: 'daily', maxStalenessMs }, objective: 0.99, period: '30d' });
    expect((await put('daily-fresh', 2 * HOUR)).status).toBe(201);
    expect((await put('daily-strict', 10 * 60_000)).status).toBe(201);
    // A few scaled minutes (60 ms each) pass.
    await new Promise((r) => setTimeout(r, 400));
    const fresh = await srv.json('GET', '/api/v1/slos/daily-fresh/status');
    const strict = await srv.json('GET', '/api/v1/slos/daily-strict/status');
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(200);
    expect(fresh.body.budget.total).toBeGreaterThanOrEqual(3);
    expect(fresh.body.budget.good).toBe(fresh.body.budget.total);
    expect(strict.body.budget.total).toBeGreaterThanOrEqual(3);
    expect(strict.body.budget.good).toBe(0);
    expect(strict.body.lastStaleness.stalenessMs).toBeGreaterThan(HOUR);
  });
});
