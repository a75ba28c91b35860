import { checkFinite, sameLength, Sum } from './inputs.ts';

/** Options for fitDle. */
export interface DleOptions {
  /** Ridge penalty on the standardized design (default 1e-3); the intercept is not penalized. */
  l2?: number;
  /** Add the square of every standardized input to the design (default true), so error can grow away from the mean. */
  quadratic?: boolean;
}

/** One ridge fit on the standardized design: prediction = intercept + Σ weights_j · d_j. */
export interface RidgeFit {
  intercept: number;
  weights: number[];
}

/**
 * A fitted Direct Loss Estimation model: how to standardize the k features plus the prediction, how to build
 * and standardize the design from them, and two ridge fits, one for |error| and one for error². Plain JSON.
 */
export interface DleModel {
  kind: 'dle-ridge';
  k: number;
  quadratic: boolean;
  l2: number;
  inputMean: number[];
  inputScale: number[];
  designMean: number[];
  designScale: number[];
  absoluteError: RidgeFit;
  squaredError: RidgeFit;
}

/** Estimated regression performance of a window without labels. */
export interface DleEstimate {
  mae: number;
  rmse: number;
}

/**
 * Direct Loss Estimation (NannyML docs, "Direct Loss Estimation"): on labelled reference rows, fit a model that
 * predicts the monitored model's loss, |label − prediction| for MAE and (label − prediction)² for RMSE, from the
 * features and the prediction; on an unlabelled window the mean predicted loss estimates the window's MAE, and
 * the square root of the mean predicted squared loss its RMSE. NannyML fits LightGBM for the loss model; here it
 * is ridge regression on the standardized inputs and (by default) their squares, which is deterministic, needs no
 * dependency and serializes to a few numbers, but only follows error that varies smoothly (roughly linearly or
 * quadratically) with each input: interactions and thresholds in the error are averaged away.
 * The same assumption as NannyML's holds: P(label | x) is unchanged between reference and window.
 * `features` is row-major [n, k]; rows must be finite.
 */
export function fitDle(
  features: ArrayLike<number>,
  k: number,
  predictions: ArrayLike<number>,
  labels: ArrayLike<number>,
  opts: DleOptions = {},
): DleModel {
  const what = 'fitDle';
  const n = sameLength(what, predictions, labels, 'predictions', 'labels');
  checkShape(what, features, k, n);
  if (n < 2) throw new RangeError(`${what}: needs at least two labelled rows, got ${n}`);
  checkFinite(what, 'features', features);
  checkFinite(what, 'predictions', predictions);
  checkFinite(what, 'labels', labels);
  const l2 = opts.l2 ?? 1e-3;
  if (!(l2 >= 0 && Number.isFinite(l2))) throw new RangeError(`${what}: l2 must be a finite number ≥ 0, got ${l2}`);
  const quadratic = opts.quadratic ?? true;

  const inputs = inputMatrix(features, k, predictions);
  const inputStats = columnStats(inputs, n, k + 1);
  const shell = { kind: 'dle-ridge' as const, k, quadratic, l2, inputMean: inputStats.mean, inputScale: inputStats.scale };
  const raw = designMatrix(shell, inputs, n);
  const m = raw.length / n;
  const designStats = columnStats(raw, n, m);
  const design = standardize(raw, n, m, designStats.mean, designStats.scale);

  // Normal equations of min (1/n)‖r − r̄ − Dw‖² + l2‖w‖² on a centred design: the intercept is mean(r).
  const gram = new Float64Array(m * m);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < m; a++) {
      const da = design[i * m + a] as number;
      for (let b = 0; b <= a; b++) gram[a * m + b] = (gram[a * m + b] as number) + da * (design[i * m + b] as number);
    }
  }
  for (let a = 0; a < m; a++) {
    for (let b = 0; b <= a; b++) {
      const v = (gram[a * m + b] as number) / n + (a === b ? l2 : 0);
      gram[a * m + b] = v;
      gram[b * m + a] = v;
    }
  }
  const factor = cholesky(gram, m);
  const fit = (loss: (e: number) => number): RidgeFit => {
    const target = new Float64Array(n);
    const total = new Sum();
    for (let i = 0; i < n; i++) {
      target[i] = loss((labels[i] as number) - (predictions[i] as number));
      total.add(target[i] as number);
    }
    const intercept = total.value / n;
    const rhs = new Float64Array(m);
    for (let i = 0; i < n; i++) {
      const r = (target[i] as number) - intercept;
      for (let a = 0; a < m; a++) rhs[a] = (rhs[a] as number) + (design[i * m + a] as number) * r;
    }
    for (let a = 0; a < m; a++) rhs[a] = (rhs[a] as number) / n;
    return { intercept, weights: Array.from(choleskySolve(factor, rhs, m)) };
  };

  return {
    ...shell,
    designMean: designStats.mean,
    designScale: designStats.scale,
    absoluteError: fit(Math.abs),
    squaredError: fit((e) => e * e),
  };
}

