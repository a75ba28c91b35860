/**
 * SLOs: per-deployment service level objectives defined in slo.yaml (and through the API), SLIs recorded as
 * good/total counts per bucket — latency, availability and explanation coverage from the prediction log, accuracy, drift_free and
 * completeness from evaluated monitoring windows, cost from process CPU time — error budgets and the Google SRE
 * Workbook's multi-window, multi-burn-rate alerts as pure functions of a series and `now`, an alert source for
 * the alerting engine, and Prometheus recording and alerting rules for the SLIs /metrics can express.
 * This module is the only entry point other folders import from.
 */
export { SLI_KINDS, TRAFFIC_SLI_KINDS, WINDOW_SLI_KINDS, RUNBOOKS, describeSli, durationMs, parseSlo, parseSloFile, periodMs, sameSli } from './definition.ts';
export type { SliKind, SliSpec, SloDefinition, SloInput } from './definition.ts';
export {
  WORKBOOK_PERIOD_MS,
  WORKBOOK_WINDOWS,
  bucketMs,
  burnRate,
  burnWindows,
  errorBudget,
  multiWindowAlerts,
  scaledPeriodMs,
  windowCounts,
} from './burn-rate.ts';
export type { BurnAlert, BurnWindow, BurnWindowName, ErrorBudget, SliPoint, TimeOptions } from './burn-rate.ts';
export { codeStatus, costPer1k, errorStatus, requestCount, windowCount } from './sli.ts';
export type { DeploymentUsage, SliCount } from './sli.ts';
export { SloFile } from './slo-file.ts';
export type { SloFileState } from './slo-file.ts';
export { StoreSloSource } from './slo-store.ts';
export type { SloSource } from './slo-store.ts';
export { SloService } from './service.ts';
export type { SloRunResult, SloServiceDeps, SloStatus } from './service.ts';
export { SLO_ALERTNAME, SloAlertSource, sloConditions } from './alert-source.ts';
export type { SloReader } from './alert-source.ts';
export { latencyBucket, prometheusRules, promDuration, ratioRuleName } from './prometheus-rules.ts';
export type { ExportNote, PrometheusRulesOptions } from './prometheus-rules.ts';
