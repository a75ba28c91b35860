import type { GradientBoostedTrees } from './gbt.ts';
import type { TrainWarning } from './leakage.ts';

/**
 * The models the built-in trainer fits: linear and gbt (gradient-boosted trees) regress the target; logistic and
 * gbt-classifier give the probability that it is above a threshold.
 */
export type TrainerKind = 'linear' | 'logistic' | 'gbt' | 'gbt-classifier';

/** What to train on and how; every field but the first three has a default. */
export interface TrainOptions {
  csvPath: string;
  target: string;
  model: TrainerKind;
  /** Default: all numeric columns except `target` and `exclude`. */
  features?: string[];
  /** Columns left out of the default features; ignored when `features` is given. */
  exclude?: string[];
  /** Keep only rows where every listed column equals its value, e.g. `{ yr: 0 }`. */
  where?: Record<string, number>;
  /** Logistic and gbt-classifier: label = target > threshold; default is the median target on the training rows. */
  threshold?: number;
  /** Fraction of rows held out for metrics, default 0.2. */
  holdout?: number;
  seed?: number;
  /** Linear and logistic: ridge penalty on standardized weights; default 1e-6 (linear) or 1e-4 (logistic). */
  l2?: number;
  /** gbt kinds: number of trees (boosting stages), default 100. */
  nEstimators?: number;
  /** gbt kinds: shrinkage of each tree's contribution, default 0.1. */
  learningRate?: number;
  /** gbt kinds: depth of each tree, default 3. */
  maxDepth?: number;
  /** gbt kinds: fewest training rows in a leaf, default 1. */
  minSamplesLeaf?: number;
  /** gbt kinds: fewest training rows a node needs to be split, default 2. */
  minSamplesSplit?: number;
  /**
   * Each feature's allowed range is its training range widened by this share of its width on both sides (default 0.1;
   * 0 = exactly the training range). Values outside it are refused at the door.
   */
  rangeMargin?: number;
}

/** One model input column with the training-row statistics that monitoring uses as its reference. */
export interface FeatureSpec {
  name: string;
  datatype: 'FP32';
  min: number;
  max: number;
  mean: number;
  std: number;
}

/** A trained model: the ONNX bytes plus everything the registry records about them. */
export interface TrainResult {
  onnx: Uint8Array;
  kind: TrainerKind;
  inputName: 'input';
  outputName: 'variable' | 'probability';
  features: FeatureSpec[];
  target: string;
  threshold?: number;
  /** Holdout metrics: linear, gbt → mae, rmse, r2; logistic, gbt-classifier → accuracy, log_loss, roc_auc, brier. */
  metrics: Record<string, number>;
  params: Record<string, string | number>;
  trainingDataSha256: string;
  /** Things the caller should know before pushing the model (see leakage.ts); also in `params`. */
  warnings: TrainWarning[];
  /** The model's outputs computed in float32 like onnxruntime; `rows` is row-major [N, k] or N arrays of k. */
  predict(rows: Float32Array | number[][]): Float32Array;
  /** gbt kinds: the fitted trees (thresholds, node sizes, values) and the training loss after each stage. */
  ensemble?: GradientBoostedTrees;
  /** gbt-classifier: the raw score (log-odds, the TreeEnsembleRegressor's output before the Sigmoid) in float32. */
  margin?(rows: Float32Array | number[][]): Float32Array;
}
