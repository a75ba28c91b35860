/**
 * The request-path fill, without HTTP: named features a `:predict` instance leaves out are filled from the cache by
 * the row's entity (parameters.entities, the instance's join-key field, or the binding's entityKey column, which
 * validation then lets through); values the caller sent win; the OIP named-feature input is built from parameters.entities, or its
 * nulls filled; an expired or missing value is left out and named (row, feature, view, entity, status); bindings are
 * checked against the definitions; counts per view and status, and the span's attributes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Enrichment } from '../../src/features/enrich.ts';
import { OnlineCache } from '../../src/features/online-cache.ts';
import type { FeatureRepo } from '../../src/features/types.ts';
import type { FeatureSpec, ModelSignature } from '../../src/storage/index.ts';
import { SqliteFeatureStore } from '../../src/storage/sqlite/feature-store.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite/metadata-store.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2012, 5, 10);
const logger = pino({ level: 'silent' });

const repo: FeatureRepo = {
  entities: [
    { name: 'day', joinKeys: ['dteday'] },
    { name: 'station', joinKeys: ['station_id'] },
  ],
  featureViews: [
    { name: 'daily', entities: ['day'], source: { kind: 'push' }, timestampField: 'ts', ttlMs: 2 * DAY, schema: [{ name: 'cnt_lag1', dtype: 'int' }, { name: 'temp_lag1', dtype: 'float' }, { name: 'label', dtype: 'string' }], tags: {} },
    { name: 'weather', entities: ['day'], source: { kind: 'push' }, timestampField: 'ts', ttlMs: 0, schema: [{ name: 'temp_lag1', dtype: 'float' }, { name: 'rain', dtype: 'bool' }], tags: {} },
    { name: 'by_station_day', entities: ['station', 'day'], source: { kind: 'push' }, timestampField: 'ts', ttlMs: 0, schema: [{ name: 'docks', dtype: 'int' }], tags: {} },
  ],
};
const features: FeatureSpec[] = ['hr', 'cnt_lag1', 'temp_lag1', 'rain'].map((name) => ({ name, datatype: 'FP32' }));
/** What the model gets per row: the instance's own values with the fill's, entity-key fields let through left out. */
function asModelSees(instances: Record<string, unknown>[], res: ReturnType<Enrichment['fillInstances']>): Record<string, unknown>[] {
  const k = features.length;
  return instances.map((inst, r) => {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(inst)) if (!res!.prefill.ignore.has(key)) out[key] = v;
    features.forEach((f, c) => {
      if (res!.prefill.filled[r * k + c] === 1) out[f.name] = res!.prefill.values[r * k + c];
    });
    return out;
  });
}
const signature: ModelSignature = { inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'variable', datatype: 'FP32', shape: [-1, 1] }], features };

class SpanStub {
  recording = true;
  attrs: Record<string, unknown> = {};
  setStepAttributes(a: Record<string, unknown>) {
    Object.assign(this.attrs, a);
  }
}

