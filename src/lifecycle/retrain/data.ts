import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { parse } from 'csv-parse';
import { WardenError } from '../../errors.ts';
import type { RetrainPolicy } from './policy.ts';

/** Labelled traffic rows as the job splits them: features, label, when it was predicted, its segment key. */
export interface TrafficRows {
  features: string[];
  x: Float32Array[];
  y: number[];
  ts: number[];
  segment: string[];
  /** Rows left out: a label that is not a number (or not 0/1 for a binary task), a missing feature, a repeat. */
  skipped: { label: number; feature: number; duplicate: number };
}

const fail = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/**
 * Reads an exported training set (CSV, lifecycle/dataset's layout) back as rows, streaming, so a large file never
 * holds the event loop: at most `maxRows` rows, the newest kept. A request row labelled under two versions (a shadow
 * copy) counts once.
 */
export async function readTraffic(file: string, features: readonly string[], task: RetrainPolicy['task'], maxRows: number): Promise<TrafficRows> {
  const out: TrafficRows = { features: [...features], x: [], y: [], ts: [], segment: [], skipped: { label: 0, feature: 0, duplicate: 0 } };
  const parser = createReadStream(file).pipe(parse({ bom: true, relax_column_count: false }));
  let header: string[] | undefined;
  let fi: number[] = [];
  let li = -1;
  let ti = -1;
  let si = -1;
  let ri = -1;
  let rowi = -1;
  const seen = new Set<string>();
  for await (const rec of parser as AsyncIterable<string[]>) {
    if (!header) {
      header = rec;
      fi = features.map((f) => rec.indexOf(f));
      const missing = features.filter((_, j) => fi[j]! < 0);
      if (missing.length) throw fail(`the exported training set lacks features ${missing.join(', ')}`);
      li = rec.indexOf('label');
      ti = rec.indexOf('prediction_time');
      si = rec.indexOf('segment');
      ri = rec.indexOf('request_id');
      rowi = rec.indexOf('row');
      continue;
    }
    const id = `${rec[ri]}\u0000${rec[rowi]}`;
    if (seen.has(id)) {
      out.skipped.duplicate++;
      continue;
    }
    seen.add(id);
    const y = Number(rec[li]);
    if (rec[li] === '' || !Number.isFinite(y) || (task === 'binary' && y !== 0 && y !== 1)) {
      out.skipped.label++;
      continue;
    }
    const x = new Float32Array(features.length);
    let ok = true;
    for (let j = 0; j < features.length; j++) {
      const cell = rec[fi[j]!]!;
      const v = Number(cell);
      if (cell === '' || !Number.isFinite(v)) ok = false;
      x[j] = v;
    }
    if (!ok) {
      out.skipped.feature++;
      continue;
    }
    out.x.push(x);
    out.y.push(y);
    out.ts.push(Date.parse(rec[ti]!) || Number(rec[ti]) || 0);
    out.segment.push(rec[si] ?? '');
  }
  // Oldest first, so the holdout is the most recent share.
  const order = out.ts.map((_, i) => i).sort((a, b) => out.ts[a]! - out.ts[b]! || a - b);
  const keep = order.slice(Math.max(0, order.length - maxRows));
  return { ...out, x: keep.map((i) => out.x[i]!), y: keep.map((i) => out.y[i]!), ts: keep.map((i) => out.ts[i]!), segment: keep.map((i) => out.segment[i]!) };
}

/** Rows of a base CSV on the server (e.g. the original training set): its target as the label, `where` applied. */
export async function readBase(base: NonNullable<RetrainPolicy['data']['base']>, features: readonly string[], maxRows: number): Promise<{ x: Float32Array[]; y: number[]; skipped: number }> {
  const out = { x: [] as Float32Array[], y: [] as number[], skipped: 0 };
  let stream;
  try {
    stream = createReadStream(base.csv);
    await once(stream, 'open');
  } catch (e) {
    throw fail(`data.base.csv ${base.csv} cannot be read: ${(e as Error).message}`);
  }
  const parser = stream.pipe(parse({ bom: true }));
  let header: string[] | undefined;
  let fi: number[] = [];
  let ti = -1;
  let wi: [number, number][] = [];
  for await (const rec of parser as AsyncIterable<string[]>) {
    if (!header) {
      header = rec;
      fi = features.map((f) => rec.indexOf(f));
      ti = rec.indexOf(base.target);
      const missing = [...features.filter((_, j) => fi[j]! < 0), ...(ti < 0 ? [base.target] : [])];
      wi = Object.entries(base.where ?? {}).map(([k, v]) => [rec.indexOf(k), v]);
      const missingWhere = Object.keys(base.where ?? {}).filter((k) => rec.indexOf(k) < 0);
      if (missing.length || missingWhere.length) throw fail(`data.base.csv ${base.csv} lacks columns ${[...missing, ...missingWhere].join(', ')}`);
      continue;
    }
    if (!wi.every(([i, v]) => Number(rec[i]) === v)) continue;
    if (out.x.length >= maxRows) break;
    const y = Number(rec[ti]);
    const x = Float32Array.from(fi, (i) => Number(rec[i]));
    if (!Number.isFinite(y) || x.some((v) => !Number.isFinite(v))) {
      out.skipped++;
      continue;
    }
    out.x.push(x);
    out.y.push(y);
  }
  return out;
}

/** Writes rows as a CSV the built-in trainer (or a command) reads: the features, then `label`, then extra columns. */
export async function writeRowsCsv(file: string, features: readonly string[], parts: { x: Float32Array[]; y: number[]; extra?: { name: string; values: readonly string[] } }[]): Promise<void> {
  const ws = createWriteStream(file);
  const quote = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const extraName = parts.find((p) => p.extra)?.extra?.name;
  let buf = `${[...features, 'label', ...(extraName ? [extraName] : [])].map(quote).join(',')}\n`;
  for (const p of parts) {
    for (let i = 0; i < p.x.length; i++) {
      // Float32 values printed as the shortest decimal that reads back to the same float32 (what the model sees).
      buf += `${Array.from(p.x[i]!, (v) => String(Math.fround(v) === v ? shortest32(v) : v)).join(',')},${p.y[i]}${extraName ? `,${quote(p.extra?.values[i] ?? '')}` : ''}\n`;
      if (buf.length > 1 << 16) {
        if (!ws.write(buf)) await once(ws, 'drain');
        buf = '';
      }
    }
  }
  ws.end(buf);
  await once(ws, 'finish');
}

function shortest32(v: number): string {
  for (let p = 6; p <= 9; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return String(s);
  }
  return String(v);
}
