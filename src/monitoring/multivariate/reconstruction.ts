/**
 * Multivariate drift by PCA reconstruction error, after NannyML's "data reconstruction drift"
 * (https://nannyml.readthedocs.io/en/stable/how_it_works/multivariate_drift.html). PCA fitted on the standardised
 * reference learns the directions the features co-vary along; a row is compressed onto the kept components and
 * decompressed, and the euclidean distance it moved is its reconstruction error. When relationships between
 * features change (even with every marginal distribution intact), rows leave the learned subspace and the mean
 * error of a chunk rises.
 */
import { symmetricEigen } from './eigen.ts';

/** A table of numeric features, row-major; NaN marks a missing value. */
export interface FeatureMatrix {
  rows: number;
  dim: number;
  data: Float64Array;
}

/** Options for fitReconstruction. */
export interface ReconstructionOptions {
  /**
   * Keep the fewest leading components whose explained variance ratio sums to more than this (default 0.65,
   * NannyML's default; the same rule as sklearn's PCA(n_components=0.65)). In (0, 1]; 1 keeps every component.
   */
  varianceRatio?: number;
  /** Reference chunks for the leave-chunk-out thresholds (default 10, contiguous, in row order). */
  chunks?: number;
}

/** Everything needed to score a chunk; plain numbers and arrays, so JSON.stringify / JSON.parse round-trips it. */
export interface ReconstructionModel {
  dim: number;
  varianceRatio: number;
  /** Reference column means over non-missing values; also the value missing entries are imputed with. */
  means: number[];
  /** Population standard deviations of the imputed reference columns (1 for a constant column). */
  stds: number[];
  /** Kept principal axes of the standardised reference, in descending variance; each has `dim` entries. */
  components: number[][];
  /** Variance along each kept axis (eigenvalues of the n−1 covariance of the standardised reference). */
  explainedVariance: number[];
  /** explainedVariance / total variance, per kept axis. */
  explainedVarianceRatio: number[];
  /** Mean error of reference chunk i under a model fitted on every other chunk. */
  referenceChunkErrors: number[];
  /** mean ± 3·std (n−1) of referenceChunkErrors; the lower bound is clipped at 0. */
  thresholds: { lower: number; upper: number };
}

/** A chunk's mean reconstruction error and whether it left the reference band. */
export interface ReconstructionResult {
  /** Mean over the chunk's rows of ‖z − reconstruction(z)‖₂, z the standardised, imputed row. */
  error: number;
  lower: number;
  upper: number;
  /** error > upper or error < lower. */
  alert: boolean;
}

/** Standardisation and PCA fitted to one set of rows. */
interface Pca {
  means: Float64Array;
  stds: Float64Array;
  /** k × dim row-major: row c is component c. */
  components: Float64Array;
  k: number;
  explainedVariance: Float64Array;
  explainedVarianceRatio: Float64Array;
}

/**
 * Fits standardisation + PCA on all of `ref`, and learns the alert band without letting a chunk into its own
 * baseline: the reference is cut into `chunks` contiguous chunks, and chunk i's mean error is measured under a
 * model (standardisation and PCA) fitted on the other chunks only. In-sample errors would be biased low — PCA fits
 * the very rows it is scored on — and the band too narrow, while a monitored chunk is always out of sample.
 */
