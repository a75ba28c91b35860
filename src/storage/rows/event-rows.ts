/**
 * The events tables' rows as both adapters read them, and the port records made from them. The schemas keep the
 * same columns with the same meaning; where the databases hold a value in different types (booleans), the mapping
 * takes the adapter's reading of it, so that what each adapter returns stays what the SQLite reference returns.
 */
import type { MonitorResultRecord, PredictionEvent, PredictionRoute, StoredPredictionEvent, WindowProfileRecord } from '../ports.ts';

/** How a database holds a boolean column: SQLite as 0 or 1, PostgreSQL as a boolean. */
export interface BoolColumn<T> {
  of(b: boolean): T;
  is(v: T): boolean;
}

export const sqliteBool: BoolColumn<number> = { of: (b) => (b ? 1 : 0), is: (v) => v === 1 };
export const pgBool: BoolColumn<boolean> = { of: (b) => b, is: (v) => v };

export interface PredictionRow {
  seq: number;
  request_id: string;
  ts: number;
  model: string;
  version: number;
  status: PredictionEvent['status'];
  route: PredictionRoute | null;
  latency_ms: number;
  inputs: string;
  outputs: string;
  error: string | null;
  keys: string | null;
  trace_id: string | null;
  /** A shadow wave's columns (rows/shadow-waves.ts); null on every other row. */
  copies: number | null;
  ts_last: number | null;
  copy_list: string | null;
}

export const toStoredPrediction = (r: PredictionRow): StoredPredictionEvent => ({
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
  ...(r.keys === null ? {} : { keys: JSON.parse(r.keys) as string[] }),
  ...(r.trace_id === null ? {} : { traceId: r.trace_id }),
  ...(r.route === null ? {} : { route: r.route }),
});

/** JSON for typed arrays (as plain arrays) and int64 values (as numbers). */
function replacer(_key: string, value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number | bigint>, Number);
  return typeof value === 'bigint' ? Number(value) : value;
}

/**
 * Encodes a payload that was not packed as numeric tensors; a value that cannot be encoded is stored as a
 * note, so one odd event never fails the batch it travels in.
 */
export function encodeRaw(value: unknown): string {
  try {
    return JSON.stringify(value ?? null, replacer) ?? 'null';
  } catch (e) {
    return JSON.stringify(`[not logged: ${(e as Error).message.slice(0, 200)}]`);
  }
}

export interface ProfileRow {
  model: string;
  version: number;
  window_start: number;
  window_end: number;
  replica: string;
  rows: number;
  profile: string;
  created_at: number;
}

export const toProfile = (r: ProfileRow): WindowProfileRecord => ({
  model: r.model,
  version: r.version,
  windowStart: r.window_start,
  windowEnd: r.window_end,
  replica: r.replica,
  rows: r.rows,
  profile: JSON.parse(r.profile),
  createdAt: r.created_at,
});

/** A monitor_results row, `B` being how its database holds a boolean (see BoolColumn). */
export interface MonitorResultRow<B> {
  model: string;
  version: number;
  window_start: number;
  window_end: number;
  rows: number;
  dataset_drift: B;
  quality_failures: number;
  report: string;
  created_at: number;
}

export const toMonitorResult = <B>(r: MonitorResultRow<B>, bool: BoolColumn<B>): MonitorResultRecord => ({
  model: r.model,
  version: r.version,
  windowStart: r.window_start,
  windowEnd: r.window_end,
  rows: r.rows,
  datasetDrift: bool.is(r.dataset_drift),
  qualityFailures: r.quality_failures,
  report: JSON.parse(r.report),
  createdAt: r.created_at,
});
