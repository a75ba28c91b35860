import type {
  EventStore,
  MonitorResultRecord,
  PredictionEvent,
  PredictionQuery,
  StoredPredictionEvent,
  WindowProfileRecord,
  WindowQuery,
} from '../ports.ts';
import { openSqlite, type Migration, type SqliteDb } from './database.ts';

const migrations: Migration[] = [
  [
    `CREATE TABLE predictions (
       seq INTEGER PRIMARY KEY,
       request_id TEXT NOT NULL,
       ts INTEGER NOT NULL,
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       status TEXT NOT NULL,
       latency_ms REAL NOT NULL,
       inputs TEXT NOT NULL,
       outputs TEXT NOT NULL,
       error TEXT)`,
    `CREATE INDEX predictions_model_ts ON predictions(model, ts)`,
    `CREATE INDEX predictions_request_id ON predictions(request_id)`,
  ],
  [
    `CREATE TABLE window_profiles (
       id INTEGER PRIMARY KEY,
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       window_start INTEGER NOT NULL,
       window_end INTEGER NOT NULL,
       replica TEXT NOT NULL,
       rows INTEGER NOT NULL,
       profile TEXT NOT NULL,
       created_at INTEGER NOT NULL)`,
    `CREATE INDEX window_profiles_key ON window_profiles(model, version, window_start)`,
    `CREATE TABLE monitor_results (
       model TEXT NOT NULL,
       version INTEGER NOT NULL,
       window_start INTEGER NOT NULL,
       window_end INTEGER NOT NULL,
       rows INTEGER NOT NULL,
       dataset_drift INTEGER NOT NULL,
       quality_failures INTEGER NOT NULL,
       report TEXT NOT NULL,
       created_at INTEGER NOT NULL,
       PRIMARY KEY (model, version, window_start, window_end))`,
  ],
];

interface ProfileRow {
  model: string;
  version: number;
  window_start: number;
  window_end: number;
  replica: string;
  rows: number;
  profile: string;
  created_at: number;
}

interface ResultRow {
  model: string;
  version: number;
  window_start: number;
  window_end: number;
  rows: number;
  dataset_drift: number;
  quality_failures: number;
  report: string;
  created_at: number;
}

function windowWhere(q: WindowQuery): { sql: string; args: unknown[] } {
  const parts = ['model = ?', 'version = ?'];
  const args: unknown[] = [q.model, q.version];
  if (q.since !== undefined) {
    parts.push('window_start >= ?');
    args.push(q.since);
  }
  if (q.until !== undefined) {
    parts.push('window_start < ?');
    args.push(q.until);
  }
  return { sql: `WHERE ${parts.join(' AND ')}`, args };
}

interface Row {
  seq: number;
  request_id: string;
  ts: number;
  model: string;
  version: number;
  status: 'ok' | 'error';
  latency_ms: number;
  inputs: string;
  outputs: string;
  error: string | null;
}

function whereClause(q: Omit<PredictionQuery, 'limit'>): { sql: string; args: unknown[] } {
  const parts: string[] = [];
  const args: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    parts.push(sql);
    args.push(value);
  };
  if (q.model !== undefined) add('model = ?', q.model);
  if (q.version !== undefined) add('version = ?', q.version);
  if (q.status !== undefined) add('status = ?', q.status);
  if (q.requestId !== undefined) add('request_id = ?', q.requestId);
  if (q.since !== undefined) add('ts >= ?', q.since);
  if (q.until !== undefined) add('ts < ?', q.until);
  if (q.afterSeq !== undefined) add('seq > ?', q.afterSeq);
  return { sql: parts.length ? `WHERE ${parts.join(' AND ')}` : '', args };
}

/** JSON for typed arrays (as plain arrays) and int64 values (as numbers). */
function replacer(_key: string, value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number | bigint>, Number);
  return typeof value === 'bigint' ? Number(value) : value;
}

interface TensorLike {
  name: string;
  datatype: string;
  dims?: number[];
  shape?: number[];
  data: unknown;
}

/**
 * The common payload — a list of numeric tensors — encoded without JSON.stringify's generic walk:
 * `join` prints the same shortest round-trip numbers. Returns undefined for anything else.
 */
function encodeTensors(value: unknown): string | undefined {
  if (!Array.isArray(value)) return undefined;
  const parts: string[] = [];
  for (const t of value as TensorLike[]) {
    if (t === null || typeof t !== 'object' || typeof t.name !== 'string' || typeof t.datatype !== 'string') return undefined;
    const d = t.data;
    const numeric = d instanceof Float32Array || d instanceof Float64Array || d instanceof Int32Array || (Array.isArray(d) && typeof d[0] === 'number');
    if (!numeric) return undefined;
    const dimsKey = t.dims ? 'dims' : 'shape';
    const dims = t.dims ?? t.shape ?? [];
    // Non-finite numbers cannot be JSON; fall back to the generic path, which writes null like JSON does.
    const joined = (d as ArrayLike<number> & { join(sep: string): string }).join(',');
    if (joined.includes('N') || joined.includes('I')) return undefined;
    parts.push(`{"name":${JSON.stringify(t.name)},"datatype":${JSON.stringify(t.datatype)},"${dimsKey}":[${dims.join(',')}],"data":[${joined}]}`);
  }
  return `[${parts.join(',')}]`;
}

