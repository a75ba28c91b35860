/**
 * The SQLite feature store: the FeatureStore contract on a fresh features.db per test (alone, and as openStores opens
 * it), then what is SQLite's own: the file in the data directory, WAL, migrations applied once, data kept across a
 * reopen.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStores, SqliteFeatureStore } from '../../src/storage/index.ts';
import { featureMigrations } from '../../src/storage/sqlite/feature-store.ts';
import { featuresContract } from './contract-features.ts';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'warden-features-'));

featuresContract('sqlite', async () => {
  const dir = tmp();
  const features = new SqliteFeatureStore(path.join(dir, 'features.db'));
  return {
    features,
    async close() {
      await features.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

// What `warden serve` opens.
featuresContract('sqlite (openStores)', async () => {
  const dir = tmp();
  const stores = openStores(dir);
  return {
    features: stores.features,
    async close() {
      await stores.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SQLite feature store on disk', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmp();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lives in features.db of the data directory, in WAL mode, migrated once, and keeps its rows across a reopen', async () => {
    const first = openStores(dir);
    await first.features.appendFeatureRows([{ view: 'v', entityKey: 'k', eventTs: 1, createdTs: 2, values: { x: 0.1 } }]);
    await first.features.upsertOnline([{ view: 'v', entityKey: 'k', eventTs: 1, createdTs: 2, values: { x: 0.1 } }], 3);
    await first.features.saveMaterialization({ view: 'v', watermark: 2, cursor: { bytes: 7 }, rows: 1, updatedAt: 3 });
    await first.close();
    // Closing twice is harmless.
    await first.features.close();

    // Side by side: the second opener finds the schema current.
    const [b, c] = [new SqliteFeatureStore(path.join(dir, 'features.db')), new SqliteFeatureStore(path.join(dir, 'features.db'))];
    try {
      expect((await b.scanFeatureRows({ view: 'v', limit: 10 })).map((r) => r.values)).toEqual([{ x: 0.1 }]);
      expect(await c.getOnline('v', ['k'])).toEqual([{ view: 'v', entityKey: 'k', eventTs: 1, createdTs: 2, values: { x: 0.1 } }]);
      expect(await c.getMaterialization('v')).toEqual({ view: 'v', watermark: 2, cursor: { bytes: 7 }, rows: 1, updatedAt: 3 });
    } finally {
      await b.close();
      await c.close();
    }
    const db = new Database(path.join(dir, 'features.db'), { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(featureMigrations.length);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'feature%' ORDER BY name`).all() as { name: string }[]).map((t) => t.name);
      expect(tables).toEqual(['feature_materializations', 'feature_online', 'feature_rows']);
    } finally {
      db.close();
    }
  });
});
