import { WardenError } from '../errors.ts';
import type { LabelledRow, LabelSource } from '../storage/index.ts';
import {
  calibrate,
  cbpeEstimate,
  classificationMetrics,
  dleEstimate,
  fitCalibration,
  fitDle,
  regressionMetrics,
  type CbpeEstimate,
  type ClassificationMetrics,
  type DleEstimate,
  type DleModel,
  type IsotonicCalibration,
  type RegressionMetrics,
} from './performance/index.ts';
import type { Cell, ProfileSchema, Table } from './profile/index.ts';

/** Live performance settings of a version, given with its reference. */
export interface PerformanceConfig {
  task: 'binary' | 'regression';
  /** Reference column holding the ground truth (e.g. cnt). */
  target: string;
  /** Binary tasks whose reference target is a number: label = target > targetThreshold (e.g. busy = cnt > 108). */
  targetThreshold?: number;
  /** Prediction column: P(y=1) for binary, the estimate for regression (default: the first prediction column). */
  prediction?: string;
  /** Binary decision threshold on the score (default 0.5). */
  threshold?: number;
  /** Live metric within this relative distance of the offline one counts as healthy (default 0.05). */
  offlineTolerance?: number;
  /** Logged feature columns to break realized performance down by. */
  segments?: string[];
  /** Concept-drift thresholds. */
  labelShift?: number;
  mismatchRate?: number;
  machineLabelShare?: number;
}

/** What is fitted on the reference and stored with it. */
export interface PerformanceModel {
  config: PerformanceConfig;
  prediction: string;
  /** Binary: isotonic calibration of the reference scores (CBPE). */
  calibration?: IsotonicCalibration;
  /** Regression: the direct-loss model over the numeric features and the prediction (DLE). */
  dle?: DleModel;
  dleFeatures?: string[];
  /** Reference label distribution: positive rate (binary) or mean and std (regression). */
  referenceLabels: { positiveRate?: number; mean?: number; std?: number };
  /** Realized performance on the reference. */
  reference: ClassificationMetrics | RegressionMetrics;
}

export interface ConceptDrift {
  /** Binary: |positive rate − reference|; regression: |mean label − reference mean| / reference std. */
  labelShift: number;
  labelShiftAlert: boolean;
  /** Binary: share of labelled rows whose predicted class differs from the label; regression: share with |error| > 2 × reference MAE. */
  mismatchRate: number;
  mismatchAlert: boolean;
  /** Share of the window's labels produced by a model (source 'model'): the feedback loop. */
  machineLabelShare: number;
  machineLabelAlert: boolean;
}

export interface WindowPerformance {
  task: 'binary' | 'regression';
  labelled: number;
  labelsBySource: Record<LabelSource, number>;
  lateLabels: number;
  realized?: ClassificationMetrics | RegressionMetrics;
  estimated?: CbpeEstimate | DleEstimate;
  /** Primary metric (accuracy or RMSE): live vs the version's offline metric. */
  offline?: { metric: string; offline: number; live: number; gap: number; healthy: boolean };
  concept?: ConceptDrift;
  segments?: { column: string; value: string; labelled: number; metrics: ClassificationMetrics | RegressionMetrics }[];
}

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/**
 * A label as a number. The reference's target goes through `targetThreshold` (cnt → busy); live labels
 * of a binary task must already be 0/1 or booleans, since a count of 1 and a class of 1 look alike.
 */
function toLabel(v: unknown, cfg: PerformanceConfig, fromReference = false): number | undefined {
  if (typeof v === 'boolean') return v ? 1 : 0;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n)) return undefined;
  if (cfg.task === 'binary' && fromReference && cfg.targetThreshold !== undefined) return n > cfg.targetThreshold ? 1 : 0;
  if (cfg.task === 'binary' && n !== 0 && n !== 1) return undefined;
  return n;
}

/**
 * Fits what estimation needs on the reference: CBPE's calibration for binary classifiers, DLE's loss
 * model for regression, plus the reference's label distribution and realized performance.
 */
