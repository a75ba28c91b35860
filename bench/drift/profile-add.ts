// bench/drift, online profile cost (a child of run.ts): ProfileBuilder.add over the current table's
// 1,000,000 rows × 25 columns as prediction events (batch 1, key `<request uuid>:0`), with the schema
// inferSchema picks from the reference (its first 100,000 rows; 25 columns, the 5 code columns named
// categorical). Rows are built before the clock starts, as the collector receives them decoded; a
// missing cell is null. Prints one JSON line with ns per feature per event for sampleSize 5,000 (the
// online default: bottom-k row sample on) and 0 (counts only).
// Usage: node --import tsx bench/drift/profile-add.ts <data dir>
import { randomUUID } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';
import { ProfileBuilder, inferSchema, type ProfileSchema } from '../../src/monitoring/profile/index.ts';
import type { DriftBenchData } from './make-data.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: profile-add.ts <data dir>');
const meta = JSON.parse(readFileSync(path.join(dir, 'meta.json'), 'utf8')) as DriftBenchData;
const width = meta.names.length;
const SCHEMA_ROWS = Math.min(100_000, meta.rows);
const REPEATS = 3;

function load(file: string): Float64Array {
  const all = new Float64Array(meta.rows * width);
  const bytes = new Uint8Array(all.buffer);
  const fd = openSync(file, 'r');
  try {
    for (let off = 0; off < bytes.length; ) off += readSync(fd, bytes, off, Math.min(bytes.length - off, 1 << 30), off);
  } finally {
    closeSync(fd);
  }
  return all;
}

/** Rows [0, n) of a column-major table as row arrays, NaN as null. */
function rowsOf(all: Float64Array, n: number): unknown[][] {
  const rows: unknown[][] = new Array(n);
  for (let i = 0; i < n; i++) {
    const row = new Array(width);
    for (let j = 0; j < width; j++) {
      const v = all[j * meta.rows + i]!;
      row[j] = Number.isNaN(v) ? null : v;
    }
    rows[i] = row;
  }
  return rows;
}

const schemaBase = inferSchema({ names: meta.names, rows: rowsOf(load(meta.files.reference), SCHEMA_ROWS) }, { categorical: meta.categorical });
const events = rowsOf(load(meta.files.current), meta.rows);
const keys = Array.from({ length: meta.rows }, () => `${randomUUID()}:0`);

/** Seconds to profile every event once with a fresh builder. */
function pass(schema: ProfileSchema, n = events.length): number {
  const builder = new ProfileBuilder(schema);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) builder.add(events[i]!, keys[i]!);
  const ns = Number(process.hrtime.bigint() - t0);
  if (builder.finish().rows !== n) throw new Error('row count mismatch');
  return ns / 1e9;
}

const results: Record<string, { sampleSize: number; nsPerFeatureEvent: number[]; best: number; median: number }> = {};
for (const sampleSize of [5_000, 0]) {
  const schema = { ...schemaBase, sampleSize };
  pass(schema, Math.min(200_000, events.length));
  const ns = Array.from({ length: REPEATS }, () => (pass(schema) * 1e9) / (events.length * width));
  const sorted = [...ns].sort((a, b) => a - b);
  results[`sample${sampleSize}`] = { sampleSize, nsPerFeatureEvent: ns, best: sorted[0]!, median: sorted[REPEATS >> 1]! };
}
console.log(JSON.stringify({ rows: events.length, features: width, schemaRows: SCHEMA_ROWS, repeats: REPEATS, results }));
