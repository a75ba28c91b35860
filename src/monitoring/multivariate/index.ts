/**
 * Multivariate drift: one number per chunk that moves when the relationships between features change, even if
 * every feature's own distribution stays put (which per-feature drift tests cannot see). Implements NannyML's
 * data reconstruction drift — PCA on the standardised reference, mean reconstruction error per chunk — with alert
 * thresholds learned from reference chunks each scored by a model that never saw them. See docs/embedding-drift.md.
 */
export { fitReconstruction, reconstructionError } from './reconstruction.ts';
export type { FeatureMatrix, ReconstructionModel, ReconstructionOptions, ReconstructionResult } from './reconstruction.ts';
