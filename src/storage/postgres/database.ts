/**
 * PostgreSQL connections and schema migrations shared by the PostgreSQL adapters.
 *
 * One URL configures it (`storage.url` / `WARDEN_STORAGE_URL`), e.g.
 * `postgres://warden:secret@db:5432/warden?schema=warden`. `schema` is Warden's own parameter (taken out before the
 * URL reaches `pg`): every table lives in that schema, created when missing, so Warden can share a database.
 */
import pg from 'pg';
import { WardenError } from '../../errors.ts';

// BIGINT (epoch ms, counts, COUNT(*)) arrives as a string by default; every value Warden stores fits in 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export type PgPool = pg.Pool;
export type PgClient = pg.PoolClient;

/** A migration: statements applied once, in order, in one transaction. */
export type PgMigration = readonly string[];

export interface PgOptions {
  /** Connections this pool opens at most (each replica has one pool per store). Default 10. */
  maxConnections?: number;
  /** How long a query waits for a free connection before failing (ms). Default 10 s. */
  connectionTimeoutMs?: number;
  /** Statements running longer are cancelled by the server (ms). Default 30 s. */
  statementTimeoutMs?: number;
  /** Names the connections in pg_stat_activity. */
  applicationName?: string;
}

export interface PgTarget {
  /** The URL as `pg` takes it (without Warden's `schema` parameter). */
  connectionString: string;
  schema: string;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Splits Warden's `schema` parameter off a PostgreSQL URL and checks both. */
export function parsePgUrl(url: string): PgTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new WardenError('WARDEN_CONFIG_INVALID', `storage.url is not a URL: give postgres://user:password@host:5432/database`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new WardenError('WARDEN_CONFIG_INVALID', `storage.url must start with postgres:// (got ${u.protocol}//); leave it unset for the embedded SQLite store`);
  }
  const schema = u.searchParams.get('schema') ?? 'public';
  if (!SCHEMA_NAME.test(schema)) {
    throw new WardenError('WARDEN_CONFIG_INVALID', `storage.url schema '${schema}' must be a lowercase identifier ([a-z_][a-z0-9_]*, at most 63 characters)`);
  }
  u.searchParams.delete('schema');
  return { connectionString: u.toString(), schema };
}

/** The URL with any password replaced, for logs and errors. */
export function redactPgUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** Opens a pool whose every connection works in `target.schema`. Connects lazily: nothing is checked until a query. */
export function openPgPool(target: PgTarget, opts: PgOptions = {}): PgPool {
  const pool = new pg.Pool({
    connectionString: target.connectionString,
    max: opts.maxConnections ?? 10,
    connectionTimeoutMillis: opts.connectionTimeoutMs ?? 10_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: opts.statementTimeoutMs ?? 30_000,
    application_name: opts.applicationName ?? 'warden',
    // The schema is a checked identifier, so quoting it is enough.
    options: `-c search_path="${target.schema}"`,
  });
  // An idle connection that the server drops (restart, failover) must not crash the process: the pool
  // discards it and the next query opens a new one.
  pool.on('error', () => {});
  // The same for a connection checked out between two queries (a transaction's awaits, a session lock held across
  // statements): pg emits 'error' on the client itself, which would be uncaught. The next query on it rejects, and
  // the store's fault handling takes it from there.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** A connection-level failure (the server went away, or ended the session): the connection must not be reused. */
export function brokenConnection(err: unknown): boolean {
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && /^(08|57P)[0-9A-Z]{3}$/.test(code)) return true;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true; // ECONNRESET, EPIPE, ETIMEDOUT…
  return typeof message === 'string' && /Connection terminated|connection is closed|not queryable/i.test(message);
}

/** Runs `fn` in one transaction on one connection: committed when it resolves, rolled back when it throws. */
export async function inTransaction<T>(pool: PgPool, fn: (c: PgClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    broken = brokenConnection(err);
    if (!broken) await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    // A dead connection is closed, not handed to the next caller.
    client.release(broken);
  }
}

/** One advisory lock key for all of Warden's migrations, so replicas starting together take turns. */
const MIGRATION_LOCK = 0x77617264; // 'ward'

/**
 * Applies the pending migrations of one component (`metadata`, `events`, `artifacts`) in one transaction, under a
 * transaction-scoped advisory lock: when several replicas start at once, one migrates and the others wait, then
 * find nothing left to do. Returns the versions applied (empty when up to date).
 */
export async function migratePg(pool: PgPool, schema: string, component: string, migrations: readonly PgMigration[]): Promise<number[]> {
  return inTransaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await c.query(`CREATE TABLE IF NOT EXISTS warden_migrations (
       component TEXT NOT NULL,
       version INTEGER NOT NULL,
       applied_at BIGINT NOT NULL,
       PRIMARY KEY (component, version))`);
    const { rows } = await c.query<{ v: number | null }>('SELECT MAX(version) AS v FROM warden_migrations WHERE component = $1', [component]);
    const current = rows[0]?.v ?? 0;
    if (current > migrations.length) {
      throw new WardenError(
        'WARDEN_STORE_UNAVAILABLE',
        `the ${component} schema is at version ${current} but this Warden knows ${migrations.length}: a newer Warden migrated it; upgrade this replica`,
      );
    }
    const applied: number[] = [];
    for (let i = current; i < migrations.length; i++) {
      for (const stmt of migrations[i]!) await c.query(stmt);
      await c.query('INSERT INTO warden_migrations (component, version, applied_at) VALUES ($1, $2, $3)', [component, i + 1, Date.now()]);
      applied.push(i + 1);
    }
    return applied;
  });
}

/** Versions applied and known, per component: what `warden migrate --status` prints. */
export async function migrationStatus(pool: PgPool): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const exists = await pool.query<{ t: string | null }>(`SELECT to_regclass('warden_migrations')::text AS t`);
  if (!exists.rows[0]?.t) return out;
  const { rows } = await pool.query<{ component: string; v: number }>('SELECT component, MAX(version) AS v FROM warden_migrations GROUP BY component');
  for (const r of rows) out.set(r.component, r.v);
  return out;
}
