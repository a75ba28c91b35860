/**
 * The trainer's target-leakage check. A feature that is computed from the target, or known only after it
 * (bike sharing's `casual + registered = cnt`), makes the holdout metrics perfect and the served model useless:
 * in production the feature is not there yet, or means something else. The check does not refuse the model; it
 * names the columns that explain the target on their own so the caller can leave them out.
 *
 * The rule, on the rows the metrics are computed on (the holdout, or the training rows with holdout 0):
 * - linear: a feature whose Pearson |r| with the target is ≥ 0.999 is named alone. Otherwise, when the model's
 *   r2 is ≥ 0.999, greedy forward selection (least squares fitted on the training rows, scored by R²) looks for
 *   the smallest set of up to 3 features reaching R² ≥ 0.999.
 * - logistic: a feature whose ROC AUC against the label is ≥ 0.999 (or ≤ 0.001) is named alone. Otherwise, when
 *   the model's roc_auc is ≥ 0.999, the same greedy search with logistic fits scored by ROC AUC. Accuracy adds
 *   nothing: an accuracy of 1 implies an AUC of 1 whenever both classes occur, and AUC does not depend on 0.5.
 * When the model crosses its bar but no set of up to 3 does, the warning names no column.
 */
import { fitLinear } from './linear.ts';
import { fitLogistic } from './logistic.ts';
import { rocAuc } from './metrics.ts';
import type { TrainerKind } from './types.ts';

/** What counts as "predicts the target almost exactly". */
export const LEAKAGE_THRESHOLD = 0.999;
/** Largest feature set the search names: beyond a few columns "they reconstruct the target" stops being a diagnosis. */
export const LEAKAGE_MAX_COLUMNS = 3;

/** A warning about the trained model, recorded in its metadata and printed by `warden train`. */
export interface TrainWarning {
  code: 'target_leakage';
  /** The suspected feature columns, in feature order; empty when no small set explains the target alone. */
  columns: string[];
  /** How `score` was measured: |r| of each named feature, R² or ROC AUC of the named set (or of the model). */
  metric: 'abs_r' | 'r2' | 'roc_auc';
  score: number;
  message: string;
}

/** Standardized feature matrices of the fitted and the evaluated rows, with what the check needs about the fit. */
export interface LeakageInput {
  kind: TrainerKind;
  target: string;
  featureNames: readonly string[];
  /** Training rows, standardized with the training mean and scale: row-major [nFit, k]. */
  zFit: Float64Array;
  yFit: Float64Array;
  /** Rows the metrics were computed on, standardized the same way. */
  zEval: Float64Array;
  yEval: Float64Array;
  /** Columns constant on the training rows: their standardized values are all 0, so they cannot explain anything. */
  constant: readonly boolean[];
  l2: number;
  /** Logistic: label = target > threshold. */
  threshold?: number;
  metrics: Record<string, number>;
  /** Whether the metrics are on holdout rows or, with holdout 0, on the training rows. */
  evaluatedOn: 'holdout' | 'training';
  /** How the features were chosen, for the suggested command line. */
  features?: readonly string[];
  exclude?: readonly string[];
}

/** Pearson correlation of column j of a row-major [n, k] matrix with y; NaN when either is constant. */
export function pearson(x: Float64Array, k: number, j: number, y: Float64Array): number {
  const n = y.length;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i * k + j] as number;
    my += y[i] as number;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (x[i * k + j] as number) - mx;
    const dy = (y[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : Number.NaN;
}

/** Columns `cols` of a row-major [n, k] matrix, as a row-major [n, cols.length] matrix. */
function columns(x: Float64Array, k: number, cols: readonly number[]): Float64Array {
  const n = x.length / k;
  const s = cols.length;
  const out = new Float64Array(n * s);
  for (let i = 0; i < n; i++) for (let c = 0; c < s; c++) out[i * s + c] = x[i * k + (cols[c] as number)] as number;
  return out;
}

/** Linear score of standardized rows under a fit in standardized units. */
function scores(z: Float64Array, s: number, weights: Float64Array, bias: number): Float64Array {
  const n = z.length / s;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let v = bias;
    for (let c = 0; c < s; c++) v += (weights[c] as number) * (z[i * s + c] as number);
    out[i] = v;
  }
  return out;
}

function r2(y: Float64Array, pred: Float64Array): number {
  let mean = 0;
  for (const v of y) mean += v;
  mean /= y.length;
  let residual = 0;
  let total = 0;
  for (let i = 0; i < y.length; i++) {
    residual += ((y[i] as number) - (pred[i] as number)) ** 2;
    total += ((y[i] as number) - mean) ** 2;
  }
  return total > 0 ? 1 - residual / total : Number.NaN;
}

/** ROC AUC in float64: rounding scores to float32 would create ties that the scores do not have. */
function auc(labels: Float64Array, score: Float64Array): number {
  return rocAuc(labels, score) ?? Number.NaN;
}

/**
 * How well the features `cols` alone explain the target on the evaluated rows: holdout R² of a least-squares
 * fit (linear) or holdout ROC AUC of a logistic fit (logistic), both fitted on the training rows with the
 * trainer's own penalty. A fit that fails (a singular system with l2 = 0) scores −Infinity.
 */