export function fitReconstruction(ref: FeatureMatrix, opts: ReconstructionOptions = {}): ReconstructionModel {
  const varianceRatio = opts.varianceRatio ?? 0.65;
  const chunks = opts.chunks ?? 10;
  if (!(varianceRatio > 0 && varianceRatio <= 1)) throw new RangeError(`varianceRatio must be in (0, 1], got ${varianceRatio}`);
  if (!Number.isInteger(chunks) || chunks < 2) throw new RangeError(`chunks must be an integer ≥ 2, got ${chunks}`);
  checkMatrix(ref, 'reference');
  const { rows, dim } = ref;
  if (rows < 2 * chunks) throw new RangeError(`reference needs at least 2 rows per chunk (${2 * chunks}), got ${rows}`);

  const bounds = Array.from({ length: chunks + 1 }, (_, i) => Math.floor((i * rows) / chunks));
  const referenceChunkErrors: number[] = [];
  for (let i = 0; i < chunks; i++) {
    const start = bounds[i] as number;
    const end = bounds[i + 1] as number;
    const rest = new Float64Array((rows - (end - start)) * dim);
    rest.set(ref.data.subarray(0, start * dim), 0);
    rest.set(ref.data.subarray(end * dim), start * dim);
    const pca = fitPca(rest, rows - (end - start), dim, varianceRatio);
    referenceChunkErrors.push(meanError(pca, ref.data.subarray(start * dim, end * dim), end - start, dim));
  }
  const mean = referenceChunkErrors.reduce((s, e) => s + e, 0) / chunks;
  const sd = Math.sqrt(referenceChunkErrors.reduce((s, e) => s + (e - mean) ** 2, 0) / (chunks - 1));

  const pca = fitPca(ref.data, rows, dim, varianceRatio);
  return {
    dim,
    varianceRatio,
    means: Array.from(pca.means),
    stds: Array.from(pca.stds),
    components: Array.from({ length: pca.k }, (_, c) => Array.from(pca.components.subarray(c * dim, (c + 1) * dim))),
    explainedVariance: Array.from(pca.explainedVariance),
    explainedVarianceRatio: Array.from(pca.explainedVarianceRatio),
    referenceChunkErrors,
    thresholds: { lower: Math.max(0, mean - 3 * sd), upper: mean + 3 * sd },
  };
}

/** The chunk's mean reconstruction error under `model` (missing values imputed with the reference means). */
export function reconstructionError(model: ReconstructionModel, chunk: FeatureMatrix): ReconstructionResult {
  checkMatrix(chunk, 'chunk');
  if (chunk.dim !== model.dim) throw new RangeError(`chunk has dim ${chunk.dim} but the model was fitted on dim ${model.dim}`);
  if (chunk.rows < 1) throw new RangeError('chunk has no rows');
  const k = model.components.length;
  const pca: Pca = {
    means: Float64Array.from(model.means),
    stds: Float64Array.from(model.stds),
    components: Float64Array.from(model.components.flat()),
    k,
    explainedVariance: Float64Array.from(model.explainedVariance),
    explainedVarianceRatio: Float64Array.from(model.explainedVarianceRatio),
  };
  const error = meanError(pca, chunk.data, chunk.rows, chunk.dim);
  const { lower, upper } = model.thresholds;
  return { error, lower, upper, alert: error > upper || error < lower };
}

