import { afterEach, describe, expect, it } from 'vitest';
import { migratePg, migrationStatus, openPgPool, parsePgUrl, redactPgUrl, type PgPool } from '../../src/storage/postgres/database.ts';
import { WardenError } from '../../src/errors.ts';
import { freshPgSchema, pgTestUrl } from '../helpers/postgres.ts';

const MIGRATIONS = [
  ['CREATE TABLE a (id INTEGER PRIMARY KEY)', 'INSERT INTO a VALUES (1)'],
  ['ALTER TABLE a ADD COLUMN b TEXT'],
];

describe('parsePgUrl', () => {
  it('takes the schema parameter off the URL and checks it', () => {
    expect(parsePgUrl('postgres://u:p@h:5432/db?schema=warden&sslmode=disable')).toEqual({
      connectionString: 'postgres://u:p@h:5432/db?sslmode=disable',
      schema: 'warden',
    });
    expect(parsePgUrl('postgresql://h/db').schema).toBe('public');
    for (const bad of ['mysql://h/db', 'not a url', 'postgres://h/db?schema=Bad-Name', 'postgres://h/db?schema=x;drop']) {
      expect(() => parsePgUrl(bad)).toThrow(WardenError);
    }
  });
  it('redacts the password', () => {
    expect(redactPgUrl('postgres://u:secret@h/db')).toBe('postgres://u:***@h/db');
  });
});

describe.skipIf(!pgTestUrl())('migratePg on a real PostgreSQL', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0)) await f();
  });

  it('applies each migration once when several replicas start together', async () => {
    const s = await freshPgSchema();
    const target = parsePgUrl(s.url);
    const pools: PgPool[] = [0, 1, 2, 3].map(() => openPgPool(target, { maxConnections: 2 }));
    cleanup.push(async () => {
      await Promise.all(pools.map((p) => p.end()));
      await s.drop();
    });
    const results = await Promise.all(pools.map((p) => migratePg(p, s.schema, 'test', MIGRATIONS)));
    // Exactly one replica applied both; the others found nothing to do.
    expect(results.filter((r) => r.length > 0)).toEqual([[1, 2]]);
    const rows = await pools[0]!.query('SELECT id, b FROM a');
    expect(rows.rows).toEqual([{ id: 1, b: null }]);
    expect(await migrationStatus(pools[0]!)).toEqual(new Map([['test', 2]]));
    // A replica that knows fewer migrations than the schema has refuses to run on it.
    await expect(migratePg(pools[1]!, s.schema, 'test', MIGRATIONS.slice(0, 1))).rejects.toThrow(/newer Warden/);
  });

  it('rolls a failing migration back whole', async () => {
    const s = await freshPgSchema();
    const pool = openPgPool(parsePgUrl(s.url));
    cleanup.push(async () => {
      await pool.end();
      await s.drop();
    });
    await expect(migratePg(pool, s.schema, 'test', [['CREATE TABLE ok (x INT)', 'CREATE TABLE broken (']])).rejects.toThrow();
    const t = await pool.query(`SELECT to_regclass('ok')::text AS t`);
    expect(t.rows[0].t).toBeNull();
    expect(await migrationStatus(pool)).toEqual(new Map());
  });
});
