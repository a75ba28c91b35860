import { createHash } from 'node:crypto';
import type { ModelVersionRecord } from '../storage/index.ts';
import type { ColumnLayout } from './columns.ts';
import { hash52, type Cell, type ProfileSchema } from './profile/index.ts';

/** Background rows from the reference sample (the explain API's default). */
export const IMPORTANCE_BACKGROUND_ROWS = 100;

/**
 * What explains rows of a version: the ExplainService's answer (src/explain), injected by the composition root, as
 * monitoring may not import src/explain (which imports monitoring's column layout). Throws when the version cannot
 * be explained (a WardenError with WARDEN_BAD_REQUEST says why: no tree ensemble nor a KernelSHAP-able graph, no
 * reference features).
 */
export type ExplainRows = (
  version: ModelVersionRecord,
  rows: Float32Array[],
  opts: { background: number; budget: number },
) => Promise<{
  method: string;
  output: string;
  space: string;
  features: string[];
  expected: number;
  background: { rows: number };
  kernel?: { budget: number; exact: boolean };
  explanations: { shap: Record<string, number> }[];
}>;

/** Global importance of one window: mean |φ| per feature over the window's sample rows explained. */
export interface WindowImportance {
  method: string;
  /** The output column explained, and in which space (`margin`: a tree classifier's log-odds). */
  output: string;
  space: string;
  /** Sample rows explained, and background rows they were explained against. */
  rows: number;
  background: number;
  /** KernelSHAP: the coalitions per row, and whether every row was exact. */
  budget?: number;
  exact?: boolean;
  /** Mean over the background of the explained value. */
  expected: number;
  /** Mean |φ| per feature, in the model's column order. */
  features: Record<string, number>;
  /**
   * The rows explained, the reference (by content: backgroundDigest) and the settings, hashed (SHA-256, 16 hex
   * digits): a re-evaluation of the window with the same (late labels) keeps these values instead of explaining again.
   */
  fingerprint: string;
}

/** Where the explained features sit in a window's sampled rows. */
export interface ImportanceColumns {
  /** The first input's features, in the model's column order. */
  features: string[];
  /** Schema column of each feature. */
  index: number[];
  /** Schema columns holding predictions: a sampled row with none set was refused, not served. */
  predictions: number[];
}

/**
 * The columns a version's importance reads, or why the version's windows cannot have one (the same for every window
 * of the reference): the first input's features must all be monitored, so the window's sample holds them.
 */
export function importanceColumns(layout: ColumnLayout, schema: ProfileSchema): ImportanceColumns | string {
  const features = layout.inputs[0]?.columns ?? [];
  if (layout.inputs.length !== 1 || features.length === 0) return `explanations need one input tensor with columns; the version has ${layout.inputs.length} inputs`;
  const names = schema.columns.map((c) => c.name);
  const index = features.map((f) => names.indexOf(f));
  const missing = features.filter((_, j) => index[j]! < 0);
  if (missing.length) return `the monitored columns leave out feature(s) ${missing.slice(0, 10).join(', ')}, so the window's sample lacks them`;
  return { features, index, predictions: schema.columns.flatMap((c, i) => (c.role === 'prediction' ? [i] : [])) };
}

/**
 * A sampled cell as the model's float32 input: NaN for a missing or non-numeric cell (categorical cells hold the
 * number's text); ±inf for a number beyond float32 (a refused row's). −0 reads as 0, as the stored (JSON) profile
 * of another replica holds it.
 */
function featureRow(cols: ImportanceColumns, cells: readonly Cell[]): Float32Array | undefined {
  const row = new Float32Array(cols.features.length);
  for (let j = 0; j < row.length; j++) {
    const c = cells[cols.index[j]!];
    const x = typeof c === 'number' ? c : typeof c === 'string' && c.trim() !== '' ? Number(c) : NaN;
    row[j] = x + 0;
    if (!Number.isFinite(row[j]!)) return undefined;
  }
  return row;
}

const hex = (row: Float32Array) => Buffer.from(row.buffer, row.byteOffset, row.byteLength).toString('hex');

/**
 * The rows a window's importance explains: of the window's sample rows that were served (a prediction cell is set,
 * when the schema monitors predictions: refused requests have none) and have every feature as a finite number, as
 * float32 (what the model took), the `n` with the smallest priority, in ascending priority. A row's priority is
 * hash52 of its features' bytes (hex, little-endian float32) and its copy number among identical rows of the sample
 * (`<hex>:0`, `<hex>:1`, …): it depends on the row's values only, not on its request id, its arrival or which
 * replica profiled it, so the same rows in the sample (one process's, or every replica's partial samples merged)
 * give the same choice, and each copy of a repeated row has its own chance. With their fingerprint: `salt` (the
 * reference and the settings) and the chosen rows' bytes, hashed. Undefined when no sampled row can be used.
 */
export function importanceRows(cols: ImportanceColumns, sample: readonly Cell[][], n: number, salt: string): { rows: Float32Array[]; fingerprint: string } | undefined {
  const usable: { row: Float32Array; key: string; priority: number }[] = [];
  const copies = new Map<string, number>();
  for (const cells of sample) {
    if (cols.predictions.length && cols.predictions.every((i) => cells[i] === null || cells[i] === undefined)) continue;
    const row = featureRow(cols, cells);
    if (!row) continue;
    const bytes = hex(row);
    const copy = copies.get(bytes) ?? 0;
    copies.set(bytes, copy + 1);
    const key = `${bytes}:${copy}`;
    usable.push({ row, key, priority: hash52(key) });
  }
  if (usable.length === 0) return undefined;
  // Distinct keys: a tie of priorities (a hash collision) is broken by the key, so the order is total.
  usable.sort((a, b) => a.priority - b.priority || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const rows = usable.slice(0, Math.max(0, n)).map((u) => u.row);
  if (rows.length === 0) return undefined;
  const hash = createHash('sha256').update(salt);
  for (const row of rows) hash.update(new Uint8Array(row.buffer));
  return { rows, fingerprint: hash.digest('hex').slice(0, 16) };
}

/**
 * What a window's importance is explained against, identified by content for its fingerprint: the first
 * `background` complete rows of the reference sample (the explain API's background), hashed (SHA-256, hex). Equal
 * references (the same rows registered in another process, or registered again) give the same digest, so the
 * fingerprint does not depend on when the reference was registered.
 */
export function backgroundDigest(cols: ImportanceColumns, referenceSample: readonly Cell[][], background: number): string {
  const hash = createHash('sha256');
  let rows = 0;
  for (const cells of referenceSample) {
    if (rows >= background) break;
    const row = featureRow(cols, cells);
    if (!row) continue;
    hash.update(new Uint8Array(row.buffer));
    rows++;
  }
  return `${rows}:${hash.digest('hex')}`;
}

/** Mean |φ| per feature over the explained rows. */
export function meanAbsShap(features: readonly string[], explanations: readonly { shap: Record<string, number> }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of features) {
    let s = 0;
    for (const e of explanations) s += Math.abs(e.shap[f] ?? 0);
    out[f] = s / explanations.length;
  }
  return out;
}