/** Mean-imputes, standardises and runs PCA on `n` rows of `data`, keeping components per `varianceRatio`. */
function fitPca(data: Float64Array, n: number, dim: number, varianceRatio: number): Pca {
  const means = new Float64Array(dim);
  const present = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < dim; j++) {
      const x = data[r * dim + j] as number;
      if (Number.isNaN(x)) continue;
      means[j] = (means[j] as number) + x;
      present[j] = (present[j] as number) + 1;
    }
  }
  for (let j = 0; j < dim; j++) {
    if (present[j] === 0) throw new RangeError(`reference column ${j} has no non-missing values`);
    means[j] = (means[j] as number) / (present[j] as number);
  }

  // Standard deviation of the imputed column (imputed entries add 0 to the sum of squares, n to the count),
  // as sklearn's SimpleImputer(strategy='mean') followed by StandardScaler gives.
  const stds = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < dim; j++) {
      const x = data[r * dim + j] as number;
      if (!Number.isNaN(x)) stds[j] = (stds[j] as number) + (x - (means[j] as number)) ** 2;
    }
  }
  for (let j = 0; j < dim; j++) {
    const sd = Math.sqrt((stds[j] as number) / n);
    // StandardScaler's rule for a constant column: scale 1, so its standardised values stay 0.
    stds[j] = sd > 1e-12 * Math.max(1, Math.abs(means[j] as number)) ? sd : 1;
  }

  const z = new Float64Array(n * dim);
  standardise(data, n, dim, means, stds, z);
  const zMean = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let j = 0; j < dim; j++) zMean[j] = (zMean[j] as number) + (z[r * dim + j] as number);
  for (let j = 0; j < dim; j++) zMean[j] = (zMean[j] as number) / n;
  const cov = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < dim; j++) centred[j] = (z[r * dim + j] as number) - (zMean[j] as number);
    for (let a = 0; a < dim; a++) {
      const ca = centred[a] as number;
      if (ca === 0) continue;
      for (let b = a; b < dim; b++) cov[a * dim + b] = (cov[a * dim + b] as number) + ca * (centred[b] as number);
    }
  }
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      const c = (cov[a * dim + b] as number) / (n - 1);
      cov[a * dim + b] = c;
      cov[b * dim + a] = c;
    }
  }

  const { values, vectors } = symmetricEigen(cov, dim);
  // Rounding can leave the smallest eigenvalues a hair below zero; variance is never negative.
  for (let j = 0; j < dim; j++) values[j] = Math.max(0, values[j] as number);
  const total = values.reduce((s, x) => s + x, 0);
  let k = dim;
  if (total > 0 && varianceRatio < 1) {
    let cumulative = 0;
    for (let j = 0; j < dim; j++) {
      cumulative += (values[j] as number) / total;
      if (cumulative > varianceRatio) {
        k = j + 1;
        break;
      }
    }
  }
  const components = new Float64Array(k * dim);
  for (let c = 0; c < k; c++) for (let j = 0; j < dim; j++) components[c * dim + j] = vectors[j * dim + c] as number;
  const explainedVariance = values.slice(0, k);
  const explainedVarianceRatio = explainedVariance.map((x) => (total > 0 ? x / total : 0));
  return { means, stds, components, k, explainedVariance, explainedVarianceRatio };
}

/** Writes (x − mean) / std into `out`, with missing values imputed by the mean (so standardised to 0). */
function standardise(data: Float64Array, n: number, dim: number, means: Float64Array, stds: Float64Array, out: Float64Array): void {
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < dim; j++) {
      const x = data[r * dim + j] as number;
      out[r * dim + j] = Number.isNaN(x) ? 0 : (x - (means[j] as number)) / (stds[j] as number);
    }
  }
}

/** Mean over `n` rows of the euclidean distance between each standardised row z and its reconstruction WᵀWz. */
function meanError(pca: Pca, data: Float64Array, n: number, dim: number): number {
  const { k, components } = pca;
  const z = new Float64Array(dim);
  const scores = new Float64Array(k);
  let sum = 0;
  for (let r = 0; r < n; r++) {
    standardise(data.subarray(r * dim, (r + 1) * dim), 1, dim, pca.means, pca.stds, z);
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += (components[c * dim + j] as number) * (z[j] as number);
      scores[c] = s;
    }
    let sq = 0;
    for (let j = 0; j < dim; j++) {
      let rec = 0;
      for (let c = 0; c < k; c++) rec += (scores[c] as number) * (components[c * dim + j] as number);
      sq += ((z[j] as number) - rec) ** 2;
    }
    sum += Math.sqrt(sq);
  }
  return sum / n;
}

function checkMatrix(m: FeatureMatrix, name: string): void {
  if (!Number.isInteger(m.rows) || !Number.isInteger(m.dim) || m.dim < 1 || m.rows < 0) {
    throw new RangeError(`${name}: rows and dim must be integers, dim ≥ 1 (got rows=${m.rows}, dim=${m.dim})`);
  }
  if (m.data.length !== m.rows * m.dim) throw new RangeError(`${name}: data has ${m.data.length} values, expected ${m.rows * m.dim}`);
  for (let i = 0; i < m.data.length; i++) {
    const x = m.data[i] as number;
    if (!Number.isNaN(x) && !Number.isFinite(x)) throw new RangeError(`${name}: value ${i} is infinite (NaN marks missing)`);
  }
}