export function subsetScore(input: LeakageInput, cols: readonly number[]): number {
  const k = input.featureNames.length;
  const s = cols.length;
  const zFit = columns(input.zFit, k, cols);
  const zEval = columns(input.zEval, k, cols);
  try {
    if (input.kind === 'linear') {
      const fit = fitLinear(zFit, input.yFit, input.yFit.length, s, input.l2);
      return r2(input.yEval, scores(zEval, s, fit.weights, fit.bias));
    }
    const threshold = input.threshold as number;
    const fit = fitLogistic(zFit, input.yFit.map((v) => (v > threshold ? 1 : 0)), input.yFit.length, s, input.l2);
    return auc(input.yEval.map((v) => (v > threshold ? 1 : 0)), scores(zEval, s, fit.weights, fit.bias));
  } catch {
    return Number.NEGATIVE_INFINITY;
  }
}

/** Greedy forward selection: the first set of up to LEAKAGE_MAX_COLUMNS features whose score reaches the threshold. */
function greedy(input: LeakageInput): { cols: number[]; score: number } | undefined {
  const candidates = input.featureNames.map((_, j) => j).filter((j) => !input.constant[j]);
  const chosen: number[] = [];
  for (let size = 1; size <= Math.min(LEAKAGE_MAX_COLUMNS, candidates.length); size++) {
    let best: { j: number; score: number } | undefined;
    for (const j of candidates) {
      if (chosen.includes(j)) continue;
      const score = subsetScore(input, [...chosen, j]);
      if (!best || score > best.score) best = { j, score };
    }
    if (!best) return undefined;
    chosen.push(best.j);
    if (best.score >= LEAKAGE_THRESHOLD) return { cols: chosen.sort((a, b) => a - b), score: best.score };
  }
  return undefined;
}

/** Features that alone predict the target: |r| (linear) or max(AUC, 1 − AUC) (logistic) at or above the threshold. */
function singleFeatures(input: LeakageInput): { cols: number[]; score: number } | undefined {
  const k = input.featureNames.length;
  const labels = input.kind === 'logistic' ? input.yEval.map((v) => (v > (input.threshold as number) ? 1 : 0)) : undefined;
  const cols: number[] = [];
  let score = 0;
  for (let j = 0; j < k; j++) {
    if (input.constant[j]) continue;
    let s: number;
    if (labels) {
      const a = auc(labels, columns(input.zEval, k, [j]));
      s = Math.max(a, 1 - a);
    } else {
      s = Math.abs(pearson(input.zEval, k, j, input.yEval));
    }
    if (s >= LEAKAGE_THRESHOLD) {
      cols.push(j);
      score = Math.max(score, s);
    }
  }
  return cols.length ? { cols, score } : undefined;
}

const fmt = (v: number) => v.toFixed(3);

function joinNames(names: readonly string[]): string {
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/** The command-line change that leaves `suspected` out, given how the features were chosen. */
function suggestion(input: LeakageInput, suspected: readonly string[]): string {
  if (input.features) {
    const kept = input.features.filter((f) => !suspected.includes(f));
    return kept.length ? `--features ${kept.join(',')}` : 'other --features';
  }
  const exclude = [...(input.exclude ?? [])];
  for (const s of suspected) if (!exclude.includes(s)) exclude.push(s);
  return `--exclude ${exclude.join(',')}`;
}

/** Runs the documented rule; undefined when nothing looks leaked. */
export function detectLeakage(input: LeakageInput): TrainWarning | undefined {
  const label = input.kind === 'logistic' ? `${input.target} > ${input.threshold}` : input.target;
  const rows = `the ${input.evaluatedOn} rows`;
  const modelMetric = input.kind === 'linear' ? 'r2' : 'roc_auc';
  const modelScore = input.metrics[modelMetric];
  const single = singleFeatures(input);
  let found = single;
  if (!found) {
    if (modelScore === undefined || !(modelScore >= LEAKAGE_THRESHOLD)) return undefined;
    found = greedy(input);
  }
  const names = found ? found.cols.map((j) => input.featureNames[j] as string) : [];
  const several = names.length > 1;
  let what: string;
  let metric: TrainWarning['metric'];
  let score: number;
  if (found && single) {
    metric = input.kind === 'linear' ? 'abs_r' : 'roc_auc';
    score = found.score;
    const measure = `${metric === 'abs_r' ? '|r|' : 'roc_auc'} ${several ? '≥' : '='} ${fmt(several ? LEAKAGE_THRESHOLD : score)}`;
    what = `${joinNames(names)} ${several ? 'each predict' : 'predicts'} ${label} almost exactly on ${rows} (${measure})`;
  } else if (found) {
    metric = modelMetric;
    score = found.score;
    what = `${joinNames(names)} ${input.kind === 'linear' ? 'reconstruct' : 'separate'} ${label} on ${rows} (${metric} = ${fmt(score)} from ${several ? 'those columns' : 'that column'} alone)`;
  } else {
    metric = modelMetric;
    score = modelScore as number;
    what = `the model scores ${metric} = ${fmt(score)} on ${rows}, though no set of up to ${LEAKAGE_MAX_COLUMNS} features does alone`;
  }
  const fix = names.length
    ? `If ${several ? 'they are' : 'it is'} not known before ${input.target} is, rerun with ${suggestion(input, names)}.`
    : `Check for features computed from ${input.target} or known only after it.`;
  return {
    code: 'target_leakage',
    columns: names,
    metric,
    score,
    message: `possible target leakage: ${what}. A feature derived from the target makes offline metrics perfect and live predictions wrong. ${fix}`,
  };
}
