/**
 * The PostgreSQL feature store: the FeatureStore contract on a fresh schema per test, then what only a shared database
 * has to prove: replicas starting together migrate once, and two replicas upserting the same entities at once, in
 * opposite orders, end at the newest row of each (no deadlock, no lost write); and keys stay in byte order in a
 * database whose own collation sorts otherwise (the test cluster's is C, which would hide a missing COLLATE "C").
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openConfiguredStores, PgFeatureStore, postgresSchemaStatus, type FeatureRowRecord } from '../../src/storage/index.ts';
import { pgFeatureMigrations } from '../../src/storage/postgres/feature-store.ts';
import { freshPgSchema, pgTestUrl } from '../helpers/postgres.ts';
import { featuresContract } from './contract-features.ts';

describe.skipIf(!pgTestUrl())('PostgreSQL feature store', () => {
  featuresContract('postgres', async () => {
    const schema = await freshPgSchema();
    const features = await PgFeatureStore.open(schema.url, { maxConnections: 4 });
    return {
      features,
      async close() {
        await features.close();
        await schema.drop();
      },
    };
  });

  describe('two replicas on one schema', () => {
    let a: PgFeatureStore;
    let b: PgFeatureStore;
    let url: string;
    let drop: () => Promise<void>;

    beforeEach(async () => {
      const s = await freshPgSchema();
      url = s.url;
      drop = s.drop;
      // Both start at once: one migrates, the other waits for it and finds the schema current.
      [a, b] = await Promise.all([PgFeatureStore.open(url, { maxConnections: 4 }), PgFeatureStore.open(url, { maxConnections: 4 })]);
    });
    afterEach(async () => {
      await a.close();
      await b.close();
      await drop();
    });

    it('migrates once: the features part is at its known version', async () => {
      expect((await postgresSchemaStatus(url)).find((p) => p.part === 'features')).toEqual({ part: 'features', applied: pgFeatureMigrations.length, known: pgFeatureMigrations.length });
    });

    it('concurrent upserts of the same entities in opposite orders end at the newest row of each', async () => {
      const keys = Array.from({ length: 2_000 }, (_, i) => `k${i}`);
      // Each replica writes every entity; which replica's row is newer alternates by entity.
      const batch = (replica: 0 | 1, round: number): FeatureRowRecord[] =>
        keys.map((k, i) => ({ view: 'v', entityKey: k, eventTs: round * 10 + ((i + replica) % 2), createdTs: round, values: { replica, round } }));
      const writes: Promise<number>[] = [];
      for (let round = 0; round < 5; round++) {
        writes.push(a.upsertOnline(batch(0, round), 1_000 + round));
        writes.push(b.upsertOnline([...batch(1, round)].reverse(), 1_000 + round));
      }
      await Promise.all(writes);
      const stored = await a.getOnline('v', keys);
      expect(stored.length).toBe(keys.length);
      // The newest round wins, and within it the replica whose event time was one higher.
      for (const [i, r] of stored.entries()) expect([r.eventTs, r.values]).toEqual([41, { replica: i % 2 === 0 ? 1 : 0, round: 4 }]);
    });
  });

  it('scans in byte order in a database whose default collation is not bytewise (ICU en-US)', async (ctx) => {
    const base = pgTestUrl()!;
    const db = `warden_icu_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${db} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`);
    } catch (e) {
      await admin.end();
      ctx.skip(`no ICU collations on this server: ${(e as Error).message}`);
    }
    const dbUrl = (withSchema: boolean) => {
      const u = new URL(base);
      u.pathname = `/${db}`;
      if (withSchema) u.searchParams.set('schema', 'warden');
      return u.toString();
    };
    const store = await PgFeatureStore.open(dbUrl(true), { maxConnections: 2 });
    try {
      const keys = ['b', 'a', 'B', 'ab', 'a b', 'a\u001fz', 'A', 'é', 'e', 'Z'];
      await store.upsertOnline(keys.map((k) => ({ view: 'v', entityKey: k, eventTs: 1, createdTs: 1, values: {} })), 5);
      await store.upsertOnline([{ view: 'B', entityKey: 'x', eventTs: 1, createdTs: 1, values: {} }, { view: 'a', entityKey: 'x', eventTs: 1, createdTs: 1, values: {} }], 5);
      const bytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      // The database itself sorts these otherwise, so the order below is the store's doing.
      const inDb = new pg.Client({ connectionString: dbUrl(false) });
      await inDb.connect();
      try {
        const r = await inDb.query<{ k: string }>(`SELECT k FROM unnest($1::text[]) AS t(k) ORDER BY k`, [keys]);
        expect(r.rows.map((x) => x.k)).not.toEqual(bytes);
      } finally {
        await inDb.end();
      }
      expect((await store.scanOnline({ view: 'v', limit: 100 })).map((r) => r.entityKey)).toEqual(bytes);
      const paged: string[] = [];
      let afterKey: string | undefined;
      for (;;) {
        const page = await store.scanOnline({ view: 'v', limit: 3, ...(afterKey !== undefined ? { afterKey } : {}) });
        paged.push(...page.map((r) => r.entityKey));
        if (page.length < 3) break;
        afterKey = page[page.length - 1]!.entityKey;
      }
      expect(paged).toEqual(bytes);
      // Ties of write time go by view, then key, in bytes too: 'B' before 'a'.
      expect((await store.onlineChangedSince({ since: 0, limit: 100 })).filter((r) => r.entityKey === 'x').map((r) => r.view)).toEqual(['B', 'a']);
    } finally {
      await store.close();
      await admin.query(`DROP DATABASE ${db}`);
      await admin.end();
    }
  });

  it('openConfiguredStores opens the feature store beside the others and closes it with them', async () => {
    const s = await freshPgSchema();
    const stores = await openConfiguredStores({ dataDir: '/nonexistent', url: s.url, maxConnections: 4 });
    try {
      expect(stores.kind).toBe('postgres');
      expect(await stores.features.upsertOnline([{ view: 'v', entityKey: 'k', eventTs: 1, createdTs: 1, values: { x: 1 } }], 1)).toBe(1);
      expect(await stores.features.getOnline('v', ['k'])).toHaveLength(1);
    } finally {
      await stores.close();
      await s.drop();
    }
  });
});
