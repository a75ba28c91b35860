/**
 * Training sets joined with the feature store: labelled predictions served over HTTP, then `POST /api/v1/datasets`
 * with `features` adds each row's point-in-time-correct feature values at its prediction time — by a model input
 * (`weekday`) and by the caller key (`key:^([^@]+)@` picks the station out of `s1@17`). Values pushed after a
 * prediction, and a backfill written after it, never reach it. CSV and Parquet, lineage, refusals, and the CLI.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemo } from '../../src/lifecycle/index.ts';
import { runWarden } from '../helpers/cli.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const MODEL = 'bike-demand';
const FEATURES = ['season', 'mnth', 'hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed'];
const WEEKDAY_MEAN = [10.5, 11.5, 12.5, 13.5, 14.5, 15.5, 16.5];

interface Sent {
  key: string;
  station: string;
  weekday: number;
  batch: 'A' | 'B';
}

let srv: TestServer;
let dir: string;
const sent = new Map<string, Sent>();

const instance = (weekday: number) => ({ season: 2, mnth: 6, hr: 17, holiday: 0, weekday, workingday: 1, weathersit: 1, temp: 0.6, atemp: 0.58, hum: 0.5, windspeed: 0.2 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'warden-dataset-features-'));
  writeFileSync(path.join(dir, 'weekday.csv'), `weekday,since,wk_mean\n${WEEKDAY_MEAN.map((m, d) => `${d},2000-01-01,${m}`).join('\n')}\n`);
  writeFileSync(
    path.join(dir, 'features.yaml'),
    `entities:
  - {name: station, joinKeys: [station_id]}
  - {name: day_of_week, joinKeys: [weekday]}
featureViews:
  - {name: station_load, entities: [station], source: {kind: push}, timestampField: ts, createdTimestampField: created, ttl: 1h, schema: [{name: load, dtype: float}, {name: busy, dtype: bool}]}
  - {name: weekday_stats, entities: [day_of_week], source: {kind: file, path: weekday.csv}, timestampField: since, ttl: 0, schema: [{name: wk_mean, dtype: float}]}
`,
  );
  srv = await startTestServer({ features: { file: path.join(dir, 'features.yaml') }, predictionLog: { flushIntervalMs: 20 } });
  await seedDemo(srv.warden.registry, srv.warden.logger);
  await srv.warden.table.settled();
  const push = async (rows: unknown[]) => expect((await srv.json('POST', '/api/v1/features/station_load/push', { rows })).status).toBe(200);
  const predict = async (batch: 'A' | 'B', n: number) => {
    const rows: Sent[] = Array.from({ length: n }, (_, i) => ({ key: `s${i % 3}@${batch}${i}`, station: `s${i % 3}`, weekday: i % 7, batch }));
    const res = await srv.json('POST', `/v1/models/${MODEL}:predict`, { instances: rows.map((r) => instance(r.weekday)), parameters: { keys: rows.map((r) => r.key) } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    for (const r of rows) sent.set(r.key, r);
  };
  const t0 = Date.now();
  // Known before batch A: s0 and s1 (s2 has no row within the TTL: its only row is 2 h old).
  await push([
    { station_id: 's0', ts: t0 - 60_000, created: t0 - 60_000, load: 1.5, busy: false },
    { station_id: 's1', ts: t0 - 60_000, created: t0 - 60_000, load: 2.5, busy: true },
    { station_id: 's2', ts: t0 - 2 * 3_600_000, created: t0 - 2 * 3_600_000, load: 9 },
  ]);
  await sleep(5);
  await predict('A', 30);
  await sleep(5);
  // Pushed after batch A, before batch B (created now: the push time).
  const t1 = Date.now();
  await push([{ station_id: 's0', ts: t1, load: 7.25, busy: true }]);
  await sleep(5);
  await predict('B', 30);
  await sleep(5);
  // A backfill of s1, dated before batch A but written after everything: it reaches no row.
  await push([{ station_id: 's1', ts: t0, created: Date.now(), load: 99 }]);
  await srv.warden.log!.flush();
  const labels = [...sent.values()].map((s) => ({ key: s.key, value: s.weekday * 10, source: 'human' }));
  expect((await srv.json('POST', '/api/v1/labels', { labels })).body).toMatchObject({ unmatched: 0, invalid: 0 });
}, 60_000);
afterAll(async () => {
  await srv?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What the point-in-time rule gives a row. */
function expected(s: Sent): { load: number | null; busy: boolean | null; wk_mean: number } {
  const wk_mean = WEEKDAY_MEAN[s.weekday]!;
  if (s.station === 's0') return s.batch === 'A' ? { load: 1.5, busy: false, wk_mean } : { load: 7.25, busy: true, wk_mean };
  if (s.station === 's1') return { load: 2.5, busy: true, wk_mean };
  return { load: null, busy: null, wk_mean };
}

