/**
 * Delivery: deployments (the name callers use, its stable version and the history of every change), with the
 * checks that keep a switch from failing a request: the version is loaded before it gets traffic, and a signature
 * that would break callers is refused naming the difference. Progressive strategies (shadow, canary, A/B) build on it.
 */
export { DeploymentService, STRATEGIES } from './deployments.ts';
export type { DeploymentState, DeployRequest, DeployResult, RollbackRequest, Strategy } from './deployments.ts';
export { signatureDifferences } from './compatibility.ts';
export { RolloutService, CONTROLLER_LEASE, ROLLOUT_ABORTED_ALERT } from './rollouts.ts';
export type { RolloutServiceDeps, RolloutStatus, RolloutView } from './rollouts.ts';
export { parseRolloutSpec, describeStep, DEFAULT_ANALYSIS, DEFAULT_CANARY_STEPS } from './spec.ts';
export type { AnalysisSpec, ExperimentSpec, MetricLimits, RolloutSpec, RolloutStep } from './spec.ts';
export { analyse, predictionColumns, bernoulliConfidenceSequence, dkwRadius, ANALYSIS_MAX_ROWS } from './analysis.ts';
export type { AnalysisRun, MetricResult, Verdict } from './analysis.ts';
export { experimentResult } from './experiment.ts';
export type { ExperimentResult, MetricComparison, ArmResult } from './experiment.ts';
