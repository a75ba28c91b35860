/**
 * Drift as separability: a classifier is trained to tell current vectors from reference vectors. If it cannot do
 * better than chance (out-of-fold ROC AUC ≈ 0.5) the two sets look alike; the further above 0.5, the more they
 * differ. This is Evidently's "model" embeddings drift method (threshold 0.55), made steadier by scoring every row
 * out of fold with stratified k-fold cross-validation instead of one 50/50 split.
 */
import { mannWhitneyAuc } from './auc.ts';
import { fitLogistic } from './logistic.ts';
import { mulberry32, sampleIndices, shuffleInPlace } from './random.ts';
import { checkPair, selectRows, type VectorSet } from './vector-set.ts';

/** Options for domainClassifierAuc. */
export interface DomainClassifierOptions {
  /** Cross-validation folds, stratified by side (default 5). */
  folds?: number;
  /** Seed for subsampling and fold assignment (default 42). */
  seed?: number;
  /** L2 penalty on standardised weights, per row of the mean log-loss (default 1e-2). */
  l2?: number;
  /** Drift when AUC ≥ threshold (default 0.55, Evidently's default for its "model" method). */
  threshold?: number;
  /** Each side is subsampled to at most this many rows (default 5,000). */
  maxRows?: number;
}

/** Out-of-fold ROC AUC of the reference-vs-current classifier and the drift verdict. */
export interface DomainClassifierResult {
  /** Pooled out-of-fold ROC AUC with current as the positive class; 0.5 is chance. */
  auc: number;
  /** auc ≥ threshold. */
  drift: boolean;
  threshold: number;
}

/**
 * Trains an L2 logistic regression (features standardised on each training fold) to separate `cur` from `ref`
 * under stratified k-fold cross-validation and returns the ROC AUC of the pooled out-of-fold margins (ties at
 * midranks, i.e. the Mann–Whitney U statistic). Deterministic for a given seed.
 */
export function domainClassifierAuc(ref: VectorSet, cur: VectorSet, opts: DomainClassifierOptions = {}): DomainClassifierResult {
  const folds = opts.folds ?? 5;
  const seed = opts.seed ?? 42;
  const l2 = opts.l2 ?? 1e-2;
  const threshold = opts.threshold ?? 0.55;
  const maxRows = opts.maxRows ?? 5000;
  if (!Number.isInteger(folds) || folds < 2) throw new RangeError(`folds must be an integer ≥ 2, got ${folds}`);
  if (!(l2 > 0)) throw new RangeError(`l2 must be > 0, got ${l2}`);
  if (!Number.isInteger(maxRows) || maxRows < folds) throw new RangeError(`maxRows must be an integer ≥ folds, got ${maxRows}`);
  checkPair(ref, cur, folds);

  const random = mulberry32(seed);
  const a = selectRows(ref, sampleIndices(ref.rows, maxRows, random));
  const b = selectRows(cur, sampleIndices(cur.rows, maxRows, random));
  const d = ref.dim;
  const n = a.rows + b.rows;
  const x = new Float64Array(n * d);
  x.set(a.data, 0);
  x.set(b.data, a.rows * d);
  const y = new Float64Array(n);
  y.fill(1, a.rows);

  // Stratified folds: shuffle each side, then deal its rows round-robin so every fold gets ⌊n/k⌋ or ⌈n/k⌉ of each.
  const fold = new Int32Array(n);
  for (const [start, count] of [
    [0, a.rows],
    [a.rows, b.rows],
  ] as const) {
    const order = shuffleInPlace(Int32Array.from({ length: count }, (_, i) => start + i), random);
    for (let r = 0; r < count; r++) fold[order[r] as number] = r % folds;
  }

  const margins = new Float64Array(n);
  for (let k = 0; k < folds; k++) {
    const train: number[] = [];
    const test: number[] = [];
    for (let i = 0; i < n; i++) (fold[i] === k ? test : train).push(i);
    const { mean, scale } = standardisation(x, d, train);
    const xt = new Float64Array(train.length * d);
    const yt = new Float64Array(train.length);
    train.forEach((i, r) => {
      for (let j = 0; j < d; j++) xt[r * d + j] = ((x[i * d + j] as number) - (mean[j] as number)) / (scale[j] as number);
      yt[r] = y[i] as number;
    });
    const fit = fitLogistic(xt, yt, train.length, d, { l2 });
    for (const i of test) {
      let m = fit.bias;
      for (let j = 0; j < d; j++) m += (((x[i * d + j] as number) - (mean[j] as number)) / (scale[j] as number)) * (fit.weights[j] as number);
      margins[i] = m;
    }
  }

  const auc = mannWhitneyAuc(margins.subarray(a.rows), margins.subarray(0, a.rows));
  return { auc, drift: auc >= threshold, threshold };
}

/** Column means and population standard deviations over `rows`; a constant column gets scale 1. */
function standardisation(x: Float64Array, d: number, rows: number[]): { mean: Float64Array; scale: Float64Array } {
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  for (const i of rows) for (let j = 0; j < d; j++) mean[j] = (mean[j] as number) + (x[i * d + j] as number);
  for (let j = 0; j < d; j++) mean[j] = (mean[j] as number) / rows.length;
  for (const i of rows) {
    for (let j = 0; j < d; j++) scale[j] = (scale[j] as number) + ((x[i * d + j] as number) - (mean[j] as number)) ** 2;
  }
  for (let j = 0; j < d; j++) {
    const sd = Math.sqrt((scale[j] as number) / rows.length);
    // A (numerically) constant column carries no signal; scale 1 keeps it at ~0 instead of amplifying rounding.
    scale[j] = sd > 1e-12 * Math.max(1, Math.abs(mean[j] as number)) ? sd : 1;
  }
  return { mean, scale };
}
