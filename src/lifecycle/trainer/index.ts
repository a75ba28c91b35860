/**
 * The built-in trainer: fits a linear or logistic model, or gradient-boosted trees (gbt, gbt-classifier), on a
 * numeric CSV and writes it as a small ONNX graph that the onnx runtime serves like any other model: MatMul + Add
 * (then Sigmoid for logistic), or one TreeEnsembleRegressor (then Sigmoid for gbt-classifier). For the linear kinds
 * features are standardized while fitting so the solve is well conditioned, and the standardization is folded back
 * into the weights so the graph takes raw feature values; trees split on raw values. The ONNX file carries its own
 * feature specs, holdout metrics, parameters and the sha256 of the training CSV as `warden.*` metadata_props, which
 * the registry reads with `readOnnxMetadataProps`.
 */
import { fileURLToPath } from 'node:url';
import { loadCsv, selectDataset } from './csv-dataset.ts';
import { TrainerError } from './errors.ts';
import { columnStats, standardize } from './linalg.ts';
import { ensembleScorer, fitGradientBoosting, GBT_DEFAULTS, type GbtParams, type GradientBoostedTrees } from './gbt.ts';
import { detectLeakage } from './leakage.ts';
import { fitLinear, type StandardizedFit } from './linear.ts';
import { fitLogistic } from './logistic.ts';
import { classificationMetrics, regressionMetrics } from './metrics.ts';
import { writeOnnx, writeTreeEnsembleOnnx } from './onnx-writer.ts';
import { holdoutSplit } from './split.ts';
import type { FeatureSpec, TrainerKind, TrainOptions, TrainResult } from './types.ts';

export type { FeatureSpec, TrainerKind, TrainOptions, TrainResult } from './types.ts';
export { GBT_DEFAULTS, type GbtParams, type GradientBoostedTrees, type RegressionTree } from './gbt.ts';
export { LEAKAGE_MAX_COLUMNS, LEAKAGE_THRESHOLD, type TrainWarning } from './leakage.ts';
export { TrainerError, type TrainerErrorCode } from './errors.ts';
export { readOnnxMetadataProps } from './onnx-writer.ts';

/** The bike-sharing hourly data shipped in data/bike-sharing (UCI, CC BY 4.0). */
export const BIKE_SHARING_CSV = fileURLToPath(new URL('../../../data/bike-sharing/hour.csv', import.meta.url));

/**
 * Columns the bike-sharing demo leaves out: the row id and date string, `casual` and `registered` (they sum to
 * `cnt`, so they would leak the answer), and `yr`, which is constant once the demo keeps only 2011.
 */
export const BIKE_SHARING_EXCLUDE: readonly string[] = ['instant', 'dteday', 'casual', 'registered', 'cnt', 'yr'];

/** Options for the demo models: predict hourly rentals `cnt` from the 2011 rows of bike-sharing. */
export function bikeSharingDemoOptions(model: TrainerKind, csvPath: string = BIKE_SHARING_CSV): TrainOptions {
  return { csvPath, target: 'cnt', model, exclude: [...BIKE_SHARING_EXCLUDE], where: { yr: 0 } };
}

/** The kinds `model` accepts, in the order messages list them. */
export const TRAINER_KINDS: readonly TrainerKind[] = ['linear', 'logistic', 'gbt', 'gbt-classifier'];

type LinearKind = 'linear' | 'logistic';
const DEFAULT_L2: Record<LinearKind, number> = { linear: 1e-6, logistic: 1e-4 };

/** The linear kind with the same output: the family the leakage check refits, and whose l2 it uses. */
const LINEAR_FAMILY: Record<TrainerKind, LinearKind> = { linear: 'linear', logistic: 'logistic', gbt: 'linear', 'gbt-classifier': 'logistic' };
const isTreeKind = (kind: TrainerKind): kind is 'gbt' | 'gbt-classifier' => kind === 'gbt' || kind === 'gbt-classifier';

