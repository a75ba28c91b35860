/**
 * Embedding drift: tests of whether a window of embedding vectors (or any dense feature vectors) comes from the
 * same distribution as a reference set. Four views, cheapest first: the distance between mean vectors, the share
 * of dimensions whose marginal distribution drifted (per-dimension KS), the kernel two-sample MMD test with a
 * permutation p-value (Gretton et al. 2012), and the out-of-fold ROC AUC of a classifier trained to tell the two
 * sets apart (Evidently's "model" method). All are pure functions of their inputs and a seed; docs/embedding-drift.md
 * explains each figure.
 */
export type { VectorSet } from './vector-set.ts';
export { meanVectorDistance } from './mean-distance.ts';
export type { MeanDistanceResult } from './mean-distance.ts';
export { driftedComponentsShare } from './components.ts';
export type { ComponentsOptions, ComponentsResult } from './components.ts';
export { mmd } from './mmd.ts';
export type { MmdOptions, MmdResult } from './mmd.ts';
export { domainClassifierAuc } from './domain-classifier.ts';
export type { DomainClassifierOptions, DomainClassifierResult } from './domain-classifier.ts';
export { mannWhitneyAuc } from './auc.ts';
