/**
 * FeatureStore on PostgreSQL, for several replicas sharing one database. It behaves as the SQLite adapter
 * (../sqlite/feature-store.ts) does: the same tables, the same checks and batch limit (../rows/feature-rows.ts), keys
 * in byte order (the key columns are COLLATE "C", so their indexes serve the scans in that order whatever the
 * database's locale), values kept as JSON text, so a row reads back exactly as written (key order and number
 * spelling included).
 */
import { inTransaction, migratePg, openPgPool, parsePgUrl, type PgMigration, type PgOptions, type PgPool } from './database.ts';
import type { FeatureRowRecord, FeatureStore, MaterializationRecord } from '../ports.ts';
import {
  checkBatchSize,
  checkLimit,
  checkName,
  checkTime,
  encodeMaterialization,
  encodeRows,
  inKeyOrder,
  newestPerEntity,
  toFeatureRow,
  toMaterialization,
  toOnline,
  toOnlineChange,
  type EncodedFeatureRow,
  type FeatureRowRow,
  type MaterializationRow,
  type OnlineRow,
} from '../rows/feature-rows.ts';

/** Schema history of the `features` component, applied in order by `migratePg` under the migrations' lock. */
export const pgFeatureMigrations: PgMigration[] = [
  [
    `CREATE TABLE feature_rows (
       id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       view TEXT COLLATE "C" NOT NULL,
       entity_key TEXT COLLATE "C" NOT NULL,
       event_ts BIGINT NOT NULL,
       created_ts BIGINT NOT NULL,
       values_json TEXT NOT NULL)`,
    `CREATE INDEX feature_rows_view ON feature_rows(view, id)`,
    `CREATE TABLE feature_online (
       view TEXT COLLATE "C" NOT NULL,
       entity_key TEXT COLLATE "C" NOT NULL,
       event_ts BIGINT NOT NULL,
       created_ts BIGINT NOT NULL,
       values_json TEXT NOT NULL,
       updated_at BIGINT NOT NULL,
       PRIMARY KEY (view, entity_key))`,
    `CREATE INDEX feature_online_updated ON feature_online(updated_at, view, entity_key)`,
    `CREATE TABLE feature_materializations (
       view TEXT COLLATE "C" PRIMARY KEY,
       watermark BIGINT NOT NULL,
       cursor_json TEXT,
       row_count BIGINT NOT NULL,
       updated_at BIGINT NOT NULL)`,
  ],
];

const ONLINE_COLUMNS = 'view, entity_key, event_ts, created_ts, values_json, updated_at';

/** Byte order, as SQLite's BINARY collation sorts (the columns are declared so; said again where it is relied on). */
const BYTES = 'COLLATE "C"';

/** The batch as five arrays, one parameter each: one statement of any batch size, no placeholder lists. */
function columns(rows: readonly EncodedFeatureRow[]): [string[], string[], number[], number[], string[]] {
  return [rows.map((r) => r.view), rows.map((r) => r.entityKey), rows.map((r) => r.eventTs), rows.map((r) => r.createdTs), rows.map((r) => r.valuesJson)];
}

const UNNEST = 'unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) WITH ORDINALITY AS t(v, k, e, c, j, o)';

/**
 * FeatureStore on PostgreSQL. Each write is one statement (or, for deleteView, one transaction), so it is atomic across
 * replicas; two replicas upserting the same entities at once both lock rows in the one order newestPerEntity sorts
 * them in, and the newer-wins condition is evaluated against the row as the other left it, so arrival order never
 * matters.
 */
export class PgFeatureStore implements FeatureStore {
  private closed = false;

  /** Takes over `pool`: close() ends it. The schema must be migrated (see `open`). */
  constructor(private readonly pool: PgPool) {}

  /** Connects to `url` (postgres://…?schema=…) and brings the `features` schema up to date, under the migrations' lock. */
  static async open(url: string, opts: PgOptions = {}): Promise<PgFeatureStore> {
    const target = parsePgUrl(url);
    const pool = openPgPool(target, { applicationName: 'warden-features', maxConnections: 4, ...opts });
    try {
      await migratePg(pool, target.schema, 'features', pgFeatureMigrations);
    } catch (e) {
      await pool.end().catch(() => {});
      throw e;
    }
    return new PgFeatureStore(pool);
  }

  async appendFeatureRows(rows: readonly FeatureRowRecord[]): Promise<number> {
    const encoded = encodeRows('appendFeatureRows', rows);
    if (encoded.length === 0) return 0;
    // ORDER BY the ordinality: ids are drawn in the order the rows were given.
    const r = await this.pool.query(
      `INSERT INTO feature_rows (view, entity_key, event_ts, created_ts, values_json) SELECT v, k, e, c, j FROM ${UNNEST} ORDER BY o`,
      columns(encoded),
    );
    return r.rowCount ?? 0;
  }

