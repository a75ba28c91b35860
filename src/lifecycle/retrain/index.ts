/** Retraining: per-deployment policies, triggers with guardrails, stored jobs, the validation gate, delivery. */
export { RetrainService, RETRAIN_LEASE, RETRAIN_GATE_FAILED_ALERT, RETRAIN_FAILED_ALERT } from './service.ts';
export type { PolicyView, RetrainServiceDeps } from './service.ts';
export { parseRetrainPolicy, splitCommand, GATE_METRICS, BUILTIN_TRAINERS, MAX_TRAIN_ROWS } from './policy.ts';
export type { RetrainPolicy, MetricRule, Task } from './policy.ts';
export { runGate, metricChecks } from './gate.ts';
export type { GateCheck, GateReport } from './gate.ts';
export { evaluateTriggers } from './triggers.ts';
export type { TriggerEvaluation, TriggerCheck, GuardrailCheck } from './triggers.ts';
export { JobLog, runCommand, JOB_LOG_BYTES } from './command.ts';
