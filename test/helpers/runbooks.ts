/** Every runbook, by file name under docs/runbooks/ (issue 5 asked for the first ten). */
export const RUNBOOKS: readonly string[] = [
  'data-drift.md',
  'concept-drift.md',
  'latency-spike.md',
  'training-serving-skew.md',
  'feedback-loop-bias.md',
  'pipeline-failure-nans.md',
  'resource-exhaustion.md',
  'security-anomaly.md',
  'embedding-drift.md',
  'cost-runaway.md',
  'rollout-aborted.md',
  'retrain-gate-failed.md',
  'retrain-failed.md',
];
