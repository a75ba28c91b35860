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
  type FeatureRowRow,
  type MaterializationRow,
  type OnlineRow,
} from '../rows/feature-rows.ts';
import { openSqlite, type Migration, type SqliteDb } from './database.ts';

/** Schema history of `features.db`, applied in order by `openSqlite` (exported so upgrade tests can stop part-way). */
export const featureMigrations: Migration[] = [
  [
    // Rows pushed to a view (its offline store when the source is `push`), in arrival order.
    `CREATE TABLE feature_rows (
       id INTEGER PRIMARY KEY AUTOINCREMENT,
       view TEXT NOT NULL,
       entity_key TEXT NOT NULL,
       event_ts INTEGER NOT NULL,
       created_ts INTEGER NOT NULL,
       values_json TEXT NOT NULL)`,
    `CREATE INDEX feature_rows_view ON feature_rows(view, id)`,
    // The latest row per view and entity, by event time (then created time).
    `CREATE TABLE feature_online (
       view TEXT NOT NULL,
       entity_key TEXT NOT NULL,
       event_ts INTEGER NOT NULL,
       created_ts INTEGER NOT NULL,
       values_json TEXT NOT NULL,
       updated_at INTEGER NOT NULL,
       PRIMARY KEY (view, entity_key)) WITHOUT ROWID`,
    // onlineChangedSince reads in this order.
    `CREATE INDEX feature_online_updated ON feature_online(updated_at, view, entity_key)`,
    `CREATE TABLE feature_materializations (
       view TEXT PRIMARY KEY,
       watermark INTEGER NOT NULL,
       cursor_json TEXT,
       row_count INTEGER NOT NULL,
       updated_at INTEGER NOT NULL)`,
  ],
];

const ONLINE_COLUMNS = 'view, entity_key, event_ts, created_ts, values_json, updated_at';

/**
 * FeatureStore on SQLite: `features.db` in the data directory, beside metadata.db and events.db, in WAL mode. Keys
 * compare as bytes (SQLite's BINARY collation), as PostgreSQL's adapter does with COLLATE "C". upsertOnline returns
 * the rows it wrote: new entities and replaced rows, once a batch is folded to its newest row per entity (so two rows
 * of one new entity in a batch count 1), never a row the newer-wins rule kept.
 *
 * better-sqlite3 is synchronous: each call runs on the caller's thread and blocks the event loop while it runs. That
 * is accepted here because these are batch calls (materialization, pushes, a replica filling its cache), none on the
 * request path (serving reads an in-memory cache), and each call's work is bounded: at most MAX_FEATURE_BATCH (5,000)
 * rows, keys or returned rows per call, one transaction per write (deleteView alone removes a whole view at once).
 */
export class SqliteFeatureStore implements FeatureStore {
  private readonly db: SqliteDb;
  private closed = false;

  constructor(file: string) {
    this.db = openSqlite(file, featureMigrations);
  }