const exportRaw = (body: unknown) => fetch(`${srv.url}/api/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const keyed = { features: ['station_load', 'weekday_stats:wk_mean'], featureKeys: { station_id: 'key:^([^@]+)@' } };

describe('training sets with feature-store features', () => {
  it('joins each labelled row with the values known at its prediction time, after the model features', async () => {
    const res = await exportRaw({ model: MODEL, ...keyed });
    expect(res.status, res.status === 200 ? '' : await res.clone().text()).toBe(200);
    expect(res.headers.get('x-warden-rows')).toBe(String(sent.size));
    const rows = parse(Buffer.from(await res.arrayBuffer()), { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0]!)).toEqual([...FEATURES, 'load', 'busy', 'wk_mean', 'label', 'output.variable', 'request_id', 'row', 'key', 'version', 'prediction_time', 'label_time', 'label_source', 'late', 'segment']);
    expect(rows).toHaveLength(sent.size);
    for (const r of rows) {
      const s = sent.get(r.key!)!;
      const e = expected(s);
      expect([r.load, r.busy, r.wk_mean, r.label], r.key).toEqual([e.load === null ? '' : String(e.load), e.busy === null ? '' : String(e.busy), String(e.wk_mean), String(s.weekday * 10)]);
    }
    const id = Number(res.headers.get('x-warden-dataset-id'));
    const record = (await srv.json('GET', `/api/v1/datasets/${id}`)).body;
    expect(record).toMatchObject({ state: 'complete', rows: sent.size, filter: { model: MODEL, features: keyed.features, featureKeys: keyed.featureKeys } });
    expect(record.columns).toContain('wk_mean');
  });

  it('writes typed joined columns to Parquet, with full names when asked', async () => {
    const res = await exportRaw({ model: MODEL, format: 'parquet', fullNames: true, ...keyed });
    expect(res.status).toBe(200);
    const rows = (await parquetReadObjects({ file: await res.arrayBuffer() })) as Record<string, unknown>[];
    expect(rows).toHaveLength(sent.size);
    for (const r of rows) {
      const e = expected(sent.get(String(r.key))!);
      expect([r.station_load__load, r.station_load__busy, r.weekday_stats__wk_mean]).toEqual([e.load, e.busy, e.wk_mean]);
    }
  });

  it('refuses a join it cannot make, naming the feature or key, recording nothing', async () => {
    const before = (await srv.json('GET', '/api/v1/datasets?limit=1000')).body.datasets.length;
    const bad = async (body: Record<string, unknown>, msg: RegExp) => {
      const res = await srv.json('POST', '/api/v1/datasets', { model: MODEL, ...body });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toMatch(msg);
    };
    await bad({ features: ['station_load'] }, /view station_load needs the join key station_id, which is not an input of the model; map it with featureKeys/);
    await bad({ features: ['nope:x'] }, /"nope:x" names no feature view/);
    await bad({ ...keyed, featureKeys: { station_id: 'stationid' } }, /featureKeys\.station_id: "stationid" is not an input of the model \(its inputs: season, mnth/);
    await bad({ ...keyed, featureKeys: { station_id: 'key:([' } }, /featureKeys\.station_id: "\(\[" is not an RE2 pattern/);
    await bad({ ...keyed, featureKeys: { ...keyed.featureKeys, rider: 'key' } }, /featureKeys\.rider: not a join key of the views asked for/);
    await bad({ features: ['weekday_stats'], segments: ['season'], featureKeys: { weekday: 'temp' }, fullNames: 'yes' }, /fullNames/);
    expect((await srv.json('GET', '/api/v1/datasets?limit=1000')).body.datasets).toHaveLength(before);
  });

  it('warden dataset export --features --feature-key writes the same file', async () => {
    const out = path.join(dir, 'train.csv');
    const r = await runWarden(['dataset', 'export', MODEL, '--out', out, '--features', keyed.features.join(','), '--feature-key', 'station_id=key:^([^@]+)@'], { WARDEN_URL: srv.url });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(`${out}.partial`)).toBe(false);
    const rows = parse(readFileSync(out), { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(sent.size);
    for (const row of rows) expect(row.wk_mean).toBe(String(expected(sent.get(row.key!)!).wk_mean));
    const bad = await runWarden(['dataset', 'export', MODEL, '--out', out, '--feature-key', 'station_id=key'], { WARDEN_URL: srv.url });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--feature-key needs --features/);
  });
});