  async scanFeatureRows(q: { view: string; afterId?: number; createdAfter?: number; limit: number }): Promise<(FeatureRowRecord & { id: number })[]> {
    checkLimit('scanFeatureRows', q.limit);
    const params: unknown[] = [q.view, q.afterId ?? 0, q.limit];
    let sql = 'SELECT id, view, entity_key, event_ts, created_ts, values_json FROM feature_rows WHERE view = $1 AND id > $2';
    if (q.createdAfter !== undefined) {
      params.push(q.createdAfter);
      sql += ' AND created_ts > $4';
    }
    return (await this.pool.query<FeatureRowRow>(`${sql} ORDER BY id LIMIT $3`, params)).rows.map(toFeatureRow);
  }

  async upsertOnline(rows: readonly FeatureRowRecord[], now: number): Promise<number> {
    checkTime('upsertOnline', 'now', now);
    // One statement cannot update a row twice: the batch is folded to its newest row per entity first.
    const encoded = newestPerEntity(encodeRows('upsertOnline', rows));
    if (encoded.length === 0) return 0;
    const r = await this.pool.query(
      `INSERT INTO feature_online AS cur (${ONLINE_COLUMNS}) SELECT v, k, e, c, j, $6::bigint FROM ${UNNEST} ORDER BY o
       ON CONFLICT (view, entity_key) DO UPDATE SET
         event_ts = EXCLUDED.event_ts, created_ts = EXCLUDED.created_ts, values_json = EXCLUDED.values_json, updated_at = EXCLUDED.updated_at
       WHERE EXCLUDED.event_ts > cur.event_ts OR (EXCLUDED.event_ts = cur.event_ts AND EXCLUDED.created_ts > cur.created_ts)`,
      [...columns(encoded), now],
    );
    // Inserted and updated rows; a row the WHERE kept is not counted.
    return r.rowCount ?? 0;
  }

  async getOnline(view: string, entityKeys: readonly string[]): Promise<FeatureRowRecord[]> {
    checkBatchSize('getOnline', entityKeys.length, 'entity keys');
    if (entityKeys.length === 0) return [];
    const r = await this.pool.query<OnlineRow>(`SELECT ${ONLINE_COLUMNS} FROM feature_online WHERE view = $1 AND entity_key = ANY($2::text[])`, [
      view,
      [...entityKeys],
    ]);
    return inKeyOrder(entityKeys, r.rows);
  }

  async scanOnline(q: { view: string; afterKey?: string; limit: number }): Promise<FeatureRowRecord[]> {
    checkLimit('scanOnline', q.limit);
    const r =
      q.afterKey === undefined
        ? await this.pool.query<OnlineRow>(`SELECT ${ONLINE_COLUMNS} FROM feature_online WHERE view = $1 ORDER BY entity_key ${BYTES} LIMIT $2`, [q.view, q.limit])
        : await this.pool.query<OnlineRow>(
            `SELECT ${ONLINE_COLUMNS} FROM feature_online WHERE view = $1 AND entity_key > $2 ${BYTES} ORDER BY entity_key ${BYTES} LIMIT $3`,
            [q.view, q.afterKey, q.limit],
          );
    return r.rows.map(toOnline);
  }

  async onlineChangedSince(q: { since: number; limit: number }): Promise<(FeatureRowRecord & { updatedAt: number })[]> {
    checkLimit('onlineChangedSince', q.limit);
    checkTime('onlineChangedSince', 'since', q.since);
    const r = await this.pool.query<OnlineRow>(
      `SELECT ${ONLINE_COLUMNS} FROM feature_online WHERE updated_at >= $1 ORDER BY updated_at, view ${BYTES}, entity_key ${BYTES} LIMIT $2`,
      [q.since, q.limit],
    );
    return r.rows.map(toOnlineChange);
  }

  async getMaterialization(view: string): Promise<MaterializationRecord | undefined> {
    const r = await this.pool.query<MaterializationRow>('SELECT view, watermark, cursor_json, row_count, updated_at FROM feature_materializations WHERE view = $1', [view]);
    return r.rows[0] && toMaterialization(r.rows[0]);
  }

  async saveMaterialization(m: MaterializationRecord): Promise<void> {
    await this.pool.query(
      `INSERT INTO feature_materializations (view, watermark, cursor_json, row_count, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (view) DO UPDATE SET watermark = EXCLUDED.watermark, cursor_json = EXCLUDED.cursor_json,
         row_count = EXCLUDED.row_count, updated_at = EXCLUDED.updated_at`,
      encodeMaterialization(m),
    );
  }

  async deleteView(view: string): Promise<void> {
    checkName('deleteView', 'view', view);
    await inTransaction(this.pool, async (c) => {
      for (const table of ['feature_rows', 'feature_online', 'feature_materializations']) await c.query(`DELETE FROM ${table} WHERE view = $1`, [view]);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
