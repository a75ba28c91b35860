import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { classifyStoreError } from '../../src/storage/index.ts';
import { brokenConnection, inTransaction, openPgPool, parsePgUrl } from '../../src/storage/postgres/database.ts';
import { freePort, freshPgSchema, pgTestUrl } from '../helpers/postgres.ts';

describe('classifyStoreError on PostgreSQL errors', () => {
  it('names an unreachable server, a full disk, a standby and too many connections by SQLSTATE', () => {
    expect(classifyStoreError({ code: '57P01' })?.cause).toMatch(/cannot be reached/);
    expect(classifyStoreError({ code: '08006' })?.cause).toMatch(/cannot be reached/);
    expect(classifyStoreError({ code: '53100' })?.cause).toMatch(/disk is full/);
    expect(classifyStoreError({ code: '25006' })?.fix).toMatch(/primary/);
    expect(classifyStoreError({ code: '53300' })?.fix).toMatch(/maxConnections/);
    // A constraint violation is the caller's or a bug, not the store being unavailable.
    expect(classifyStoreError({ code: '23505' })).toBeUndefined();
    expect(classifyStoreError(new Error('Connection terminated unexpectedly'))?.code).toBe('PG_CONNECTION');
    expect(classifyStoreError(new Error('syntax error'))).toBeUndefined();
  });

  it('classifies what the real driver throws when nothing listens at the URL', async () => {
    const port = await freePort();
    const pool = new pg.Pool({ connectionString: `postgres://x@127.0.0.1:${port}/x`, connectionTimeoutMillis: 2_000 });
    try {
      const err = await pool.query('SELECT 1').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(classifyStoreError(err)).toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await pool.end();
    }
  });
});

describe.skipIf(!pgTestUrl())('a PostgreSQL connection killed while checked out', () => {
  it('does not crash the process: the next query on it rejects, the transaction closes it, the pool opens a new one', async () => {
    const schema = await freshPgSchema();
    const pool = openPgPool(parsePgUrl(schema.url), { maxConnections: 2 });
    const admin = new pg.Client({ connectionString: pgTestUrl() });
    await admin.connect();
    // Anything that reaches process-level 'uncaughtException' fails this test (vitest reports it as an error).
    try {
      let pid = 0;
      const tx = inTransaction(pool, async (c) => {
        pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
        // Checked out and idle between two statements while the server ends the session.
        await admin.query('SELECT pg_terminate_backend($1)', [pid]);
        await new Promise((r) => setTimeout(r, 200));
        await c.query('SELECT 1');
      });
      const err = await tx.then(() => undefined, (e: unknown) => e);
      expect(err, 'the query on the killed connection must reject').toBeInstanceOf(Error);
      expect(brokenConnection(err)).toBe(true);
      // The pool still works, on a new connection.
      const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      expect(rows[0]!.pid).not.toBe(pid);
    } finally {
      await admin.end();
      await pool.end();
      await schema.drop();
    }
  });
});