/**
 * Encodes one event's payload; a value that cannot be encoded is stored as a note, so one odd event
 * never fails the batch it travels in.
 */
function encodeValue(value: unknown): string {
  try {
    const fast = encodeTensors(value);
    if (fast !== undefined) return fast;
    return JSON.stringify(value ?? null, replacer) ?? 'null';
  } catch (e) {
    return JSON.stringify(`[not logged: ${(e as Error).message.slice(0, 200)}]`);
  }
}

function rowOf(e: PredictionEvent): unknown[] {
  return [e.requestId, e.ts, e.model, e.version, e.status, e.latencyMs, encodeValue(e.inputs), encodeValue(e.outputs), e.error ?? null];
}

/** EventStore on an embedded SQLite file; appends run as one transaction per batch. */
export class SqliteEventStore implements EventStore {
  private readonly db: SqliteDb;
  private readonly insert;

  constructor(file: string) {
    this.db = openSqlite(file, migrations);
    this.insert = this.db.prepare(
      `INSERT INTO predictions (request_id, ts, model, version, status, latency_ms, inputs, outputs, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  async appendPredictions(events: readonly PredictionEvent[]): Promise<void> {
    this.db.transaction(() => {
      for (const e of events) this.insert.run(rowOf(e));
    })();
  }

  async appendProfiles(records: readonly WindowProfileRecord[]): Promise<void> {
    const insert = this.db.prepare(
      `INSERT INTO window_profiles (model, version, window_start, window_end, replica, rows, profile, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      for (const r of records) insert.run(r.model, r.version, r.windowStart, r.windowEnd, r.replica, r.rows, JSON.stringify(r.profile), r.createdAt);
    })();
  }

  async listProfiles(q: WindowQuery): Promise<WindowProfileRecord[]> {
    const { sql, args } = windowWhere(q);
    const rows = this.db
      .prepare(`SELECT * FROM window_profiles ${sql} ORDER BY window_start, id LIMIT ?`)
      .all(...args, q.limit ?? 100_000) as ProfileRow[];
    return rows.map((r) => ({
      model: r.model,
      version: r.version,
      windowStart: r.window_start,
      windowEnd: r.window_end,
      replica: r.replica,
      rows: r.rows,
      profile: JSON.parse(r.profile),
      createdAt: r.created_at,
    }));
  }

  async saveMonitorResult(r: MonitorResultRecord): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO monitor_results (model, version, window_start, window_end, rows, dataset_drift, quality_failures, report, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (model, version, window_start, window_end) DO UPDATE SET rows = excluded.rows, dataset_drift = excluded.dataset_drift,
           quality_failures = excluded.quality_failures, report = excluded.report, created_at = excluded.created_at`,
      )
      .run(r.model, r.version, r.windowStart, r.windowEnd, r.rows, r.datasetDrift ? 1 : 0, r.qualityFailures, JSON.stringify(r.report), r.createdAt);
  }

  async listMonitorResults(q: WindowQuery): Promise<MonitorResultRecord[]> {
    const { sql, args } = windowWhere(q);
    const rows = this.db
      .prepare(`SELECT * FROM monitor_results ${sql} ORDER BY window_start, window_end LIMIT ?`)
      .all(...args, q.limit ?? 10_000) as ResultRow[];
    return rows.map((r) => ({
      model: r.model,
      version: r.version,
      windowStart: r.window_start,
      windowEnd: r.window_end,
      rows: r.rows,
      datasetDrift: r.dataset_drift === 1,
      qualityFailures: r.quality_failures,
      report: JSON.parse(r.report),
      createdAt: r.created_at,
    }));
  }

  async queryPredictions(q: PredictionQuery): Promise<StoredPredictionEvent[]> {
    const { sql, args } = whereClause(q);
    const rows = this.db.prepare(`SELECT * FROM predictions ${sql} ORDER BY seq LIMIT ?`).all(...args, q.limit) as Row[];
    return rows.map((r) => ({
      seq: r.seq,
      requestId: r.request_id,
      ts: r.ts,
      model: r.model,
      version: r.version,
      status: r.status,
      latencyMs: r.latency_ms,
      inputs: JSON.parse(r.inputs),
      outputs: JSON.parse(r.outputs),
      ...(r.error === null ? {} : { error: r.error }),
    }));
  }

  async countPredictions(q: Omit<PredictionQuery, 'limit' | 'afterSeq'>): Promise<number> {
    const { sql, args } = whereClause(q);
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM predictions ${sql}`).get(...args) as { n: number }).n;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
