/**
 * Real PostgreSQL for tests. `npm test` starts one throw-away cluster (test/setup/postgres.ts) when Debian's
 * PostgreSQL server is installed, or uses `WARDEN_TEST_PG_URL` when set (.ci/run starts one and sets it); each test
 * gets a fresh schema of it. The outage tests start a cluster of their own with `startPgCluster` so they can stop it.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

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
