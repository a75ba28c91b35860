/**
 * How a feature's value and a row's time are read from a source (CSV text, Parquet cells, pushed JSON) and written
 * out again (CSV cells, JSON). One reading for every path, so a file, a push and an entity row agree on what "3",
 * "2011-01-01" and "" mean.
 */
import type { FeatureDtype } from './types.ts';

export type FeatureValue = number | string | boolean | null;

/** Why a cell is not a value of its dtype; undefined when it is (the value is in `out.value`). */
export function parseValue(dtype: FeatureDtype, raw: unknown, out: { value: FeatureValue }): string | undefined {
  if (raw === null || raw === undefined || raw === '') {
    out.value = null;
    return undefined;
  }
  switch (dtype) {
    case 'string':
      if (typeof raw === 'string') out.value = raw;
      else if (typeof raw === 'number' || typeof raw === 'boolean' || typeof raw === 'bigint') out.value = String(raw);
      else if (raw instanceof Date) out.value = raw.toISOString();
      else return 'not a string';
      return undefined;
    case 'float': {
      const n = toNumber(raw);
      if (n === undefined || !Number.isFinite(n)) return 'not a number';
      out.value = n;
      return undefined;
    }
    case 'int': {
      const n = toNumber(raw);
      if (n === undefined || !Number.isSafeInteger(n)) return 'not an integer';
      out.value = n;
      return undefined;
    }
    case 'bool': {
      if (typeof raw === 'boolean') out.value = raw;
      else if (raw === 1 || raw === 0) out.value = raw === 1;
      else if (typeof raw === 'string' && /^(true|1)$/i.test(raw.trim())) out.value = true;
      else if (typeof raw === 'string' && /^(false|0)$/i.test(raw.trim())) out.value = false;
      else return 'not a boolean (true/false, 1/0)';
      return undefined;
    }
  }
}

function toNumber(raw: unknown): number | undefined {
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'bigint') return Number(raw);
  if (typeof raw === 'string') {
    const s = raw.trim();
    if (s === '') return undefined;
    const n = Number(s);
    return Number.isNaN(n) ? undefined : n;
  }
  return undefined;
}

/** A date or date-time without an offset: read as UTC, so a result never depends on the server's time zone. */
const LOCAL_TIME = /^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?$/;

/**
 * A time as epoch milliseconds: a number (epoch ms), a Date, a BigInt (epoch ms, as Parquet INT64), or text — epoch
 * ms digits or ISO-8601 (`2011-01-01`, `2011-01-01T10:00:00Z`, `2011-01-01 10:00`; no offset means UTC).
 * Undefined when it is none of these.
 */
export function parseTime(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : undefined;
  if (typeof raw === 'bigint') return Number(raw);
  if (raw instanceof Date) {
    const t = raw.getTime();
    return Number.isFinite(t) ? t : undefined;
  }
  if (typeof raw !== 'string') return undefined;
  const s = raw.trim();
  if (s === '') return undefined;
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(s);
  const local = LOCAL_TIME.exec(s);
  const t = Date.parse(local ? `${local[1]}T${local[2] ?? '00:00:00'}Z` : s);
  return Number.isFinite(t) ? t : undefined;
}

/** RFC 4180: a field with a comma, quote or line break is quoted with quotes doubled; so is one with edge spaces. */
export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'string' ? v : String(v);
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** A join key's value as text: how entity rows and sources are matched (a number as its shortest decimal form). */
export function keyText(raw: unknown): string | undefined {
  if (raw === null || raw === undefined) return undefined;
  if (typeof raw === 'string') return raw === '' ? undefined : raw;
  if (typeof raw === 'number' || typeof raw === 'bigint' || typeof raw === 'boolean') return String(raw);
  if (raw instanceof Date) return raw.toISOString();
  return undefined;
}
