/**
 * @module rollouts/stats
 *
 * The statistics behind canary analysis and A/B experiments. The comparisons are always valid: a
 * p-value or confidence sequence may be read after every batch of traffic and the error rate still
 * holds, which a fixed-sample test peeked at repeatedly does not. Each function's reference values come
 * from SciPy or from the formula evaluated independently in Python (test/fixtures/rollouts/make_fixtures.py
 * → reference.json); docs/rollout-statistics.md gives the formulas, citations, defaults and assumptions.
 * "b minus a" is candidate minus stable throughout.
 */

/** Mixture SPRT (normal mixture, Gaussian approximation) on a difference of means or of proportions, with its confidence sequence. */
export { sequentialMeanDifference, sequentialProportionDifference, DEFAULT_TAU_SCALE, MIN_SEQUENTIAL_N } from './sequential.ts';
export type { ArmMoments, ArmCounts, SequentialResult, SequentialOptions } from './sequential.ts';
/** Sample ratio mismatch: anytime-valid Dirichlet-multinomial Bayes factor and the fixed-sample χ². */
export { sampleRatioMismatch, DEFAULT_SRM_CONCENTRATION } from './srm.ts';
export type { SrmResult, SrmOptions } from './srm.ts';
/** Holm and Benjamini–Hochberg adjusted p-values (statsmodels multipletests). */
export { holm, benjaminiHochberg } from './multiple.ts';
/** Fixed-horizon sample size and minimum detectable effect of a two-sided two-sample z-test. */
export { requiredSampleSizePerArm, minimumDetectableEffect } from './power.ts';
export type { SampleSizeOptions, DetectableEffectOptions } from './power.ts';