export function fitPerformance(cfg: PerformanceConfig, table: Table, schema: ProfileSchema): PerformanceModel {
  const predictions = schema.columns.filter((c) => c.role === 'prediction').map((c) => c.name);
  const prediction = cfg.prediction ?? predictions[0];
  if (!prediction || !table.names.includes(prediction)) throw bad(`performance: prediction column ${prediction ?? '(none)'} is not in the reference`);
  const ti = table.names.indexOf(cfg.target);
  if (ti < 0) throw bad(`performance: target column ${cfg.target} is not in the reference data`);
  const pi = table.names.indexOf(prediction);
  const numericFeatures = schema.columns.filter((c) => c.role === 'feature' && c.kind === 'numeric').map((c) => c.name);
  const fi = numericFeatures.map((f) => table.names.indexOf(f));
  const labels: number[] = [];
  const preds: number[] = [];
  const feats: number[] = [];
  for (const r of table.rows) {
    const y = toLabel(r[ti], cfg, true);
    const p = r[pi];
    if (y === undefined || typeof p !== 'number' || !Number.isFinite(p)) continue;
    if (cfg.task === 'regression' && !fi.every((j) => typeof r[j] === 'number' && Number.isFinite(r[j] as number))) continue;
    labels.push(y);
    preds.push(p);
    if (cfg.task === 'regression') for (const j of fi) feats.push(r[j] as number);
  }
  if (labels.length < 20) throw bad(`performance: only ${labels.length} reference rows have a valid target and prediction; need at least 20`);
  const model: PerformanceModel = { config: cfg, prediction, referenceLabels: {}, reference: undefined as never };
  if (cfg.task === 'binary') {
    if (preds.some((p) => p < 0 || p > 1)) throw bad(`performance: binary task needs ${prediction} to be a probability in [0, 1]`);
    model.calibration = fitCalibration(labels, preds);
    model.reference = classificationMetrics(labels, preds, cfg.threshold ?? 0.5);
    model.referenceLabels.positiveRate = labels.reduce((a, b) => a + b, 0) / labels.length;
  } else {
    model.dle = fitDle(Float64Array.from(feats), numericFeatures.length, preds, labels);
    model.dleFeatures = numericFeatures;
    model.reference = regressionMetrics(labels, preds);
    const mean = labels.reduce((a, b) => a + b, 0) / labels.length;
    model.referenceLabels = { mean, std: Math.sqrt(labels.reduce((a, b) => a + (b - mean) ** 2, 0) / labels.length) };
  }
  return model;
}

/** Estimated performance from a window's sample (no labels needed). */
export function estimatePerformance(pm: PerformanceModel, schema: ProfileSchema, sample: readonly Cell[][]): CbpeEstimate | DleEstimate | undefined {
  const pi = schema.columns.findIndex((c) => c.name === pm.prediction);
  if (pi < 0) return undefined;
  if (pm.config.task === 'binary' && pm.calibration) {
    const raw = sample.map((r) => r[pi]).filter((v): v is number => typeof v === 'number' && v >= 0 && v <= 1);
    if (raw.length === 0) return undefined;
    return cbpeEstimate(raw, calibrate(pm.calibration, raw), pm.config.threshold ?? 0.5);
  }
  if (pm.dle && pm.dleFeatures) {
    const fi = pm.dleFeatures.map((f) => schema.columns.findIndex((c) => c.name === f));
    const feats: number[] = [];
    const preds: number[] = [];
    for (const r of sample) {
      const p = r[pi];
      if (typeof p !== 'number' || !fi.every((j) => typeof r[j] === 'number')) continue;
      preds.push(p);
      for (const j of fi) feats.push(r[j] as number);
    }
    if (preds.length === 0) return undefined;
    return dleEstimate(pm.dle, Float64Array.from(feats), fi.length, preds);
  }
  return undefined;
}

/**
 * Realized performance of a window from its labelled rows, the live-vs-offline gap, concept-drift
 * indicators and per-segment breakdowns. `featureNames` maps the first input's columns to names.
 */
