/**
 * Feature freshness: warden_feature_staleness_seconds{view} is now minus the newest event time among the online rows a
 * replica holds, and moves as data is materialized; the feature_freshness SLI counts one event per minute, good when
 * the view's worst staleness in that minute stayed within maxStalenessMs, a view with no rows counting bad; its burn
 * rate pages like the other kinds.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Materializer } from '../../src/features/materialize.ts';
import { OnlineCache } from '../../src/features/online-cache.ts';
import type { FeatureRepo } from '../../src/features/types.ts';
import { parseSlo, SloService } from '../../src/slo/index.ts';
import { SqliteEventStore } from '../../src/storage/index.ts';
import { SqliteFeatureStore } from '../../src/storage/sqlite/feature-store.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite/metadata-store.ts';

const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Date.UTC(2026, 11, 1);
const logger = pino({ level: 'silent' });

const lines = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `s${from + i},${new Date(T0 + (from + i) * HOUR).toISOString()},${from + i}`).join('\n') + '\n';

describe('feature freshness', () => {
  let dir: string;
  let features: SqliteFeatureStore;
  let metadata: SqliteMetadataStore;
  let events: SqliteEventStore;
  let registry: Registry;
  let cache: OnlineCache;
  let now: number;
  let repo: FeatureRepo;
  let slo: SloService | undefined;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-fresh-'));
    features = new SqliteFeatureStore(path.join(dir, 'features.db'));
    metadata = new SqliteMetadataStore(path.join(dir, 'metadata.db'));
    events = new SqliteEventStore(path.join(dir, 'events.db'));
    registry = new Registry();
    repo = {
      entities: [{ name: 'station', joinKeys: ['station_id'] }],
      featureViews: [
        {
          name: 'hourly',
          entities: ['station'],
          source: { kind: 'file', path: path.join(dir, 'hourly.csv'), format: 'csv' },
          timestampField: 'ts',
          ttlMs: 0,
          schema: [{ name: 'cnt', dtype: 'int' }],
          tags: {},
        },
      ],
    };
    now = T0 + 10 * HOUR;
    cache = new OnlineCache({ store: features, logger, promRegistry: registry, syncMs: 60_000, maxRows: 1000, now: () => now });
    await cache.track(repo.featureViews);
  });
  afterEach(async () => {
    await slo?.stop();
    slo = undefined;
    await cache.stop();
    await features.close();
    await metadata.close();
    await events.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const materialize = () => new Materializer({ store: features, metadata, repo: () => repo, logger, promRegistry: new Registry(), holder: 'r1', cache }).run(['hourly'], 'ana');
  const gauge = async () => (await registry.getSingleMetric('warden_feature_staleness_seconds')!.get()).values;

  it('the staleness gauge is now minus the newest event time held, and drops as newer rows are materialized', async () => {
    // Nothing held yet: no series, and the SLO side reads "no rows".
    expect(await gauge()).toEqual([]);
    expect(cache.stalenessMs('hourly')).toBeUndefined();

    const file = path.join(dir, 'hourly.csv');
    writeFileSync(file, `station_id,ts,cnt\n${lines(0, 4)}`); // event times T0 .. T0+3h
    await materialize();
    expect(cache.stalenessMs('hourly')).toBe(7 * HOUR);
    expect(await gauge()).toEqual([{ labels: { view: 'hourly' }, value: 7 * 3600 }]);

    now += 30 * MIN;
    expect((await gauge())[0]!.value).toBe(7.5 * 3600);

    appendFileSync(file, lines(4, 10)); // up to T0+9h
    await materialize();
    expect(cache.stalenessMs('hourly')).toBe(1.5 * HOUR);
    expect((await gauge())[0]!.value).toBe(1.5 * 3600);

    // Another writer's rows arrive by sync and move it too.
    await features.upsertOnline([{ view: 'hourly', entityKey: 's99', eventTs: now - 60_000, createdTs: now, values: { cnt: 1 } }], now);
    await cache.sync();
    expect((await gauge())[0]!.value).toBe(60);
  });

  it('feature_freshness: one event per minute, good when the minute\'s worst staleness is within the threshold; pages when stale', async () => {
    writeFileSync(path.join(dir, 'slo.yaml'), 'slos: []\n');
    slo = new SloService({
      events,
      logger,
      file: path.join(dir, 'slo.yaml'),
      timeScale: 1,
      retentionDays: 35,
      tickMs: 600_000,
      now: () => now,
      featureStaleness: (view) => (cache.index(view) ? (cache.stalenessMs(view) ?? Infinity) : undefined),
    });
    await slo.start();
    await slo.put('hourly-fresh', { deployment: 'bikes', sli: { kind: 'feature_freshness', view: 'hourly', maxStalenessMs: 2 * HOUR }, objective: 0.99, period: '30d' });
    await slo.put('other-fresh', { deployment: 'bikes', sli: { kind: 'feature_freshness', view: 'not-held', maxStalenessMs: HOUR }, objective: 0.99, period: '30d' });

    now = Math.floor(now / MIN) * MIN + 1000;
    // Minute 1: no rows yet -> bad.
    await slo.tick();
    now += MIN;
    // Minute 2: materialized to T0+9h at 10h -> ~1h stale: good.
    writeFileSync(path.join(dir, 'hourly.csv'), `station_id,ts,cnt\n${lines(0, 10)}`);
    await materialize();
    await slo.tick();
    now += 30_000;
    await slo.tick();
    // Minutes 3..12: good until staleness passes 2h; the minute that crosses it is bad (worst of the minute).
    for (let i = 0; i < 60; i++) {
      now += MIN;
      await slo.tick();
    }
    const st = await slo.status('hourly-fresh');
    // Buckets ended: 61 (minute 1 .. minute 61); minute 1 bad; staleness 1h00m+ at minute 2, passing 2h ~60 min later.
    expect(st.budget).toMatchObject({ total: 61 });
    const bad = st.budget.total - st.budget.good;
    expect(bad).toBeGreaterThanOrEqual(2);
    expect(bad).toBeLessThanOrEqual(3);
    expect(st.lastStaleness?.stalenessMs).toBeGreaterThan(2 * HOUR);
    expect(st.measures).toContain('hourly');
    // A view this replica does not hold counts nothing.
    expect((await slo.status('other-fresh')).budget.total).toBe(0);

    // Stale from here on: the fast burn window pages.
    for (let i = 0; i < 10; i++) {
      now += MIN;
      await slo.tick();
    }
    const later = await slo.status('hourly-fresh');
    expect(later.firing).toContain('1h/5m');
    const conditions = await slo.alertSource().evaluate(now);
    expect(conditions.some((c) => c.labels['slo'] === 'hourly-fresh')).toBe(true);
  });

  it('validates the kind: a view and a positive threshold, no version', () => {
    expect(() => parseSlo({ name: 'f', deployment: 'd', sli: { kind: 'feature_freshness', view: 'v' }, objective: 0.9, period: '7d' })).toThrow(/maxStalenessMs/);
    expect(() => parseSlo({ name: 'f', deployment: 'd', version: 2, sli: { kind: 'feature_freshness', view: 'v', maxStalenessMs: 1 }, objective: 0.9, period: '7d' })).toThrow(/version/);
  });
});
