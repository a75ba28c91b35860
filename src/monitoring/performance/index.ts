/**
 * Model performance as pure functions of arrays (no I/O, no clock): live metrics once labels have been joined to
 * predictions, each equal to its scikit-learn 1.2 counterpart to rounding (test/fixtures/performance/sklearn.json
 * pins them), and estimates for windows whose labels have not arrived, after NannyML: Confidence-based
 * Performance Estimation (CBPE) for classifiers, from scores calibrated by isotonic regression on the labelled
 * reference, and Direct Loss Estimation (DLE) for regressors, from a model of the loss fitted on the reference.
 * Both estimators assume P(label | x) is the same in the window as in the reference; a shift in that relation
 * (concept drift, or a change in the label prior the features do not explain) is invisible to them.
 * docs/performance.md describes each metric and shows CBPE on the bike-sharing data.
 */
export { classificationMetrics } from './classification.ts';
export type { ClassificationMetrics, ConfusionCounts } from './classification.ts';
export { regressionMetrics } from './regression.ts';
export type { RegressionMetrics } from './regression.ts';
export { fitCalibration, calibrate } from './calibration.ts';
export type { IsotonicCalibration } from './calibration.ts';
export { cbpeEstimate } from './cbpe.ts';
export type { CbpeEstimate } from './cbpe.ts';
export { fitDle, dleEstimate } from './dle.ts';
export type { DleEstimate, DleModel, DleOptions, RidgeFit } from './dle.ts';
