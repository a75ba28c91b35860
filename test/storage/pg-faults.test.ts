import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { classifyStoreError } from '../../src/storage/index.ts';
import { freePort } from '../helpers/postgres.ts';

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
