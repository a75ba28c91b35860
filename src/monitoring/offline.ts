import { WardenError } from '../errors.ts';
import { alignedCounts, checkDriftConfig, evaluateDrift, type DriftConfig, type DriftReport } from './drift/engine.ts';
import { ProfileBuilder, inferSchema, type Cell, type DatasetProfile, type ProfileSchema, type SchemaOptions, type Table } from './profile/index.ts';
import { evaluateQuality, type QualityReport, type QualityThresholds } from './quality.ts';
import {
  checkEmbeddingConfig,
  embeddingDrift,
  fitMultivariate,
  multivariateDrift,
  type EmbeddingConfig,
  type EmbeddingDrift,
  type MultivariateConfig,
  type MultivariateDrift,
} from './vector-drift.ts';

/** A table held as columns: numbers in Float64Array (NaN for missing), anything else as values. */
export interface ColumnarTable {
  names: string[];
  rows: number;
  columns: (Float64Array | unknown[])[];
}

export interface OfflineOptions extends Omit<SchemaOptions, 'sampleSize'> {
  drift?: DriftConfig;
  embeddings?: EmbeddingConfig;
  multivariate?: MultivariateConfig;
  quality?: Partial<QualityThresholds>;
  onProgress?: (message: string) => void;
}

export interface OfflineReport {
  generatedAt: string;
  reference: { rows: number };
  current: { rows: number };
  schema: ProfileSchema;
  drift: DriftReport;
  quality: QualityReport;
  histograms: { column: string; kind: string; labels: string[]; reference: number[]; current: number[] }[];
  embeddings?: EmbeddingDrift[];
  multivariate?: MultivariateDrift;
}

/** Up to `max` evenly spaced rows of the chosen columns, as sample cells (vector methods cost O(rows²)). */
function sampleRows(t: ColumnarTable, schema: ProfileSchema, max: number): Cell[][] {
  const step = Math.max(1, Math.ceil(t.rows / max));
  const idx = schema.columns.map((c) => t.names.indexOf(c.name));
  const out: Cell[][] = [];
  for (let i = 0; i < t.rows; i += step) {
    out.push(
      idx.map((j) => {
        const v = t.columns[j]![i];
        return typeof v === 'number' ? (Number.isFinite(v) ? v : null) : typeof v === 'string' ? v : null;
      }),
    );
  }
  return out;
}

/** Row-major table → columns (numbers packed into Float64Array when a column is all numbers or missing). */
export function toColumnar(t: Table): ColumnarTable {
  const columns = t.names.map((_, j) => {
    let numeric = true;
    for (const r of t.rows) {
      const v = r[j];
      if (v !== null && v !== undefined && typeof v !== 'number') {
        numeric = false;
        break;
      }
    }
    if (!numeric) return t.rows.map((r) => r[j]);
    const out = new Float64Array(t.rows.length);
    t.rows.forEach((r, i) => (out[i] = typeof r[j] === 'number' ? (r[j] as number) : NaN));
    return out;
  });
  return { names: t.names, rows: t.rows.length, columns };
}

/** Chooses kinds, bins and categories from a sample of the reference's rows (all of them up to 200,000). */
function schemaFrom(ref: ColumnarTable, names: string[], opts: OfflineOptions): ProfileSchema {
  const step = Math.max(1, Math.floor(ref.rows / 200_000));
  const idx = names.map((n) => ref.names.indexOf(n));
  const rows: unknown[][] = [];
  for (let i = 0; i < ref.rows; i += step) {
    rows.push(
      idx.map((j) => {
        const v = ref.columns[j]![i];
        return typeof v === 'number' && Number.isNaN(v) ? null : v;
      }),
    );
  }
  return { ...inferSchema({ names, rows }, { ...opts, columns: names }), sampleSize: 0 };
}

function profile(schema: ProfileSchema, t: ColumnarTable, label: string, onProgress?: (m: string) => void): DatasetProfile {
  const builder = new ProfileBuilder(schema);
  const columns = schema.columns.map((c) => t.columns[t.names.indexOf(c.name)]!);
  // Column by column in chunks of rows: no row array (and no boxed number) per row, progress as before.
  const every = Math.max(100_000, Math.floor(t.rows / 10));
  for (let start = 0; start < t.rows; start += every) {
    const end = Math.min(t.rows, start + every);
    builder.addColumns(columns, start, end);
    onProgress?.(`profiled ${label}: ${end.toLocaleString('en-US')}/${t.rows.toLocaleString('en-US')} rows`);
  }
  return builder.finish();
}

function finiteValues(t: ColumnarTable, name: string): Float64Array {
  const col = t.columns[t.names.indexOf(name)]!;
  const src = col instanceof Float64Array ? col : Float64Array.from(col, (v) => (typeof v === 'number' ? v : NaN));
  let n = 0;
  for (let i = 0; i < src.length; i++) if (Number.isFinite(src[i]!)) n++;
  if (n === src.length) return src;
  const out = new Float64Array(n);
  let k = 0;
  for (let i = 0; i < src.length; i++) if (Number.isFinite(src[i]!)) out[k++] = src[i]!;
  return out;
}

/**
 * The offline drift report (`warden drift`): the same engine as online monitoring, but the
 * sample-based tests run on every value of both tables, so they equal SciPy on the same data.
 */
export function offlineDriftReport(reference: ColumnarTable, current: ColumnarTable, opts: OfflineOptions = {}): OfflineReport {
  const names = opts.columns ?? reference.names;
  for (const n of names) {
    if (!reference.names.includes(n)) throw new WardenError('WARDEN_BAD_REQUEST', `column ${n} is not in the reference`);
    if (!current.names.includes(n)) throw new WardenError('WARDEN_BAD_REQUEST', `column ${n} is not in the current data`);
  }
  const progress = opts.onProgress;
  progress?.(`choosing bins and categories for ${names.length} columns`);
  const schema = schemaFrom(reference, names, opts);
  if (opts.drift) checkDriftConfig(schema, opts.drift);
  const refProfile = profile(schema, reference, 'reference', progress);
  const curProfile = profile(schema, current, 'current', progress);
  progress?.('running drift tests');
  const drift = evaluateDrift(
    schema,
    { profile: refProfile, values: (i) => finiteValues(reference, schema.columns[i]!.name) },
    { profile: curProfile, values: (i) => finiteValues(current, schema.columns[i]!.name) },
    opts.drift ?? {},
  );
  const quality = evaluateQuality(schema, curProfile, opts.quality ?? {});
  const histograms = schema.columns.map((spec, i) => {
    const c = alignedCounts(spec, refProfile.columns[i]!, curProfile.columns[i]!);
    return { column: spec.name, kind: spec.kind, labels: c.labels, reference: c.ref, current: c.cur };
  });
  const report: OfflineReport = { generatedAt: new Date().toISOString(), reference: { rows: reference.rows }, current: { rows: current.rows }, schema, drift, quality, histograms };
  if (opts.embeddings || opts.multivariate) {
    if (opts.embeddings) checkEmbeddingConfig(schema, opts.embeddings);
    const refSample = sampleRows(reference, schema, 20_000);
    const curSample = sampleRows(current, schema, 20_000);
    if (opts.embeddings) {
      progress?.('running embedding drift');
      report.embeddings = embeddingDrift(schema, opts.embeddings, refSample, curSample);
    }
    if (opts.multivariate) {
      progress?.('running multivariate (PCA reconstruction) drift');
      const mv = multivariateDrift(schema, fitMultivariate(schema, refSample, opts.multivariate), curSample);
      if (mv) report.multivariate = mv;
    }
  }
  return report;
}
