import type { LabelInput, LabelSource } from './ports.ts';

/** A label counts as late when it arrives more than this after its prediction, unless the caller says otherwise. */
export const DEFAULT_LATE_AFTER_MS = 7 * 24 * 3600 * 1000;

/** Longest request id or key a label may name (caller keys are capped at 256 characters when predicting). */
const MAX_ID_LENGTH = 256;
/** Longest string label kept: ground truth is a class or a short text, not a document. */
const MAX_STRING_VALUE = 65_536;
/** Label times may run a little ahead of the server clock (skew), never far. */
const MAX_FUTURE_MS = 24 * 3600 * 1000;
const SOURCES: readonly LabelSource[] = ['human', 'system', 'model'];

/** A label that passed the checks, with defaults applied and its value encoded as JSON. */
export interface CheckedLabel {
  requestId?: string;
  key?: string;
  /** 0 for labels by key until the key's row is known. */
  row: number;
  /** JSON text of the value. */
  value: string;
  ts: number;
  source: LabelSource;
}

const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

/**
 * Checks one label as sent (it comes from JSON, so nothing about its shape is trusted) and applies the defaults.
 * Returns the reason when it is invalid. Whether the row exists in its request is checked by the store, which
 * knows the request.
 */
export function checkLabel(raw: unknown, now: number): { label: CheckedLabel } | { error: string } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { error: `a label must be an object, got ${describe(raw)}` };
  const l = raw as Record<keyof LabelInput, unknown>;
  const id = (name: 'requestId' | 'key'): string | { error: string } | undefined => {
    const v = l[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID_LENGTH) return { error: `${name} must be a non-empty string of at most ${MAX_ID_LENGTH} characters` };
    return v;
  };
  const requestId = id('requestId');
  const key = id('key');
  if (typeof requestId === 'object') return requestId;
  if (typeof key === 'object') return key;
  if (requestId === undefined && key === undefined) return { error: 'a label needs requestId (with optional row) or key' };
  if (requestId !== undefined && key !== undefined) return { error: 'give requestId (with optional row) or key, not both' };

  let row = 0;
  if (l.row !== undefined && l.row !== null) {
    if (key !== undefined) return { error: 'row goes with requestId; a key already names one row' };
    if (typeof l.row !== 'number' || !Number.isSafeInteger(l.row) || l.row < 0) return { error: 'row must be an integer ≥ 0' };
    row = l.row;
  }

  const v = l.value;
  if (v === undefined || v === null) return { error: 'value is missing' };
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return { error: 'value must be a finite number' };
  } else if (typeof v === 'string') {
    if (v.length > MAX_STRING_VALUE) return { error: `a string value may have at most ${MAX_STRING_VALUE} characters` };
  } else if (typeof v !== 'boolean') {
    return { error: `value must be a number, string or boolean, got ${describe(v)}` };
  }

  let ts = now;
  if (l.ts !== undefined && l.ts !== null) {
    if (typeof l.ts !== 'number' || !Number.isFinite(l.ts) || l.ts < 0) return { error: 'ts must be epoch milliseconds' };
    if (l.ts > now + MAX_FUTURE_MS) return { error: 'ts is more than a day in the future' };
    ts = Math.floor(l.ts);
  }

  let source: LabelSource = 'system';
  if (l.source !== undefined && l.source !== null) {
    if (!SOURCES.includes(l.source as LabelSource)) return { error: `source must be one of ${SOURCES.join(', ')}` };
    source = l.source as LabelSource;
  }

  return {
    label: {
      ...(requestId !== undefined ? { requestId } : {}),
      ...(key !== undefined ? { key } : {}),
      row,
      value: JSON.stringify(v),
      ts,
      source,
    },
  };
}

const LABEL_FIELDS = ['requestId', 'key', 'row', 'value', 'ts', 'source'] as const;

/**
 * A copy of a label as sent that is safe to post to the writer thread: only its known fields, each a primitive or an
 * empty stand-in of the same kind. A structured clone of a value nested 10,000 levels deep overflows the stack and
 * failed the whole call, valid labels included; the stand-in gets the same per-item error from {@link checkLabel}.
 */
export function flatLabel(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object') return raw;
  if (Array.isArray(raw)) return [];
  const out: Record<string, unknown> = {};
  for (const f of LABEL_FIELDS) {
    const v = (raw as Record<string, unknown>)[f];
    if (v === undefined) continue;
    out[f] = v === null || typeof v !== 'object' ? v : Array.isArray(v) ? [] : {};
  }
  return out;
}
