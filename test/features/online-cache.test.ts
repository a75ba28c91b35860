/**
 * The replica's online cache: a read answers per feature {value, status, eventTs}; a value older than the view's TTL
 * is `expired` and not served (Feast #6821), a missing entity or null value is `missing`; rows replace held ones only
 * when newer by event time (then created time), in any arrival order; a second writer's rows arrive by sync; past
 * features.maxOnlineRows new entities are refused, counted and logged, never evicted; a view re-defined with another
 * schema is loaded again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OnlineCache } from '../../src/features/online-cache.ts';
import type { FeatureViewDef } from '../../src/features/types.ts';
import { SqliteFeatureStore } from '../../src/storage/sqlite/feature-store.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2012, 5, 1);

const daily: FeatureViewDef = {
  name: 'daily',
  entities: ['day'],
  source: { kind: 'push' },
  timestampField: 'ts',
  ttlMs: 2 * DAY,
  schema: [
    { name: 'cnt_lag1', dtype: 'int' },
    { name: 'temp', dtype: 'float' },
    { name: 'label', dtype: 'string' },
  ],
  tags: {},
};

describe('online cache', () => {
  let dir: string;
  let store: SqliteFeatureStore;
  let registry: Registry;
  let now: number;
  const logs: { msg: string; level: number }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const cache = (o: Partial<{ maxRows: number; overlapMs: number; registry: Registry }> = {}) =>
    new OnlineCache({ store, logger, promRegistry: o.registry ?? registry, syncMs: 50, maxRows: o.maxRows ?? 1000, overlapMs: o.overlapMs ?? 100, now: () => now });

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-online-'));
    store = new SqliteFeatureStore(path.join(dir, 'features.db'));
    registry = new Registry();
    now = T0 + DAY;
    logs.length = 0;
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers present, expired (older than the TTL, value withheld) and missing, with the event time', async () => {
    await store.upsertOnline(
      [
        { view: 'daily', entityKey: '2012-06-01', eventTs: T0, createdTs: T0, values: { cnt_lag1: 4000, temp: 0.5, label: 'warm' } },
        { view: 'daily', entityKey: '2012-05-20', eventTs: T0 - 12 * DAY, createdTs: T0, values: { cnt_lag1: 3000, temp: 0.4, label: 'mild' } },
        { view: 'daily', entityKey: '2012-05-31', eventTs: T0 - DAY / 2, createdTs: T0, values: { cnt_lag1: 3500, temp: null, label: 'x' } },
      ],
      T0,
    );
    const c = cache();
    await c.track([daily]);
    const [fresh, old, partial, none] = c.read('daily', ['2012-06-01', '2012-05-20', '2012-05-31', '1999-01-01']);
    expect(fresh).toEqual({
      cnt_lag1: { value: 4000, status: 'present', eventTs: T0 },
      temp: { value: 0.5, status: 'present', eventTs: T0 },
      label: { value: 'warm', status: 'present', eventTs: T0 },
    });
    // 12 days old against a TTL of 2 days: expired, and its value is not served.
    expect(old!.cnt_lag1).toEqual({ value: null, status: 'expired', eventTs: T0 - 12 * DAY });
    expect(partial!.temp).toEqual({ value: null, status: 'missing', eventTs: T0 - DAY / 2 });
    expect(partial!.cnt_lag1!.status).toBe('present');
    expect(none!.temp).toEqual({ value: null, status: 'missing', eventTs: null });
    // A millisecond short of the TTL it is present; exactly TTL old, expired (as the point-in-time join has it).
    now = T0 + 2 * DAY - 1;
    expect(c.read('daily', ['2012-06-01'], ['temp'])[0]!.temp!.status).toBe('present');
    now = T0 + 2 * DAY;
    expect(c.read('daily', ['2012-06-01'], ['temp'])[0]!.temp!.status).toBe('expired');
    // TTL 0: never expires.
    await c.track([{ ...daily, ttlMs: 0 }]);
    expect(c.read('daily', ['2012-05-20'], ['temp'])[0]!.temp).toEqual({ value: 0.4, status: 'present', eventTs: T0 - 12 * DAY });
    expect(() => c.read('daily', ['x'], ['nope'])).toThrow('view daily has no feature nope');
    expect(() => c.read('hourly', ['x'])).toThrow('view hourly is not held');
  });

  it('keeps the newest row by event time, then created time, in every arrival order, like the store', async () => {
    const rows = [
      { view: 'daily', entityKey: 'k', eventTs: T0, createdTs: T0, values: { cnt_lag1: 1, temp: 1, label: 'a' } },
      { view: 'daily', entityKey: 'k', eventTs: T0 + 10, createdTs: T0, values: { cnt_lag1: 2, temp: 2, label: 'b' } },
      { view: 'daily', entityKey: 'k', eventTs: T0 + 10, createdTs: T0 + 5, values: { cnt_lag1: 3, temp: 3, label: 'c' } },
      // Created later but about an older event: loses.
      { view: 'daily', entityKey: 'k', eventTs: T0 + 5, createdTs: T0 + 99, values: { cnt_lag1: 4, temp: 4, label: 'd' } },
    ];
    const orders = [
      [0, 1, 2, 3],
      [3, 2, 1, 0],
      [2, 0, 3, 1],
      [1, 3, 0, 2],
    ];
    for (const order of orders) {
      const c = cache({ registry: new Registry() });
      await c.track([daily]);
      for (const i of order) c.apply([rows[i]!]);
      expect(c.read('daily', ['k'], ['cnt_lag1'])[0]!.cnt_lag1!.value, `order ${order.join(',')}`).toBe(3);
    }
  });

  it("reads another writer's rows at the next sync, with the write times of any clock within the overlap, each once or twice", async () => {
    const c = cache({ overlapMs: 500, maxRows: 100_000 });
    await c.track([daily]);
    expect(c.size).toBe(0);
    await store.upsertOnline([{ view: 'daily', entityKey: 'a', eventTs: T0, createdTs: T0, values: { cnt_lag1: 1, temp: 1, label: 'x' } }], now + 10);
    // Another view, not held: read but not kept.
    await store.upsertOnline([{ view: 'hourly', entityKey: 'a', eventTs: T0, createdTs: T0, values: { cnt: 1 } }], now + 10);
    expect(await c.sync()).toBe(2);
    expect(c.read('daily', ['a'], ['cnt_lag1'])[0]!.cnt_lag1!.value).toBe(1);
    expect(c.viewNames()).toEqual(['daily']);
    // A write stamped 300 ms before the newest seen (a slow commit, another replica's clock) is still read.
    await store.upsertOnline([{ view: 'daily', entityKey: 'b', eventTs: T0, createdTs: T0, values: { cnt_lag1: 2, temp: 2, label: 'y' } }], now - 290);
    await c.sync();
    expect(c.read('daily', ['b'], ['cnt_lag1'])[0]!.cnt_lag1!.value).toBe(2);
    // More writes than a page of changes (5,000) in one sync: all read.
    const many = Array.from({ length: 12_000 }, (_, i) => ({ view: 'daily', entityKey: `m${i}`, eventTs: T0, createdTs: T0, values: { cnt_lag1: i, temp: 0, label: '' } }));
    for (let i = 0; i < many.length; i += 5000) await store.upsertOnline(many.slice(i, i + 5000), now + 100 + i);
    await c.sync();
    expect(c.size).toBe(12_002);
    expect(c.read('daily', ['m11999'], ['cnt_lag1'])[0]!.cnt_lag1!.value).toBe(11_999);
    // Once the clock has passed them and the overlap, those writes are not read again: a sync with nothing new reads nothing.
    now += 20_000;
    await c.sync();
    expect(await c.sync()).toBe(0);
  });

  it('loads more rows than a page at start, and reloads a view whose schema changed', async () => {
    const many = Array.from({ length: 7_001 }, (_, i) => ({ view: 'daily', entityKey: `k${i}`, eventTs: T0, createdTs: T0, values: { cnt_lag1: i, temp: i / 2, label: 'l' } }));
    for (let i = 0; i < many.length; i += 5000) await store.upsertOnline(many.slice(i, i + 5000), T0);
    const c = cache({ maxRows: 100_000 });
    await c.track([daily]);
    expect(c.size).toBe(7_001);
    expect(c.index('daily')!.loaded).toBe(true);
    const held = c.index('daily');
    // Only the TTL changed: the same index, the new TTL.
    await c.track([{ ...daily, ttlMs: 0 }]);
    expect(c.index('daily')).toBe(held);
    // A new feature: loaded again, with the new schema's positions.
    await c.track([{ ...daily, schema: [{ name: 'temp', dtype: 'float' }] }]);
    expect(c.index('daily')).not.toBe(held);
    expect(c.read('daily', ['k10'])[0]).toEqual({ temp: { value: 5, status: 'present', eventTs: T0 } });
    await c.track([]);
    expect(c.size).toBe(0);
  });

  it('refuses new entities past features.maxOnlineRows, counts and logs them, keeps updating the held ones', async () => {
    const c = cache({ maxRows: 3 });
    await c.track([daily]);
    const row = (k: string, v: number) => ({ view: 'daily', entityKey: k, eventTs: T0 + v, createdTs: T0, values: { cnt_lag1: v, temp: v, label: 'l' } });
    c.apply([row('a', 1), row('b', 1), row('c', 1), row('d', 1), row('e', 1)]);
    expect(c.size).toBe(3);
    expect(c.index('daily')!.incomplete).toBe(true);
    expect(c.read('daily', ['d'], ['temp'])[0]!.temp!.status).toBe('missing');
    // A held entity is still updated.
    c.apply([row('a', 2)]);
    expect(c.read('daily', ['a'], ['temp'])[0]!.temp!.value).toBe(2);
    const text = await registry.metrics();
    expect(text).toContain('warden_feature_online_rows_refused_total{view="daily"} 2');
    expect(text).toContain('warden_feature_online_rows{view="daily"} 3');
    expect(text).toContain('warden_feature_online_capacity_rows 3');
    // Logged once (per minute), naming the setting.
    const warned = logs.filter((l) => l.msg.includes('features.maxOnlineRows'));
    expect(warned).toHaveLength(1);
    expect(warned[0]!.msg).toContain('new entities of view daily are refused');
  });

  it('reads cost the same with 1 or 100 views held: only the asked view is touched', async () => {
    const views = Array.from({ length: 100 }, (_, i) => ({ ...daily, name: `v${i}` }));
    const c = cache({ maxRows: 1_000_000 });
    await c.track(views);
    for (const v of views) c.apply(Array.from({ length: 100 }, (_, k) => ({ view: v.name, entityKey: `k${k}`, eventTs: now, createdTs: now, values: { cnt_lag1: k, temp: k, label: 'l' } })));
    expect(c.size).toBe(10_000);
    expect(c.read('v57', ['k3'], ['temp'])[0]!.temp!.value).toBe(3);
  });
});
