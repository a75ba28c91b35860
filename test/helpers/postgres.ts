/**
 * Real PostgreSQL for tests. `npm test` starts one throw-away cluster (test/setup/postgres.ts) when Debian's
 * PostgreSQL server is installed, or uses `WARDEN_TEST_PG_URL` when set (.ci/run starts one and sets it); each test
 * gets a fresh schema of it. The outage tests start a cluster of their own with `startPgCluster` so they can stop it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { LocalDirArtifactStore, SqliteEventStore, SqliteMetadataStore, type EventStore, type MetadataStore } from '../../src/storage/index.ts';
import type { StorageUnderTest } from '../storage/contract.ts';

export { freePort, pgServerAvailable, startPgCluster, type PgCluster } from './pg-cluster.ts';

/** The shared test server's URL, or undefined when there is none (the PostgreSQL tests then skip). */
export function pgTestUrl(): string | undefined {
  return process.env.WARDEN_TEST_PG_URL || (inject('pgUrl') as string | undefined) || undefined;
}

/** A fresh schema on the shared test server: its URL (with `?schema=`) and how to drop it. */
export async function freshPgSchema(base = pgTestUrl()): Promise<{ url: string; schema: string; drop(): Promise<void> }> {
  if (!base) throw new Error('no PostgreSQL for tests: install Debian package postgresql or set WARDEN_TEST_PG_URL');
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const u = new URL(base);
  u.searchParams.set('schema', schema);
  return {
    url: u.toString(),
    schema,
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

/**
 * The stores for one part of the storage contract run against PostgreSQL: `open` opens the PostgreSQL store of that
 * port on a fresh schema, and the other ports get embedded stores (SQLite, a local directory), which that part never
 * touches, so the other PostgreSQL adapters need not work for it to run. close() removes the schema and files too.
 */
export async function pgPartUnderTest(open: (url: string) => Promise<{ metadata: MetadataStore } | { events: EventStore }>): Promise<StorageUnderTest> {
  const schema = await freshPgSchema();
  const underTest = await open(schema.url);
  const part = 'metadata' in underTest ? 'metadata' : 'events';
  const dir = mkdtempSync(path.join(tmpdir(), `warden-pg-${part}-`));
  const metadata = 'metadata' in underTest ? underTest.metadata : new SqliteMetadataStore(path.join(dir, 'metadata.db'));
  const events = 'events' in underTest ? underTest.events : new SqliteEventStore(path.join(dir, 'events.db'));
  return {
    metadata,
    events,
    artifacts: new LocalDirArtifactStore(path.join(dir, 'artifacts')),
    tamperArtifact: async () => {
      throw new Error(`the ${part} contract stores no artifacts`);
    },
    async close() {
      await metadata.close();
      await events.close();
      rmSync(dir, { recursive: true, force: true });
      await schema.drop();
    },
  };
}