/** Reads the CSV, fits the model on the training rows, scores the holdout rows and serializes the ONNX graph. */
export async function train(opts: TrainOptions, onProgress: (msg: string) => void = () => {}): Promise<TrainResult> {
  const { kind, holdout, seed, l2, rangeMargin, gbt } = checkOptions(opts);
  const family = LINEAR_FAMILY[kind];
  const table = await loadCsv(opts.csvPath);
  onProgress(`read ${table.rows.length} rows from ${opts.csvPath}`);
  const data = selectDataset(table, opts);
  const where = Object.entries(opts.where ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
  if (where) onProgress(`kept ${data.rows} rows where ${where}`);
  if (data.skippedNonNumeric.length > 0) onProgress(`skipped non-numeric columns: ${data.skippedNonNumeric.join(', ')}`);

  const k = data.featureNames.length;
  const split = holdoutSplit(data.rows, holdout, seed);
  if (split.train.length === 0) {
    throw new TrainerError('WARDEN_TRAIN_EMPTY_DATASET', `no training rows: ${data.rows} rows with holdout ${holdout}`);
  }
  const fitRows = takeRows(data.x, data.y, k, split.train);
  const evaluated = split.holdout.length > 0 ? takeRows(data.x, data.y, k, split.holdout) : fitRows;
  onProgress(`training ${kind} on ${fitRows.n} rows × ${k} features (${data.featureNames.join(', ')})`);

  const stats = columnStats(fitRows.x, fitRows.n, k);
  // A constant column (std 0) keeps scale 1: its standardized values are all 0 and the ridge term pins its weight to 0.
  const scale = stats.std.map((s) => (s > 0 ? s : 1));
  const z = standardize(fitRows.x, fitRows.n, k, stats.mean, scale);

  const params: Record<string, string | number> = gbt
    ? {
        kind,
        n_estimators: gbt.nEstimators,
        learning_rate: gbt.learningRate,
        max_depth: gbt.maxDepth,
        min_samples_leaf: gbt.minSamplesLeaf,
        min_samples_split: gbt.minSamplesSplit,
        subsample: 1,
        holdout,
        seed,
      }
    : { kind, l2, holdout, seed };
  const threshold = family === 'logistic' ? (opts.threshold ?? median(fitRows.y)) : undefined;
  const labels = threshold === undefined ? undefined : labelsAbove(fitRows.y, threshold, opts.target);
  let predict: TrainResult['predict'];
  let margin: TrainResult['predict'] | undefined;
  let ensemble: GradientBoostedTrees | undefined;
  let writeModel: (metadata: Record<string, string>) => Uint8Array;
  if (gbt) {
    const loss = labels ? 'log_loss' : 'squared_error';
    onProgress(
      `boosting ${gbt.nEstimators} trees of depth ${gbt.maxDepth} (${loss === 'log_loss' ? 'log loss' : 'squared error'}, learning rate ${gbt.learningRate})`,
    );
    const every = Math.max(1, Math.ceil(gbt.nEstimators / 10));
    const started = performance.now();
    const trees = fitGradientBoosting(fitRows.x, labels ?? fitRows.y, fitRows.n, k, loss, gbt, (stage, trainLoss) => {
      if (stage % every === 0 || stage === gbt.nEstimators) onProgress(`tree ${stage}/${gbt.nEstimators}: train loss ${trainLoss.toPrecision(6)}`);
    });
    onProgress(`fitted ${gbt.nEstimators} trees in ${((performance.now() - started) / 1000).toFixed(2)} s`);
    params.train_loss = trees.trainLoss[gbt.nEstimators - 1] as number;
    ensemble = trees;
    const scores = ensembleScorer(trees);
    const raw = (rows: Float32Array | number[][]): Float32Array => scores(toInput(rows, k), k);
    predict = labels ? (rows) => raw(rows).map((v) => 1 / (1 + Math.exp(-v))) : raw;
    if (labels) margin = raw;
    const treeKind = kind as 'gbt' | 'gbt-classifier';
    writeModel = (metadata) => writeTreeEnsembleOnnx({ kind: treeKind, featureCount: k, ensemble: trees, metadata });
  } else {
    let fit: StandardizedFit;
    if (labels) {
      const logistic = guardSolve(() =>
        fitLogistic(z, labels, fitRows.n, k, l2, (i, loss) => onProgress(`newton iteration ${i}: loss ${loss.toPrecision(12)}`)),
      );
      if (!logistic.converged) onProgress(`warning: newton did not converge in ${logistic.iterations} iterations`);
      params.iterations = logistic.iterations;
      fit = logistic;
    } else {
      fit = guardSolve(() => fitLinear(z, fitRows.y, fitRows.n, k, l2));
    }
    // Fold the standardization in: w·(x − μ)/σ + b = (w/σ)·x + (b − Σ w·μ/σ), so the graph needs only raw inputs.
    const weights = new Float32Array(k);
    let bias = fit.bias;
    for (let j = 0; j < k; j++) {
      const w = (fit.weights[j] as number) / (scale[j] as number);
      weights[j] = w;
      bias -= w * (stats.mean[j] as number);
    }
    const linearKind = family;
    predict = predictor(linearKind, weights, Math.fround(bias));
    writeModel = (metadata) => writeOnnx({ kind: linearKind, featureCount: k, weights, bias: Math.fround(bias), metadata });
  }
  Object.assign(params, { rows_train: split.train.length, rows_holdout: split.holdout.length });
  if (split.holdout.length === 0) params.metrics_on = 'train';
  if (where) params.where = where;

  const scores = predict(Float32Array.from(evaluated.x));
  const metrics =
    threshold === undefined
      ? regressionMetrics(evaluated.y, scores)
      : classificationMetrics(evaluated.y.map((v) => (v > threshold ? 1 : 0)), scores);
  onProgress(`${split.holdout.length > 0 ? 'holdout' : 'training'} metrics: ${formatMetrics(metrics)}`);

  // Trees are checked like the linear kind with the same output: the rule refits linear or logistic models on
  // feature subsets (with that kind's default l2), and the model's own r2 or roc_auc is the trigger.
  const leakage = detectLeakage({
    kind: family,
    target: opts.target,
    featureNames: data.featureNames,
    zFit: z,
    yFit: fitRows.y,
    zEval: evaluated === fitRows ? z : standardize(evaluated.x, evaluated.n, k, stats.mean, scale),
    yEval: evaluated.y,
    constant: Array.from(stats.std, (s) => !(s > 0)),
    l2: gbt ? DEFAULT_L2[family] : l2,
    ...(threshold !== undefined ? { threshold } : {}),
    metrics,
    evaluatedOn: split.holdout.length > 0 ? 'holdout' : 'training',
    ...(opts.features ? { features: opts.features } : { exclude: opts.exclude ?? [] }),
  });
  const warnings = leakage ? [leakage] : [];
  // params is what the registry keeps as the version's metadata, so `warden models get` shows the warning.
  if (leakage) Object.assign(params, { leakage_suspected: leakage.columns.join(','), leakage_warning: leakage.message });

  const features: FeatureSpec[] = data.featureNames.map((name, j) => {
    const [min, max] = allowedRange(stats.min[j] as number, stats.max[j] as number, rangeMargin);
    return { name, datatype: 'FP32', min, max, mean: stats.mean[j] as number, std: stats.std[j] as number };
  });
  const metadata: Record<string, string> = {
    'warden.kind': kind,
    'warden.target': opts.target,
    'warden.features': JSON.stringify(features),
    'warden.metrics': JSON.stringify(metrics),
    'warden.params': JSON.stringify(params),
    'warden.training_data_sha256': table.sha256,
  };
  if (threshold !== undefined) metadata['warden.threshold'] = String(threshold);
  const onnx = writeModel(metadata);

  return {
    onnx,
    kind,
    inputName: 'input',
    outputName: family === 'linear' ? 'variable' : 'probability',
    features,
    target: opts.target,
    ...(threshold !== undefined ? { threshold } : {}),
    metrics,
    params,
    trainingDataSha256: table.sha256,
    warnings,
    predict,
    ...(ensemble ? { ensemble } : {}),
    ...(margin ? { margin } : {}),
  };
}

/** Metrics as `name=value` pairs with four significant digits, for progress lines and the CLI summary. */
export function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics)
    .map(([name, value]) => `${name}=${value.toPrecision(4)}`)
    .join(' ');
}

