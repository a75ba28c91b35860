/**
 * Skew: served values (what the online store answered, as enrichment filled them) compared with the offline store's
 * point-in-time value for the same entity and time. A source rewritten ×100 on one feature after materialization
 * (the online store still holding the old values) gives a skew rate of 1 for that feature and 0 for the others;
 * before the rewrite every rate is 0. Floats agree within 1e-6 relative, other types exactly; the sample is bounded.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BUILTIN_RULES, MetricRuleSource } from '../../src/alerting/index.ts';
import { Enrichment } from '../../src/features/enrich.ts';
import { Materializer } from '../../src/features/materialize.ts';
import { OnlineCache } from '../../src/features/online-cache.ts';
import { sameValue, SkewMonitor, type SkewSample } from '../../src/features/skew.ts';
import type { FeatureRepo } from '../../src/features/types.ts';
import { SqliteFeatureStore } from '../../src/storage/sqlite/feature-store.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite/metadata-store.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2012, 0, 1);
const logger = pino({ level: 'silent' });
const DAYS = 60;

function csv(scale = 1): string {
  const lines = ['day_id,ts,cnt_prev,temp_prev,weekday,season'];
  for (let d = 0; d < DAYS; d++) lines.push(`d${d},${new Date(T0 + d * DAY).toISOString()},${(1000 + d * 37.5) * scale},${0.2 + d / 1000},${d % 7},${d < 30 ? 'winter' : 'spring'}`);
  return lines.join('\n') + '\n';
}

describe('feature skew', () => {
  let dir: string;
  let features: SqliteFeatureStore;
  let metadata: SqliteMetadataStore;
  let repo: FeatureRepo;
  let cache: OnlineCache;
  let registry: Registry;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-skew-'));
    features = new SqliteFeatureStore(path.join(dir, 'features.db'));
    metadata = new SqliteMetadataStore(path.join(dir, 'metadata.db'));
    registry = new Registry();
    repo = {
      entities: [{ name: 'day', joinKeys: ['day_id'] }],
      featureViews: [
        {
          name: 'daily',
          entities: ['day'],
          source: { kind: 'file', path: path.join(dir, 'daily.csv'), format: 'csv' },
          timestampField: 'ts',
          ttlMs: 0,
          schema: [
            { name: 'cnt_prev', dtype: 'float' },
            { name: 'temp_prev', dtype: 'float' },
            { name: 'weekday', dtype: 'int' },
            { name: 'season', dtype: 'string' },
          ],
          tags: {},
        },
      ],
    };
    writeFileSync(path.join(dir, 'daily.csv'), csv());
    cache = new OnlineCache({ store: features, logger, promRegistry: new Registry(), syncMs: 60_000, maxRows: 10_000 });
    await cache.track(repo.featureViews);
    await new Materializer({ store: features, metadata, repo: () => repo, logger, promRegistry: new Registry(), holder: 'r1', cache }).run(['daily'], 'ana');
  });
  afterEach(async () => {
    await cache.stop();
    await features.close();
    await metadata.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What serving filled for day d at a request one hour after its event time: the online row's values. */
  function served(d: number): SkewSample {
    const idx = cache.index('daily')!;
    const row = idx.rows.get(`d${d}`)!;
    const values = Object.fromEntries(idx.def.schema.map((f, i) => [f.name, row.values[i]!]));
    return { view: 'daily', deployment: 'bike-demand', ts: T0 + d * DAY + 3_600_000, entityKey: `d${d}`, served: values };
  }
  const monitor = (o: { sampleRows?: number } = {}) => new SkewMonitor({ repo: () => repo, store: features, tmpDir: dir, logger, promRegistry: registry, ...o });
  const rates = async () =>
    Object.fromEntries((await registry.getSingleMetric('warden_feature_skew_rate')!.get()).values.map((v) => [v.labels.feature, v.value]));

  it('no skew while both sides hold the same values; a ×100 unit change offline gives rate 1 on that feature only', async () => {
    const m = monitor();
    for (let d = 0; d < DAYS; d++) m.observe(served(d));
    const [clean] = await m.run();
    expect(clean).toMatchObject({ view: 'daily', rows: DAYS, seen: DAYS, deployments: ['bike-demand'] });
    expect(clean!.features.map((f) => [f.feature, f.compared, f.differing])).toEqual([
      ['cnt_prev', DAYS, 0],
      ['temp_prev', DAYS, 0],
      ['weekday', DAYS, 0],
      ['season', DAYS, 0],
    ]);
    expect(await rates()).toEqual({ cnt_prev: 0, temp_prev: 0, weekday: 0, season: 0 });

    // The source's cnt_prev changes units (×100) after materialization; the online store still serves the old values.
    writeFileSync(path.join(dir, 'daily.csv'), csv(100));
    for (let d = 0; d < DAYS; d++) m.observe(served(d));
    const [skewed] = await m.run();
    const byName = Object.fromEntries(skewed!.features.map((f) => [f.feature, f.rate]));
    expect(byName).toEqual({ cnt_prev: 1, temp_prev: 0, weekday: 0, season: 0 });
    expect(await rates()).toEqual({ cnt_prev: 1, temp_prev: 0, weekday: 0, season: 0 });
    expect((await registry.getSingleMetric('warden_feature_skew_sample_rows')!.get()).values[0]!.value).toBe(DAYS);
    expect(skewed!.examples).toHaveLength(5);
    expect(skewed!.examples[0]).toMatchObject({ feature: 'cnt_prev', served: 1000, offline: 100_000, joinKeys: { day_id: 'd0' } });
    expect(m.report()).toEqual([skewed]);

    // The built-in ticket fires for the skewed feature only, with its runbook.
    const conds = (await new MetricRuleSource(registry, () => BUILTIN_RULES).evaluate(0)).filter((c) => c.alertname === 'WardenFeatureSkew');
    expect(conds.filter((c) => c.active).map((c) => c.labels['feature'])).toEqual(['cnt_prev']);
    expect(conds.find((c) => c.active)).toMatchObject({ severity: 'ticket', runbookUrl: 'docs/runbooks/training-serving-skew.md' });
  });

  it('enrichment offers what it filled (:predict and OIP with parameters.entities): skew 1 on the ×100 feature only', async () => {
    const m = monitor();
    const e = new Enrichment({ cache, metadata, repo: () => repo, logger, promRegistry: new Registry(), now: () => T0 + (DAYS - 1) * DAY + 3_600_000, skew: m });
    await e.start();
    await e.set('bike-demand', { views: ['daily'] }, 'ana');
    writeFileSync(path.join(dir, 'daily.csv'), csv(100));
    const specs = ['hr', 'cnt_prev', 'temp_prev', 'weekday'].map((name) => ({ name, datatype: 'FP32' }));
    // The request time is the last day's: each entity's latest row is at or before it, so offline answers the row's value.
    const instances = Array.from({ length: 30 }, (_, d) => ({ hr: 8, day_id: `d${d}` }));
    const got = e.fillInstances('bike-demand', specs, instances, undefined)!;
    expect(got.problem).toBeUndefined();
    // Row 3's prefill: hr is sent, the view's three features filled.
    expect(Array.from(got.prefill.values.subarray(12, 16))).toEqual([0, 1000 + 3 * 37.5, 0.203, 3]);
    expect(Array.from(got.prefill.filled.subarray(12, 16))).toEqual([0, 1, 1, 1]);
    const signature = { inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }], features: specs };
    const entities = Array.from({ length: 20 }, (_, i) => ({ day_id: `d${30 + i}` }));
    const filled = e.fillTensors('bike-demand', signature, [{ name: 'input', datatype: 'FP32', shape: [20, 4], data: entities.flatMap(() => [9, null, null, null]) }], { entities });
    expect(filled.problem).toBeUndefined();
    const [r] = await m.run();
    expect(r).toMatchObject({ rows: 50, seen: 50, deployments: ['bike-demand'] });
    expect(Object.fromEntries(r!.features.map((f) => [f.feature, [f.compared, f.rate]]))).toEqual({
      cnt_prev: [50, 1],
      temp_prev: [50, 0],
      weekday: [50, 0],
      season: [0, 0],
    });
  });

  it('looks the offline value up at the request time: a request before the entity\'s first event compares with null', async () => {
    const m = monitor();
    for (let d = 0; d < 30; d++) m.observe({ ...served(d), ts: T0 + d * DAY - 1 });
    const [r] = await m.run();
    // Every served value was not yet true at that time offline (null): all differ.
    expect(r!.features.every((f) => f.rate === 1)).toBe(true);
  });

  it('keeps a bounded uniform sample per check, and exports no rate below minRows', async () => {
    const m = monitor({ sampleRows: 25 });
    for (let i = 0; i < 1000; i++) m.observe(served(i % DAYS));
    const [r] = await m.run();
    expect(r).toMatchObject({ rows: 25, seen: 1000 });
    const reg = new Registry();
    const small = new SkewMonitor({ repo: () => repo, store: features, tmpDir: dir, logger, promRegistry: reg, minRows: 20 });
    for (let d = 0; d < 5; d++) small.observe(served(d));
    const [few] = await small.run();
    expect(few!.rows).toBe(5);
    expect((await reg.getSingleMetric('warden_feature_skew_rate')!.get()).values).toEqual([]);
    expect((await reg.getSingleMetric('warden_feature_skew_sample_rows')!.get()).values[0]!.value).toBe(5);
  });

  it('with several replicas only the lease holder checks; the others drop their sample', async () => {
    const a = new SkewMonitor({ repo: () => repo, store: features, tmpDir: dir, logger, promRegistry: new Registry(), everyMs: 60_000, lease: { metadata, holder: 'r1' } });
    const b = new SkewMonitor({ repo: () => repo, store: features, tmpDir: dir, logger, promRegistry: new Registry(), everyMs: 60_000, lease: { metadata, holder: 'r2' } });
    for (let d = 0; d < 30; d++) {
      a.observe(served(d));
      b.observe(served(d));
    }
    expect((await a.turn()).map((r) => r.rows)).toEqual([30]);
    expect(await b.turn()).toEqual([]);
    expect(b.report()).toEqual([]);
    // The holder lets go: the other takes over at its next turn, with the rows it sampled since.
    await a.stop();
    for (let d = 0; d < 10; d++) b.observe(served(d));
    expect((await b.turn()).map((r) => r.rows)).toEqual([10]);
    await b.stop();
  });

  it('floats agree within 1e-6 relative, the other types exactly, a null only with a null', () => {
    expect(sameValue('float', 1000, 1000 * (1 + 5e-7))).toBe(true);
    expect(sameValue('float', 1000, 1000 * (1 + 5e-6))).toBe(false);
    expect(sameValue('float', 0, 0)).toBe(true);
    expect(sameValue('int', 3, 3)).toBe(true);
    expect(sameValue('int', 3, 4)).toBe(false);
    expect(sameValue('string', 'a', 'a')).toBe(true);
    expect(sameValue('bool', true, false)).toBe(false);
    expect(sameValue('float', null, 1)).toBe(false);
    expect(sameValue('float', null, null)).toBe(true);
  });
});