describe('serving-time enrichment', () => {
  let dir: string;
  let store: SqliteFeatureStore;
  let metadata: SqliteMetadataStore;
  let registry: Registry;
  let cache: OnlineCache;
  let e: Enrichment;

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-enrich-'));
    store = new SqliteFeatureStore(path.join(dir, 'features.db'));
    metadata = new SqliteMetadataStore(path.join(dir, 'metadata.db'));
    registry = new Registry();
    await store.upsertOnline(
      [
        { view: 'daily', entityKey: '2012-06-09', eventTs: NOW - DAY, createdTs: NOW, values: { cnt_lag1: 5000, temp_lag1: 0.7, label: 'warm' } },
        { view: 'daily', entityKey: '2012-06-01', eventTs: NOW - 9 * DAY, createdTs: NOW, values: { cnt_lag1: 4000, temp_lag1: 0.6, label: 'mild' } },
        { view: 'daily', entityKey: '2012-06-08', eventTs: NOW - DAY, createdTs: NOW, values: { cnt_lag1: null, temp_lag1: 0.5, label: 'x' } },
        { view: 'weather', entityKey: '2012-06-09', eventTs: NOW - DAY, createdTs: NOW, values: { temp_lag1: 0.1, rain: true } },
        { view: 'weather', entityKey: '2012-06-01', eventTs: NOW - 9 * DAY, createdTs: NOW, values: { temp_lag1: 0.2, rain: false } },
        { view: 'weather', entityKey: '2012-06-08', eventTs: NOW - DAY, createdTs: NOW, values: { temp_lag1: 0.3, rain: false } },
      ],
      NOW,
    );
    cache = new OnlineCache({ store, logger, promRegistry: registry, syncMs: 1000, maxRows: 1000, now: () => NOW });
    e = new Enrichment({ cache, metadata, repo: () => repo, logger, promRegistry: registry, now: () => NOW });
    await e.start();
  });
  afterEach(async () => {
    await store.close();
    await metadata.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('checks a binding against the definitions', async () => {
    await expect(e.set('bike', { views: ['nope'] }, 'ana')).rejects.toThrow('no feature view "nope"; defined: daily, weather, by_station_day');
    await expect(e.set('bike', { views: [] }, 'ana')).rejects.toThrow('views must be a list of 1 to 100 feature view names');
    await expect(e.set('bike', { views: ['daily', 'daily'] }, 'ana')).rejects.toThrow('views lists daily twice');
    await expect(e.set('bike', { views: ['daily'], extra: 1 }, 'ana')).rejects.toThrow('unknown field extra');
    await expect(e.set('bike', { views: ['by_station_day'], entityKey: 'day' }, 'ana')).rejects.toThrow('view by_station_day has 2 join keys (station_id, dteday)');
    const v = await e.set('bike', { views: ['daily', 'weather'] }, 'ana');
    // The first view listed that has a feature provides it.
    expect(v).toMatchObject({ deployment: 'bike', views: ['daily', 'weather'], updatedBy: 'ana' });
    expect(v.features).toEqual([
      { name: 'cnt_lag1', view: 'daily' },
      { name: 'temp_lag1', view: 'daily' },
      { name: 'label', view: 'daily' },
      { name: 'rain', view: 'weather' },
    ]);
    expect(cache.viewNames().sort()).toEqual(['daily', 'weather']);
    expect(await e.delete('bike')).toBe(true);
    expect(e.reads('bike')).toBe(false);
    expect(cache.viewNames()).toEqual([]);
  });

  it(':predict: fills what the instance leaves out by its entity; the caller\'s values win; key fields are removed', async () => {
    await e.set('bike', { views: ['daily', 'weather'] }, 'ana');
    const span = new SpanStub();
    const instances: Record<string, unknown>[] = [{ hr: 8, dteday: '2012-06-09' }, { hr: 9, cnt_lag1: 1, dteday: '2012-06-09' }, { hr: 10 }];
    const res = e.fillInstances('bike', features, instances, { entities: [{ dteday: '2012-06-09' }, { dteday: '2012-06-09' }, { dteday: '2012-06-08', ignored: 1 }] }, span);
    expect(res!.problem).toBe(
      "instances[2]: feature cnt_lag1 of view daily for entity dteday=\"2012-06-08\" is missing (the entity's row has no value for it); send the value in the request, or materialize the view (warden features materialize)",
    );
    // The instances themselves are not changed: the fill is handed to validation.
    expect(instances[0]).toEqual({ hr: 8, dteday: '2012-06-09' });
    expect(asModelSees(instances, res)).toEqual([
      { hr: 8, cnt_lag1: 5000, temp_lag1: 0.7, rain: 1 },
      { hr: 9, cnt_lag1: 1, temp_lag1: 0.7, rain: 1 },
      { hr: 10, temp_lag1: 0.5, rain: 0 },
    ]);
    expect(span.attrs).toEqual({
      'warden.features.source': 'online',
      'warden.features.views': ['daily', 'weather'],
      'warden.features.rows': 3,
      'warden.features.present': 7,
      'warden.features.expired': 0,
      'warden.features.missing': 1,
      'warden.features.refused': 1,
    });
    // Without parameters.entities the instance's own join-key field names the entity.
    const own: Record<string, unknown>[] = [{ hr: 1, dteday: '2012-06-09' }];
    const ownRes = e.fillInstances('bike', features, own, undefined);
    expect(ownRes!.problem).toBeUndefined();
    expect(asModelSees(own, ownRes)).toEqual([{ hr: 1, cnt_lag1: 5000, temp_lag1: 0.7, rain: 1 }]);
    const text = await registry.metrics();
    expect(text).toContain('warden_feature_values_total{view="daily",status="present"} 6');
    expect(text).toContain('warden_feature_values_total{view="daily",status="missing"} 1');
    expect(text).toContain('warden_feature_values_total{view="weather",status="present"} 4');
    expect(text).toMatch(/warden_feature_lookup_duration_seconds_count\{deployment="bike"\} 2/);
  });

  it('expired and missing values are named: row, feature, view, entity, status and the TTL', async () => {
    await e.set('bike', { views: ['daily', 'weather'] }, 'ana');
    const instances = [{ hr: 1 }, { hr: 2 }];
    const res = e.fillInstances('bike', features, instances, { entities: [{ dteday: '2012-06-01' }, { dteday: '1999-01-01' }] });
    const problem = res!.problem;
    expect(problem).toContain('instances[0]: feature cnt_lag1 of view daily for entity dteday="2012-06-01" is expired (its value is from 2012-06-01T00:00:00.000Z, older than the view\'s TTL of 2d)');
    expect(problem).toContain('instances[1]: feature cnt_lag1 of view daily for entity dteday="1999-01-01" is missing (no row for the entity in the online store)');
    expect(problem).toContain('instances[1]: feature rain of view weather for entity dteday="1999-01-01" is missing');
    // Weather has no TTL: row 0's rain is present and filled; expired values are never.
    expect(asModelSees(instances, res)[0]).toEqual({ hr: 1, rain: 0 });
    expect(() => e.fillInstances('bike', features, [{ hr: 1 }], { entities: [{ day: 'x' }] })).toThrow('row 0: no entity key for view daily: dteday is not sent');
    expect(() => e.fillInstances('bike', features, [{ hr: 1 }], { entities: [{ dteday: 'x' }, { dteday: 'y' }] })).toThrow('parameters.entities has 2 entries for 1 row');
    expect(() => e.fillInstances('other', features, [{ hr: 1 }], { entities: [{ dteday: 'x' }] })).toThrow('deployment other reads no feature views');
  });

  it('entityKey: the instances\' column holding the key, removed before validation', async () => {
    await e.set('bike', { views: ['daily', 'weather'], entityKey: 'day' }, 'ana');
    const instances: Record<string, unknown>[] = [{ hr: 3, day: '2012-06-09' }];
    const res = e.fillInstances('bike', features, instances, undefined);
    expect(res!.problem).toBeUndefined();
    expect([...res!.prefill.ignore]).toEqual(['day']);
    expect(asModelSees(instances, res)).toEqual([{ hr: 3, cnt_lag1: 5000, temp_lag1: 0.7, rain: 1 }]);
  });

  it('OIP: builds the named-feature input from parameters.entities, or fills the nulls of the one sent', async () => {
    await e.set('bike', { views: ['daily', 'weather'] }, 'ana');
    const built = e.fillTensors('bike', signature, undefined, { entities: [{ dteday: '2012-06-09' }] });
    // hr is in no view: the caller must send the input with it.
    expect(built.problem).toBe('input input: feature hr is in none of the views deployment bike reads (daily, weather); send input with the values, null where a view\'s value is to be filled');
    const filled = e.fillTensors('bike', signature, [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [8, null, null, null, 9, 7, null, null] }], {
      entities: [{ dteday: '2012-06-09' }, { dteday: '2012-06-08' }],
    });
    expect(filled.problem).toBeUndefined();
    expect(filled.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [8, 5000, 0.7, 1, 9, 7, 0.5, 0] }]);
    // Without parameters.entities: nothing is touched.
    const sent = [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }];
    expect(e.fillTensors('bike', signature, sent, {}).inputs).toBe(sent);
    const onlyViews: ModelSignature = { ...signature, inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 2] }], features: features.slice(1, 3) };
    expect(e.fillTensors('bike', onlyViews, undefined, { entities: [{ dteday: '2012-06-09' }] })).toEqual({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2], data: [5000, 0.7] }] });
  });
});