export function realizedPerformance(
  pm: PerformanceModel,
  rows: readonly LabelledRow[],
  offlineMetrics: Record<string, number> | undefined,
  featureNames: readonly string[],
  predictionTensor: { name: string; column: number },
): WindowPerformance {
  const cfg = pm.config;
  const bySource: Record<LabelSource, number> = { human: 0, system: 0, model: 0 };
  const labels: number[] = [];
  const preds: number[] = [];
  const kept: LabelledRow[] = [];
  let late = 0;
  for (const r of rows) {
    const y = toLabel(r.label, cfg);
    const p = r.outputs ? (r.outputs[predictionTensor.name]?.[predictionTensor.column] as number | undefined) : undefined;
    if (y === undefined || typeof p !== 'number' || !Number.isFinite(p)) continue;
    labels.push(y);
    preds.push(p);
    kept.push(r);
    bySource[r.source]++;
    if (r.late) late++;
  }
  const out: WindowPerformance = { task: cfg.task, labelled: labels.length, labelsBySource: bySource, lateLabels: late };
  if (labels.length === 0) return out;
  const threshold = cfg.threshold ?? 0.5;
  const metrics = (ys: number[], ps: number[]) => (cfg.task === 'binary' ? classificationMetrics(ys, ps, threshold) : regressionMetrics(ys, ps));
  out.realized = metrics(labels, preds);

  const primary = cfg.task === 'binary' ? 'accuracy' : 'rmse';
  const off = offlineMetrics?.[primary];
  if (typeof off === 'number' && off !== 0) {
    const live = (out.realized as unknown as Record<string, number>)[primary]!;
    const gap = (live - off) / Math.abs(off);
    const tol = cfg.offlineTolerance ?? 0.05;
    // Accuracy may not fall more than tol below offline; RMSE may not rise more than tol above it.
    out.offline = { metric: primary, offline: off, live, gap, healthy: cfg.task === 'binary' ? gap >= -tol : gap <= tol };
  }

  let labelShift: number;
  let mismatches = 0;
  if (cfg.task === 'binary') {
    const rate = labels.reduce((a, b) => a + b, 0) / labels.length;
    labelShift = Math.abs(rate - (pm.referenceLabels.positiveRate ?? rate));
    labels.forEach((y, i) => (mismatches += (preds[i]! >= threshold ? 1 : 0) !== y ? 1 : 0));
  } else {
    const mean = labels.reduce((a, b) => a + b, 0) / labels.length;
    const std = pm.referenceLabels.std || 1;
    labelShift = Math.abs(mean - (pm.referenceLabels.mean ?? mean)) / std;
    const refMae = (pm.reference as RegressionMetrics).mae;
    labels.forEach((y, i) => (mismatches += Math.abs(preds[i]! - y) > 2 * refMae ? 1 : 0));
  }
  const mismatchRate = mismatches / labels.length;
  const refMismatch = cfg.task === 'binary' ? 1 - (pm.reference as ClassificationMetrics).accuracy : undefined;
  const machineShare = bySource.model / labels.length;
  out.concept = {
    labelShift,
    labelShiftAlert: labelShift > (cfg.labelShift ?? (cfg.task === 'binary' ? 0.1 : 0.5)),
    mismatchRate,
    mismatchAlert: mismatchRate > (cfg.mismatchRate ?? (refMismatch !== undefined ? refMismatch + 0.1 : 0.2)),
    machineLabelShare: machineShare,
    machineLabelAlert: machineShare > (cfg.machineLabelShare ?? 0.1),
  };

  if (cfg.segments?.length) {
    out.segments = [];
    for (const column of cfg.segments) {
      const j = featureNames.indexOf(column);
      if (j < 0) continue;
      const groups = new Map<string, { ys: number[]; ps: number[] }>();
      kept.forEach((r, i) => {
        const inputs = r.inputs ? Object.values(r.inputs)[0] : undefined;
        const v = inputs?.[j];
        const key = v === undefined || v === null ? '(missing)' : String(v);
        const g = groups.get(key) ?? { ys: [], ps: [] };
        g.ys.push(labels[i]!);
        g.ps.push(preds[i]!);
        if (groups.size < 100 || groups.has(key)) groups.set(key, g);
      });
      for (const [value, g] of [...groups].sort((a, b) => a[0].localeCompare(b[0], 'en', { numeric: true }))) {
        out.segments.push({ column, value, labelled: g.ys.length, metrics: metrics(g.ys, g.ps) });
      }
    }
  }
  return out;
}