/**
 * The range a served value may take: the training range widened by `margin` of its width on each side (of the value's
 * magnitude, at least 1, for a constant column). Exactly the training range would refuse mild extrapolation (2012's
 * bike data has two hours hotter than any of 2011); the margin still refuses unit errors and garbage (°F for a 0-1
 * temperature, `temp: 70`).
 */
export function allowedRange(min: number, max: number, margin: number): [number, number] {
  const width = max > min ? max - min : Math.max(Math.abs(min), 1);
  return [min - margin * width, max + margin * width];
}

/** "a, b, c or d" */
export function listKinds(kinds: readonly string[] = TRAINER_KINDS): string {
  return kinds.length <= 1 ? (kinds[0] ?? '') : `${kinds.slice(0, -1).join(', ')} or ${kinds.at(-1)}`;
}

/** The tree options and their TrainOptions fields, for messages: scikit-learn's names. */
const GBT_OPTIONS: readonly [keyof GbtParams, string][] = [
  ['nEstimators', 'n_estimators'],
  ['learningRate', 'learning_rate'],
  ['maxDepth', 'max_depth'],
  ['minSamplesLeaf', 'min_samples_leaf'],
  ['minSamplesSplit', 'min_samples_split'],
];

/** Largest accepted n_estimators and max_depth: beyond them the ONNX file, not the model, is what grows. */
export const GBT_MAX_ESTIMATORS = 10_000;
export const GBT_MAX_DEPTH = 32;

