import { WardenError } from '../errors.ts';
import { domainClassifierAuc, driftedComponentsShare, meanVectorDistance, mmd, type VectorSet } from './embeddings/index.ts';
import { fitReconstruction, reconstructionError, type ReconstructionModel, type ReconstructionResult } from './multivariate/index.ts';
import type { Cell, ProfileSchema } from './profile/index.ts';

/** Embedding drift settings: named vectors made of numeric columns. */
export interface EmbeddingConfig {
  /** Embedding name → the columns that make up its vector, in order. */
  [name: string]: string[];
}

export interface MultivariateConfig {
  /** Numeric feature columns to use (default: every numeric feature). */
  columns?: string[];
  /** Share of variance the PCA keeps (default 0.65, NannyML's). */
  varianceRatio?: number;
  /** Reference chunks for the leave-one-chunk-out threshold (default 10). */
  chunks?: number;
}

export interface EmbeddingDrift {
  name: string;
  dim: number;
  referenceRows: number;
  currentRows: number;
  domainClassifierAuc: number;
  domainClassifierDrift: boolean;
  mmd2: number;
  mmdPValue: number;
  driftedComponentsShare: number;
  meanCosineDistance: number;
  meanEuclideanDistance: number;
  /** AUC at or above its threshold, or MMD p-value under 0.05. */
  drift: boolean;
}

export interface MultivariateDrift extends ReconstructionResult {
  columns: string[];
  rows: number;
}

/** Stored next to the reference profile when multivariate drift is on. */
export interface MultivariateModel {
  columns: string[];
  model: ReconstructionModel;
}

function columnIndex(schema: ProfileSchema, names: string[], what: string): number[] {
  return names.map((n) => {
    const i = schema.columns.findIndex((c) => c.name === n);
    if (i < 0) throw new WardenError('WARDEN_BAD_REQUEST', `${what}: column ${n} is not monitored`);
    if (schema.columns[i]!.kind !== 'numeric') throw new WardenError('WARDEN_BAD_REQUEST', `${what}: column ${n} must be numeric`);
    return i;
  });
}

/** Rows of the sample whose chosen cells are all numbers, as a row-major matrix. */
function matrix(sample: readonly Cell[][], idx: number[], allowMissing: boolean): VectorSet {
  const rows: number[][] = [];
  for (const r of sample) {
    const v = idx.map((i) => r[i]);
    if (v.every((x) => typeof x === 'number')) rows.push(v as number[]);
    else if (allowMissing) rows.push(v.map((x) => (typeof x === 'number' ? x : NaN)));
  }
  const data = new Float64Array(rows.length * idx.length);
  rows.forEach((r, i) => data.set(r, i * idx.length));
  return { rows: rows.length, dim: idx.length, data };
}

/** Checks the embedding config against the schema (at reference registration). */
export function checkEmbeddingConfig(schema: ProfileSchema, config: EmbeddingConfig): void {
  for (const [name, cols] of Object.entries(config)) {
    if (cols.length < 2) throw new WardenError('WARDEN_BAD_REQUEST', `embedding ${name} needs at least 2 columns`);
    columnIndex(schema, cols, `embedding ${name}`);
  }
}

/** Fits the PCA reconstruction model on the reference sample (numeric features by default). */
export function fitMultivariate(schema: ProfileSchema, sample: readonly Cell[][], config: MultivariateConfig): MultivariateModel {
  const columns = config.columns ?? schema.columns.filter((c) => c.role === 'feature' && c.kind === 'numeric').map((c) => c.name);
  if (columns.length < 2) throw new WardenError('WARDEN_BAD_REQUEST', 'multivariate drift needs at least 2 numeric feature columns');
  const m = matrix(sample, columnIndex(schema, columns, 'multivariate'), true);
  const chunks = config.chunks ?? 10;
  if (m.rows < chunks * 5) throw new WardenError('WARDEN_BAD_REQUEST', `multivariate drift needs at least ${chunks * 5} reference rows in the sample`);
  return { columns, model: fitReconstruction(m, { ...(config.varianceRatio ? { varianceRatio: config.varianceRatio } : {}), chunks }) };
}

/** PCA reconstruction error of a window's sample against the reference model. */
export function multivariateDrift(schema: ProfileSchema, model: MultivariateModel, sample: readonly Cell[][]): MultivariateDrift | undefined {
  const m = matrix(sample, columnIndex(schema, model.columns, 'multivariate'), true);
  if (m.rows === 0) return undefined;
  return { ...reconstructionError(model.model, m), columns: model.columns, rows: m.rows };
}

/** Embedding drift of each configured vector between the reference and window samples. */
export function embeddingDrift(schema: ProfileSchema, config: EmbeddingConfig, ref: readonly Cell[][], cur: readonly Cell[][]): EmbeddingDrift[] {
  const out: EmbeddingDrift[] = [];
  for (const [name, cols] of Object.entries(config)) {
    const idx = columnIndex(schema, cols, `embedding ${name}`);
    const a = matrix(ref, idx, false);
    const b = matrix(cur, idx, false);
    if (a.rows < 10 || b.rows < 10) continue;
    const auc = domainClassifierAuc(a, b, { seed: 42 });
    const k = mmd(a, b, { permutations: 100, seed: 42, maxRows: 500 });
    const comp = driftedComponentsShare(a, b);
    const dist = meanVectorDistance(a, b);
    out.push({
      name,
      dim: idx.length,
      referenceRows: a.rows,
      currentRows: b.rows,
      domainClassifierAuc: auc.auc,
      domainClassifierDrift: auc.drift,
      mmd2: k.mmd2,
      mmdPValue: k.pValue,
      driftedComponentsShare: comp.share,
      meanCosineDistance: dist.cosine,
      meanEuclideanDistance: dist.euclidean,
      drift: auc.drift || k.pValue < 0.05,
    });
  }
  return out;
}
