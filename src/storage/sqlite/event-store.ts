import type { EventStore, PredictionEvent, PredictionQuery, StoredPredictionEvent } from '../ports.ts';
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
];

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
