/**
 * Feature rows as both FeatureStore adapters keep them: the checks every call makes before it touches a database, the
 * rule that folds a batch to its newest row per (view, entity), and the conversion of stored rows back to records.
 * The rules are one, so SQLite and PostgreSQL accept, refuse and count the same.
 */
import { WardenError } from '../../errors.ts';
import type { FeatureRowRecord, MaterializationRecord } from '../ports.ts';

/**
 * Most rows (or entity keys, or the `limit` of a scan) one call takes: callers batch, so that no call holds a
 * database (SQLite's one writer, a PostgreSQL statement) for long.
 */
export const MAX_FEATURE_BATCH = 5_000;

/** A pushed row as stored. */
export interface FeatureRowRow {
  id: number;
  view: string;
  entity_key: string;
  event_ts: number;
  created_ts: number;
  values_json: string;
}

/** An online row as stored. */
export interface OnlineRow {
  view: string;
  entity_key: string;
  event_ts: number;
  created_ts: number;
  values_json: string;
  updated_at: number;
}

/** A materialization state as stored. */
export interface MaterializationRow {
  view: string;
  watermark: number;
  cursor_json: string | null;
  row_count: number;
  updated_at: number;
}

function refuse(message: string): never {
  throw new WardenError('WARDEN_BAD_REQUEST', message);
}

/** Refuses a batch larger than MAX_FEATURE_BATCH, naming the call and what to do. */
export function checkBatchSize(method: string, n: number, what = 'rows'): void {
  if (n > MAX_FEATURE_BATCH) {
    refuse(`${method}: ${n} ${what} in one call, at most ${MAX_FEATURE_BATCH.toLocaleString('en-US')}: split them into batches`);
  }
}

/** A scan's limit: a whole number from 1 to MAX_FEATURE_BATCH (a larger page is refused, never silently cut). */
export function checkLimit(method: string, limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_FEATURE_BATCH) {
    refuse(`${method}: limit must be a whole number from 1 to ${MAX_FEATURE_BATCH.toLocaleString('en-US')} (got ${limit}); page with the cursor it returns`);
  }
}

/** Epoch ms as both databases store it: a whole number (PostgreSQL's BIGINT takes nothing else). */
export function checkTime(method: string, name: string, t: number): void {
  if (!Number.isSafeInteger(t)) refuse(`${method}: ${name} must be a whole number of epoch ms (got ${t})`);
}

/** A view name or entity key: a string without NUL (PostgreSQL's text cannot hold one). */
export function checkName(method: string, name: string, s: unknown): void {
  if (typeof s !== 'string') refuse(`${method}: ${name} must be a string (got ${typeof s})`);
  if (s.includes('\u0000')) refuse(`${method}: ${name} ${JSON.stringify(s)} contains a NUL character`);
}

/**
 * The values as JSON text. Only numbers, strings, booleans and null are taken, and no NaN or infinity: JSON would
 * write those as null, and the row read back would not be the row written.
 */
export function encodeValues(method: string, values: FeatureRowRecord['values']): string {
  if (typeof values !== 'object' || values === null || Array.isArray(values)) refuse(`${method}: values must be an object of feature values`);
  for (const [name, v] of Object.entries(values)) {
    const ok = v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
    if (!ok) refuse(`${method}: feature ${JSON.stringify(name)} has value ${String(v)}: values are finite numbers, strings, booleans or null`);
  }
  return JSON.stringify(values);
}

/** A row checked and with its values encoded, ready for either database. */
export interface EncodedFeatureRow {
  view: string;
  entityKey: string;
  eventTs: number;
  createdTs: number;
  valuesJson: string;
}

