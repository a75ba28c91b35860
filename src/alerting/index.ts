/**
 * Alerting: alert sources (rules on Warden's own metrics, and sources other domains add, such as SLO burn
 * rates) → a pure state machine per alert (inactive → pending → firing → resolved) → grouping, deduplication,
 * silences, inhibition and suppression during rollouts → notifiers (Alertmanager-format webhook, Alertmanager
 * v2 API, Slack) with runbook links, every transition and delivery kept in the store's alert history. This
 * module is the only entry point other folders import from.
 */
export type { AlertCondition, AlertSource, Severity } from './types.ts';
export { AlertingService } from './service.ts';
export type { AlertFilter, AlertView, AlertingConfig, AlertingServiceDeps, EvaluationReport, SilenceView, SuppressionView } from './service.ts';
export { AlertEngine, inhibitGroupOf, silenceActive, suppressionActive } from './engine.ts';
export type {
  Alert,
  AlertAnnotations,
  AlertPhase,
  AlertState,
  AlertStatus,
  EngineOptions,
  EvaluationOutcome,
  MuteContext,
  Notification,
  NotifiedAlert,
  ReceiverRoute,
  Silence,
  SourceResult,
  Suppression,
  Transition,
} from './engine.ts';
export { BUILTIN_RULES, MetricRuleSource, compare, expandTemplate, exportedMetricNames, parseRule, parseRules, ruleInput, unknownMetric } from './rules.ts';
export type { AlertRule, RuleFn, RuleOp, RuleOrigin, RuleView } from './rules.ts';
export { fingerprint, formatDuration, invalidMatcher, labelSetText, matcherText, matches, matchesAll, parseDuration, parseMatcherText, parseMatchers } from './labels.ts';
export { MAX_PATTERN_LENGTH, MAX_REPEAT_TOTAL, compileLabelRegex } from './regex.ts';
export type { LabelRegex } from './regex.ts';
export type { Matcher } from './labels.ts';
export { ZERO_TIME, alertmanagerPayload, deliver, generatorUrl, requestFor, slackPayload, webhookPayload } from './notifiers.ts';
export type { DeliveryResult, PostableAlert, ReceiverConfig, ReceiverType, WebhookPayload } from './notifiers.ts';