  async appendFeatureRows(rows: readonly FeatureRowRecord[]): Promise<number> {
    const encoded = encodeRows('appendFeatureRows', rows);
    if (encoded.length === 0) return 0;
    const insert = this.db.prepare('INSERT INTO feature_rows (view, entity_key, event_ts, created_ts, values_json) VALUES (?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const r of encoded) insert.run(r.view, r.entityKey, r.eventTs, r.createdTs, r.valuesJson);
    })();
    return encoded.length;
  }

  async scanFeatureRows(q: { view: string; afterId?: number; createdAfter?: number; limit: number }): Promise<(FeatureRowRecord & { id: number })[]> {
    checkLimit('scanFeatureRows', q.limit);
    const params: unknown[] = [q.view, q.afterId ?? 0];
    let sql = 'SELECT id, view, entity_key, event_ts, created_ts, values_json FROM feature_rows WHERE view = ? AND id > ?';
    if (q.createdAfter !== undefined) {
      sql += ' AND created_ts > ?';
      params.push(q.createdAfter);
    }
    params.push(q.limit);
    return (this.db.prepare(`${sql} ORDER BY id LIMIT ?`).all(...params) as FeatureRowRow[]).map(toFeatureRow);
  }

  async upsertOnline(rows: readonly FeatureRowRecord[], now: number): Promise<number> {
    checkTime('upsertOnline', 'now', now);
    const encoded = newestPerEntity(encodeRows('upsertOnline', rows));
    if (encoded.length === 0) return 0;
    const upsert = this.db.prepare(
      `INSERT INTO feature_online (${ONLINE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (view, entity_key) DO UPDATE SET
         event_ts = excluded.event_ts, created_ts = excluded.created_ts, values_json = excluded.values_json, updated_at = excluded.updated_at
       WHERE excluded.event_ts > feature_online.event_ts
          OR (excluded.event_ts = feature_online.event_ts AND excluded.created_ts > feature_online.created_ts)`,
    );
    return this.db.transaction(() => {
      let written = 0;
      // `changes` is 1 for a new entity or a replaced row, 0 when the WHERE kept the stored one.
      for (const r of encoded) written += upsert.run(r.view, r.entityKey, r.eventTs, r.createdTs, r.valuesJson, now).changes;
      return written;
    })();
  }

  async getOnline(view: string, entityKeys: readonly string[]): Promise<FeatureRowRecord[]> {
    checkBatchSize('getOnline', entityKeys.length, 'entity keys');
    if (entityKeys.length === 0) return [];
    // One parameter for all the keys: no statement with thousands of placeholders.
    const rows = this.db
      .prepare(`SELECT ${ONLINE_COLUMNS} FROM feature_online WHERE view = ? AND entity_key IN (SELECT value FROM json_each(?))`)
      .all(view, JSON.stringify(entityKeys)) as OnlineRow[];
    return inKeyOrder(entityKeys, rows);
  }

  async scanOnline(q: { view: string; afterKey?: string; limit: number }): Promise<FeatureRowRecord[]> {
    checkLimit('scanOnline', q.limit);
    const rows =
      q.afterKey === undefined
        ? this.db.prepare(`SELECT ${ONLINE_COLUMNS} FROM feature_online WHERE view = ? ORDER BY entity_key LIMIT ?`).all(q.view, q.limit)
        : this.db
            .prepare(`SELECT ${ONLINE_COLUMNS} FROM feature_online WHERE view = ? AND entity_key > ? ORDER BY entity_key LIMIT ?`)
            .all(q.view, q.afterKey, q.limit);
    return (rows as OnlineRow[]).map(toOnline);
  }

  async onlineChangedSince(q: { since: number; limit: number }): Promise<(FeatureRowRecord & { updatedAt: number })[]> {
    checkLimit('onlineChangedSince', q.limit);
    checkTime('onlineChangedSince', 'since', q.since);
    const rows = this.db
      .prepare(`SELECT ${ONLINE_COLUMNS} FROM feature_online WHERE updated_at >= ? ORDER BY updated_at, view, entity_key LIMIT ?`)
      .all(q.since, q.limit) as OnlineRow[];
    return rows.map(toOnlineChange);
  }

  async getMaterialization(view: string): Promise<MaterializationRecord | undefined> {
    const r = this.db.prepare('SELECT view, watermark, cursor_json, row_count, updated_at FROM feature_materializations WHERE view = ?').get(view) as
      | MaterializationRow
      | undefined;
    return r && toMaterialization(r);
  }

  async saveMaterialization(m: MaterializationRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO feature_materializations (view, watermark, cursor_json, row_count, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (view) DO UPDATE SET watermark = excluded.watermark, cursor_json = excluded.cursor_json,
           row_count = excluded.row_count, updated_at = excluded.updated_at`,
      )
      .run(...encodeMaterialization(m));
  }

  async deleteView(view: string): Promise<void> {
    checkName('deleteView', 'view', view);
    // One transaction: a view is gone whole or not at all. Not bounded like the batch calls, but rare (a view
    // removed from the definitions).
    this.db.transaction(() => {
      for (const table of ['feature_rows', 'feature_online', 'feature_materializations']) this.db.prepare(`DELETE FROM ${table} WHERE view = ?`).run(view);
    })();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
