import { parse as parseCsv } from 'csv-parse/sync';
import { parquetReadObjects } from 'hyparquet';
import { WardenError } from '../errors.ts';
import type { Table } from './profile/index.ts';

/** Data formats a reference or an offline drift input can come in. */
export type TableFormat = 'csv' | 'json' | 'parquet';

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/** CSV cells: empty → null, numeric text → number, anything else stays a string. */
function csvCell(v: string): unknown {
  if (v === '' || v === 'NA' || v === 'null') return null;
  const n = Number(v);
  if (v.trim() !== '' && !Number.isNaN(n)) return n;
  if (v === 'NaN') return NaN;
  return v;
}

export function tableFromCsv(text: string | Uint8Array): Table {
  let records: string[][];
  try {
    records = parseCsv(typeof text === 'string' ? text : Buffer.from(text), { bom: true, trim: true, skip_empty_lines: true, relax_column_count: false }) as string[][];
  } catch (e) {
    throw bad(`CSV could not be parsed: ${(e as Error).message}`);
  }
  const [header, ...rows] = records;
  if (!header || header.length === 0) throw bad('CSV has no header row');
  return { names: header, rows: rows.map((r) => r.map(csvCell)) };
}

/** JSON: an array of row objects, or `{"columns": {name: [values…]}}`. */
export function tableFromJson(value: unknown): Table {
  if (Array.isArray(value)) {
    const names: string[] = [];
    const seen = new Set<string>();
    for (const row of value) {
      if (!row || typeof row !== 'object' || Array.isArray(row)) throw bad('JSON rows must be objects of column → value');
      for (const k of Object.keys(row)) {
        if (seen.has(k)) continue;
        seen.add(k);
        names.push(k);
      }
    }
    return { names, rows: value.map((row: Record<string, unknown>) => names.map((n) => row[n] ?? null)) };
  }
  if (value && typeof value === 'object' && 'columns' in value) {
    const cols = (value as { columns: unknown }).columns;
    if (!cols || typeof cols !== 'object' || Array.isArray(cols)) throw bad('"columns" must map column names to arrays');
    const names = Object.keys(cols);
    const arrays = names.map((n) => (cols as Record<string, unknown>)[n]);
    if (!arrays.every(Array.isArray)) throw bad('every entry of "columns" must be an array');
    const len = (arrays[0] as unknown[] | undefined)?.length ?? 0;
    if (!arrays.every((a) => (a as unknown[]).length === len)) throw bad('all columns must have the same length');
    return { names, rows: Array.from({ length: len }, (_, i) => arrays.map((a) => (a as unknown[])[i] ?? null)) };
  }
  throw bad('JSON data must be an array of row objects or {"columns": {…}}');
}

export async function tableFromParquet(bytes: Uint8Array): Promise<Table> {
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let rows: Record<string, unknown>[];
  try {
    rows = (await parquetReadObjects({ file: buf })) as Record<string, unknown>[];
  } catch (e) {
    throw bad(`Parquet could not be read: ${(e as Error).message}`);
  }
  const table = tableFromJson(rows);
  // Parquet INT64 comes back as BigInt; monitoring works on numbers.
  for (const row of table.rows) for (let j = 0; j < row.length; j++) if (typeof row[j] === 'bigint') row[j] = Number(row[j]);
  return table;
}

/** Guesses the format from a file name or content type. */
export function formatOf(nameOrType: string): TableFormat | undefined {
  const s = nameOrType.toLowerCase();
  if (s.endsWith('.csv') || s.includes('text/csv')) return 'csv';
  if (s.endsWith('.json') || s.includes('json')) return 'json';
  if (s.endsWith('.parquet') || s.includes('parquet')) return 'parquet';
  return undefined;
}

export async function readTable(bytes: Uint8Array, format: TableFormat): Promise<Table> {
  if (format === 'csv') return tableFromCsv(bytes);
  if (format === 'parquet') return tableFromParquet(bytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw bad(`JSON could not be parsed: ${(e as Error).message}`);
  }
  return tableFromJson(parsed);
}