/**
 * Estimated MAE and RMSE of a window: the DLE model's mean predicted |error|, and the square root of its mean
 * predicted error². Each row's predicted loss is floored at 0 (a linear model can dip below, a loss cannot).
 * Empty input gives NaN.
 */
export function dleEstimate(
  model: DleModel,
  features: ArrayLike<number>,
  k: number,
  predictions: ArrayLike<number>,
): DleEstimate {
  const what = 'dleEstimate';
  if (k !== model.k) throw new RangeError(`${what}: the model was fitted on ${model.k} features, got k = ${k}`);
  const n = predictions.length;
  checkShape(what, features, k, n);
  checkFinite(what, 'features', features);
  checkFinite(what, 'predictions', predictions);
  const raw = designMatrix(model, inputMatrix(features, k, predictions), n);
  const m = model.designMean.length;
  if (raw.length !== n * m) throw new RangeError(`${what}: the model's design has ${m} columns, expected ${raw.length / n}`);
  const design = standardize(raw, n, m, model.designMean, model.designScale);
  const absolute = new Sum();
  const squared = new Sum();
  for (let i = 0; i < n; i++) {
    absolute.add(Math.max(0, predictRidge(model.absoluteError, design, i, m)));
    squared.add(Math.max(0, predictRidge(model.squaredError, design, i, m)));
  }
  return { mae: absolute.value / n, rmse: Math.sqrt(squared.value / n) };
}

function checkShape(what: string, features: ArrayLike<number>, k: number, n: number): void {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`${what}: k must be a whole number ≥ 0, got ${k}`);
  if (features.length !== n * k) {
    throw new RangeError(`${what}: features has ${features.length} values, expected ${n} rows × ${k} = ${n * k}`);
  }
}

/** Row-major [n, k + 1]: the features with the prediction appended as the last input. */
function inputMatrix(features: ArrayLike<number>, k: number, predictions: ArrayLike<number>): Float64Array {
  const n = predictions.length;
  const out = new Float64Array(n * (k + 1));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) out[i * (k + 1) + j] = features[i * k + j] as number;
    out[i * (k + 1) + k] = predictions[i] as number;
  }
  return out;
}

/** Standardized inputs z, then z² when quadratic; row-major [n, m] before the design's own standardization. */
function designMatrix(
  model: Pick<DleModel, 'k' | 'quadratic' | 'inputMean' | 'inputScale'>,
  inputs: Float64Array,
  n: number,
): Float64Array {
  const p = model.k + 1;
  const m = model.quadratic ? 2 * p : p;
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) {
      const z = ((inputs[i * p + j] as number) - (model.inputMean[j] as number)) / (model.inputScale[j] as number);
      out[i * m + j] = z;
      if (model.quadratic) out[i * m + p + j] = z * z;
    }
  }
  return out;
}

/** Mean and population standard deviation per column; a constant column gets scale 1 (its values become 0). */
function columnStats(x: Float64Array, n: number, m: number): { mean: number[]; scale: number[] } {
  const mean: number[] = [];
  const scale: number[] = [];
  for (let j = 0; j < m; j++) {
    const sum = new Sum();
    for (let i = 0; i < n; i++) sum.add(x[i * m + j] as number);
    const mu = sum.value / n;
    const squares = new Sum();
    for (let i = 0; i < n; i++) squares.add(((x[i * m + j] as number) - mu) ** 2);
    const sd = Math.sqrt(squares.value / n);
    mean.push(mu);
    scale.push(sd > 0 ? sd : 1);
  }
  return { mean, scale };
}

function standardize(x: Float64Array, n: number, m: number, mean: number[], scale: number[]): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) out[i * m + j] = ((x[i * m + j] as number) - (mean[j] as number)) / (scale[j] as number);
  }
  return out;
}

function predictRidge(fit: RidgeFit, design: Float64Array, i: number, m: number): number {
  let s = fit.intercept;
  for (let j = 0; j < m; j++) s += (fit.weights[j] as number) * (design[i * m + j] as number);
  return s;
}

/** Lower-triangular L with A = L·Lᵀ for a symmetric positive definite m×m matrix (row-major). */
function cholesky(a: Float64Array, m: number): Float64Array {
  const l = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * m + j] as number;
      for (let p = 0; p < j; p++) s -= (l[i * m + p] as number) * (l[j * m + p] as number);
      if (i === j) {
        if (!(s > 0)) throw new RangeError('fitDle: the design is singular; use l2 > 0');
        l[i * m + i] = Math.sqrt(s);
      } else {
        l[i * m + j] = s / (l[j * m + j] as number);
      }
    }
  }
  return l;
}

function choleskySolve(l: Float64Array, b: Float64Array, m: number): Float64Array {
  const y = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let s = b[i] as number;
    for (let p = 0; p < i; p++) s -= (l[i * m + p] as number) * (y[p] as number);
    y[i] = s / (l[i * m + i] as number);
  }
  const x = new Float64Array(m);
  for (let i = m - 1; i >= 0; i--) {
    let s = y[i] as number;
    for (let p = i + 1; p < m; p++) s -= (l[p * m + i] as number) * (x[p] as number);
    x[i] = s / (l[i * m + i] as number);
  }
  return x;
}
