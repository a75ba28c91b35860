/**
 * Bounded, secret-free summaries of request bodies for the audit log: the log must say what a call asked for without
 * storing a 50 MB label import or an API key's secret. Values are cut by depth, keys, items and string length, and a
 * body too big even then is replaced by its size and digest (docs/audit.md#what-an-entry-holds).
 */
import { createHash } from 'node:crypto';

/** Field names whose values are never stored (case-insensitive, anywhere in the body). */
const SECRET_FIELD = /secret|password|passwd|token|authorization|api[-_]?key|credential/i;
const MAX_DEPTH = 4;
const MAX_KEYS = 40;
const MAX_ITEMS = 20;
const MAX_STRING = 200;
/** A summarized body larger than this (as JSON) is replaced by its size and digest. */
export const MAX_SUMMARY_CHARS = 4096;

/** `value` cut to the bounds above, secrets replaced by "[redacted]". */
export function boundedValue(value: unknown, depth = 0): unknown {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'string') return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}… (${value.length} chars)` : value;
  if (typeof value !== 'object') return String(value);
  if (depth >= MAX_DEPTH) return Array.isArray(value) ? `[${value.length} items]` : '{…}';
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((v) => boundedValue(v, depth + 1));
    if (value.length > MAX_ITEMS) items.push(`… ${value.length - MAX_ITEMS} more items`);
    return items;
  }
  const out: Record<string, unknown> = {};
  const keys = Object.keys(value);
  for (const k of keys.slice(0, MAX_KEYS)) {
    out[k] = SECRET_FIELD.test(k) ? '[redacted]' : boundedValue((value as Record<string, unknown>)[k], depth + 1);
  }
  if (keys.length > MAX_KEYS) out['…'] = `${keys.length - MAX_KEYS} more keys`;
  return out;
}

/**
 * What the audit log keeps of a request body: a JSON body bounded (or, when still too large, its size and sha256),
 * an upload (bytes, a stream) by its size and digest when known. Undefined for no body.
 */
export function bodySummary(body: unknown, contentLength: number | undefined): unknown {
  if (body === undefined || body === null) return undefined;
  if (body instanceof Uint8Array) return { bytes: body.byteLength, sha256: createHash('sha256').update(body).digest('hex') };
  if (typeof body === 'string') {
    return body.length <= MAX_STRING ? body : { chars: body.length, sha256: createHash('sha256').update(body).digest('hex') };
  }
  if (typeof body !== 'object') return body;
  // A stream or an uploaded file the route reads itself: only its declared size is known here.
  if (typeof (body as { pipe?: unknown }).pipe === 'function' || !isPlain(body)) return { bytes: contentLength ?? null };
  const bounded = boundedValue(body);
  const text = JSON.stringify(bounded);
  if (text.length <= MAX_SUMMARY_CHARS) return bounded;
  return { bytes: contentLength ?? null, keys: Object.keys(body).slice(0, MAX_KEYS), summarized: `${text.length} chars when bounded; too large to keep` };
}

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return Array.isArray(v) || proto === Object.prototype || proto === null;
}
