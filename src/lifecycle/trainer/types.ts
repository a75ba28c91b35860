import type { TrainWarning } from './leakage.ts';

/** The two model families the built-in trainer fits. */
export type TrainerKind = 'linear' | 'logistic';

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
  /** Logistic only: label = target > threshold; default is the median target on the training rows. */
  threshold?: number;
  /** Fraction of rows held out for metrics, default 0.2. */
  holdout?: number;
  seed?: number;
  /** Ridge penalty on standardized weights; default 1e-6 (linear) or 1e-4 (logistic). */
  l2?: number;
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
  /** Holdout metrics: linear → mae, rmse, r2; logistic → accuracy, log_loss, roc_auc, brier. */
  metrics: Record<string, number>;
  params: Record<string, string | number>;
  trainingDataSha256: string;
  /** Things the caller should know before pushing the model (see leakage.ts); also in `params`. */
  warnings: TrainWarning[];
  /** The model's outputs computed in float32 like onnxruntime; `rows` is row-major [N, k] or N arrays of k. */
  predict(rows: Float32Array | number[][]): Float32Array;
}