/** Checks a batch (its size, every row) and encodes the values; throws before anything is written. */
export function encodeRows(method: string, rows: readonly FeatureRowRecord[]): EncodedFeatureRow[] {
  checkBatchSize(method, rows.length);
  return rows.map((r) => {
    checkName(method, 'view', r.view);
    checkName(method, 'entityKey', r.entityKey);
    checkTime(method, 'eventTs', r.eventTs);
    checkTime(method, 'createdTs', r.createdTs);
    return { view: r.view, entityKey: r.entityKey, eventTs: r.eventTs, createdTs: r.createdTs, valuesJson: encodeValues(method, r.values) };
  });
}

/** Whether `a` replaces `b` in the online store: newer by event time, or equal event time and newer created time. */
export function newer(a: { eventTs: number; createdTs: number }, b: { eventTs: number; createdTs: number }): boolean {
  return a.eventTs > b.eventTs || (a.eventTs === b.eventTs && a.createdTs > b.createdTs);
}

/**
 * A batch folded to its newest row per (view, entity), by the rule the stores apply (the first of equal rows stays,
 * as a stored row stays against an equal one), sorted by view and key so that writers lock rows in one order.
 * PostgreSQL needs it (one statement cannot update a row twice); SQLite does it too, so both count the same.
 */
export function newestPerEntity(rows: readonly EncodedFeatureRow[]): EncodedFeatureRow[] {
  const byKey = new Map<string, EncodedFeatureRow>();
  for (const r of rows) {
    const k = `${r.view}\u0000${r.entityKey}`;
    const held = byKey.get(k);
    if (!held || newer(r, held)) byKey.set(k, r);
  }
  return [...byKey.values()].sort((a, b) => (a.view < b.view ? -1 : a.view > b.view ? 1 : a.entityKey < b.entityKey ? -1 : a.entityKey > b.entityKey ? 1 : 0));
}

export function toFeatureRow(r: FeatureRowRow): FeatureRowRecord & { id: number } {
  return { id: r.id, view: r.view, entityKey: r.entity_key, eventTs: r.event_ts, createdTs: r.created_ts, values: JSON.parse(r.values_json) };
}

export function toOnline(r: OnlineRow): FeatureRowRecord {
  return { view: r.view, entityKey: r.entity_key, eventTs: r.event_ts, createdTs: r.created_ts, values: JSON.parse(r.values_json) };
}

export function toOnlineChange(r: OnlineRow): FeatureRowRecord & { updatedAt: number } {
  return { ...toOnline(r), updatedAt: r.updated_at };
}

/** getOnline's answer: the stored rows in the order their keys were asked for, each once, missing ones left out. */
export function inKeyOrder(keys: readonly string[], rows: readonly OnlineRow[]): FeatureRowRecord[] {
  const byKey = new Map(rows.map((r) => [r.entity_key, r]));
  const out: FeatureRowRecord[] = [];
  for (const k of new Set(keys)) {
    const r = byKey.get(k);
    if (r) out.push(toOnline(r));
  }
  return out;
}

export function toMaterialization(r: MaterializationRow): MaterializationRecord {
  return {
    view: r.view,
    watermark: r.watermark,
    ...(r.cursor_json === null ? {} : { cursor: JSON.parse(r.cursor_json) as Record<string, unknown> }),
    rows: r.row_count,
    updatedAt: r.updated_at,
  };
}

/** A materialization state checked, its cursor as JSON text (null when it has none). */
export function encodeMaterialization(m: MaterializationRecord): [string, number, string | null, number, number] {
  const method = 'saveMaterialization';
  checkName(method, 'view', m.view);
  checkTime(method, 'watermark', m.watermark);
  checkTime(method, 'updatedAt', m.updatedAt);
  if (!Number.isSafeInteger(m.rows) || m.rows < 0) refuse(`${method}: rows must be a whole number (got ${m.rows})`);
  if (m.cursor !== undefined && (typeof m.cursor !== 'object' || m.cursor === null || Array.isArray(m.cursor))) refuse(`${method}: cursor must be an object`);
  return [m.view, m.watermark, m.cursor === undefined ? null : JSON.stringify(m.cursor), m.rows, m.updatedAt];
}