function checkOptions(opts: TrainOptions): {
  kind: TrainerKind;
  holdout: number;
  seed: number;
  l2: number;
  rangeMargin: number;
  gbt?: GbtParams;
} {
  const bad = (message: string): never => {
    throw new TrainerError('WARDEN_TRAIN_BAD_OPTION', message);
  };
  const kind = opts.model;
  if (!TRAINER_KINDS.includes(kind)) bad(`model must be ${listKinds()}, got "${String(kind)}"`);
  const holdout = opts.holdout ?? 0.2;
  if (!(holdout >= 0 && holdout < 1)) bad(`holdout must be in [0, 1), got ${holdout}`);
  const seed = opts.seed ?? 42;
  if (!Number.isInteger(seed)) bad(`seed must be an integer, got ${seed}`);
  const tree = isTreeKind(kind);
  if (tree && opts.l2 !== undefined) bad('l2 only applies to the linear and logistic models');
  const l2 = opts.l2 ?? DEFAULT_L2[LINEAR_FAMILY[kind]];
  if (!(l2 >= 0 && Number.isFinite(l2))) bad(`l2 must be a finite number >= 0, got ${l2}`);
  const rangeMargin = opts.rangeMargin ?? 0.1;
  if (!(rangeMargin >= 0 && rangeMargin <= 100)) bad(`range margin must be in [0, 100], got ${rangeMargin}`);
  if (opts.threshold !== undefined) {
    if (LINEAR_FAMILY[kind] !== 'logistic') bad('threshold only applies to the logistic model and the gbt-classifier');
    if (!Number.isFinite(opts.threshold)) bad(`threshold must be a finite number, got ${opts.threshold}`);
  }
  for (const [name, value] of Object.entries(opts.where ?? {})) {
    if (!Number.isFinite(value)) bad(`where ${name} must compare to a number, got ${value}`);
  }
  if (!tree) {
    const given = GBT_OPTIONS.filter(([field]) => opts[field] !== undefined).map(([, name]) => name);
    if (given.length) bad(`${given.join(', ')} only ${given.length > 1 ? 'apply' : 'applies'} to the gbt and gbt-classifier models`);
    return { kind, holdout, seed, l2, rangeMargin };
  }
  const gbt: GbtParams = {
    nEstimators: opts.nEstimators ?? GBT_DEFAULTS.nEstimators,
    learningRate: opts.learningRate ?? GBT_DEFAULTS.learningRate,
    maxDepth: opts.maxDepth ?? GBT_DEFAULTS.maxDepth,
    minSamplesLeaf: opts.minSamplesLeaf ?? GBT_DEFAULTS.minSamplesLeaf,
    minSamplesSplit: opts.minSamplesSplit ?? GBT_DEFAULTS.minSamplesSplit,
  };
  const integer = (name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    if (!(Number.isInteger(value) && value >= min && value <= max)) {
      bad(`${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`}, got ${value}`);
    }
  };
  integer('n_estimators', gbt.nEstimators, 1, GBT_MAX_ESTIMATORS);
  if (!(gbt.learningRate > 0 && Number.isFinite(gbt.learningRate))) bad(`learning_rate must be a finite number > 0, got ${gbt.learningRate}`);
  integer('max_depth', gbt.maxDepth, 1, GBT_MAX_DEPTH);
  integer('min_samples_leaf', gbt.minSamplesLeaf, 1);
  integer('min_samples_split', gbt.minSamplesSplit, 2);
  return { kind, holdout, seed, l2, rangeMargin, gbt };
}

/** With l2 = 0 exactly collinear features make the system singular; say so instead of failing deep in Cholesky. */
function guardSolve<T>(solve: () => T): T {
  try {
    return solve();
  } catch (err) {
    if (err instanceof Error && err.message === 'matrix is not positive definite') {
      throw new TrainerError('WARDEN_TRAIN_BAD_OPTION', 'features are collinear; use l2 > 0 or drop a feature');
    }
    throw err;
  }
}

interface Rows {
  x: Float64Array;
  y: Float64Array;
  n: number;
}

function takeRows(x: Float64Array, y: Float64Array, k: number, indices: number[]): Rows {
  const out = new Float64Array(indices.length * k);
  indices.forEach((r, i) => out.set(x.subarray(r * k, (r + 1) * k), i * k));
  return { x: out, y: Float64Array.from(indices, (r) => y[r] as number), n: indices.length };
}

/** 1 where target > threshold, else 0; both classes must occur or the logistic fit has nothing to separate. */
function labelsAbove(target: Float64Array, threshold: number, name: string): Float64Array {
  const labels = target.map((v) => (v > threshold ? 1 : 0));
  const positives = labels.reduce((a, b) => a + b, 0);
  if (positives === 0 || positives === labels.length) {
    const side = positives === 0 ? '<=' : '>';
    throw new TrainerError(
      'WARDEN_TRAIN_BAD_OPTION',
      `every training row has ${name} ${side} ${threshold}; choose a threshold that splits the data`,
    );
  }
  return labels;
}

function median(values: Float64Array): number {
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * The graph's math in JavaScript, rounded like onnxruntime's CPU kernels: MLAS accumulates each MatMul output in
 * one float32 register with fused multiply-adds in feature order. A float32 × float32 product is exact in float64,
 * so fround(sum + x·w) is that FMA; on x86-64 with FMA this matches onnxruntime bit for bit. The Sigmoid is exact
 * here, while MLAS uses a rational approximation (within about 1e-7 absolute).
 */
function predictor(kind: LinearKind, weights: Float32Array, bias: number): TrainResult['predict'] {
  const k = weights.length;
  return (rows) => {
    const input = toInput(rows, k);
    const out = new Float32Array(input.length / k);
    for (let i = 0; i < out.length; i++) {
      let sum = 0;
      for (let j = 0; j < k; j++) sum = Math.fround(sum + (input[i * k + j] as number) * (weights[j] as number));
      const value = Math.fround(sum + bias);
      out[i] = kind === 'linear' ? value : 1 / (1 + Math.exp(-value));
    }
    return out;
  };
}

function toInput(rows: Float32Array | number[][], k: number): Float32Array {
  const input = rows instanceof Float32Array ? rows : flatten(rows, k);
  if (input.length % k !== 0) throw new Error(`predict expects rows of ${k} features, got ${input.length} values`);
  return input;
}

function flatten(rows: number[][], k: number): Float32Array {
  const out = new Float32Array(rows.length * k);
  rows.forEach((row, i) => {
    if (row.length !== k) throw new Error(`predict expects rows of ${k} features, row ${i} has ${row.length}`);
    out.set(row, i * k);
  });
  return out;
}
