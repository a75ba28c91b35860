/**
 * Metric rules against a real prom-client registry holding Warden's own metrics: built-in rules on the monitoring
 * gauges, the review queue gauge and the prediction-log drop counter (`increase`), custom rules with matchers,
 * templates, and validation that names the bad field.
 */
import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  BUILTIN_RULES,
  MetricRuleSource,
  parseDuration,
  parseMatcherText,
  parseRule,
  parseRules,
  ruleInput,
  type AlertRule,
} from '../../src/alerting/index.ts';
import { createMonitoringMetrics } from '../../src/monitoring/metrics.ts';
import { createMetrics } from '../../src/telemetry/index.ts';
import { RUNBOOKS } from '../helpers/runbooks.ts';


function setup() {
  const registry = new Registry();
  const warden = createMetrics(registry, { defaultMetrics: false });
  const monitoring = createMonitoringMetrics(registry);
  const reviewAge = new Gauge({ name: 'warden_review_oldest_age_seconds', help: 'h', labelNames: ['model'], registers: [registry] });
  return { registry, warden, monitoring, reviewAge };
}

describe('built-in rules', () => {
  it('cover drift, quality, concept drift, live performance, review queue, log drops and vector drift, each with a runbook in docs/runbooks', () => {
    const byMetric = Object.fromEntries(BUILTIN_RULES.map((r) => [r.name, `${r.fn}:${r.metric} ${r.op} ${r.threshold} ${r.severity}`]));
    expect(byMetric).toMatchObject({
      WardenDataDrift: 'value:warden_dataset_drift == 1 ticket',
      WardenDataQualityFailed: 'value:warden_data_quality_failed == 1 ticket',
      WardenConceptDrift: 'value:warden_concept_drift_alert == 1 ticket',
      WardenLivePerformanceBelowOffline: 'value:warden_performance_offline_healthy == 0 page',
      WardenReviewQueueStale: 'value:warden_review_oldest_age_seconds > 3600 ticket',
      WardenPredictionLogDropping: 'increase:warden_prediction_log_dropped_total > 0 ticket',
      WardenEmbeddingDrift: 'value:warden_embedding_drift == 1 ticket',
      WardenMultivariateDrift: 'value:warden_multivariate_drift == 1 ticket',
    });
    for (const r of BUILTIN_RULES) {
      expect(r.runbook).toMatch(/^docs\/runbooks\/[a-z-]+\.md$/);
      expect(RUNBOOKS).toContain(r.runbook.slice('docs/runbooks/'.length));
      expect(r.summary.length).toBeGreaterThan(0);
      expect(r.description.length).toBeGreaterThan(0);
    }
  });

  it('raise a drift ticket per model version from the gauge monitoring sets, with deployment from the model label', async () => {
    const { registry, monitoring } = setup();
    monitoring.datasetDrift.set({ model: 'fraud', version: '3' }, 1);
    monitoring.datasetDrift.set({ model: 'churn', version: '1' }, 0);
    const source = new MetricRuleSource(registry, () => BUILTIN_RULES);
    const conds = (await source.evaluate(0)).filter((c) => c.alertname === 'WardenDataDrift');
    expect(conds).toHaveLength(2);
    const fraud = conds.find((c) => c.labels.model === 'fraud')!;
    expect(fraud).toMatchObject({
      active: true,
      value: 1,
      severity: 'ticket',
      labels: { model: 'fraud', version: '3', deployment: 'fraud' },
      summary: 'Data drift on fraud v3',
      runbookUrl: 'docs/runbooks/data-drift.md',
    });
    expect(conds.find((c) => c.labels.model === 'churn')!.active).toBe(false);
  });

  it('split concept drift from machine-label feedback by the indicator label, and page when live performance is unhealthy', async () => {
    const { registry, monitoring } = setup();
    for (const indicator of ['label_shift', 'mismatch_rate', 'machine_label_share']) monitoring.conceptAlert.set({ model: 'm', version: '1', indicator }, 1);
    monitoring.offlineHealthy.set({ model: 'm', version: '1', metric: 'accuracy' }, 0);
    const conds = await new MetricRuleSource(registry, () => BUILTIN_RULES).evaluate(0);
    const names = (n: string) => conds.filter((c) => c.alertname === n).map((c) => c.labels.indicator ?? c.labels.metric);
    expect(names('WardenConceptDrift').sort()).toEqual(['label_shift', 'mismatch_rate']);
    expect(names('WardenFeedbackLoop')).toEqual(['machine_label_share']);
    const page = conds.find((c) => c.alertname === 'WardenLivePerformanceBelowOffline')!;
    expect(page).toMatchObject({ active: true, severity: 'page', runbookUrl: 'docs/runbooks/training-serving-skew.md' });
    // Page and concept-drift ticket share an inhibit group, so the page mutes the ticket.
    expect(page.labels.inhibit_group).toBe('model-performance');
    expect(conds.find((c) => c.alertname === 'WardenConceptDrift')!.labels.inhibit_group).toBe('model-performance');
  });

  it('hold the review-queue alert for 5 minutes and fill {{ $value }}', async () => {
    const { registry, reviewAge } = setup();
    reviewAge.set({ model: 'm' }, 7200);
    const c = (await new MetricRuleSource(registry, () => BUILTIN_RULES).evaluate(0)).find((x) => x.alertname === 'WardenReviewQueueStale')!;
    expect(c).toMatchObject({ active: true, forMs: 5 * 60_000, labels: { deployment: 'm' } });
    expect(c.description).toContain('is 7200 seconds old');
  });

  it('alert on prediction-log drops by their increase since the previous evaluation (0 on the first one; a reset counts from zero)', async () => {
    const { registry, warden } = setup();
    const source = new MetricRuleSource(registry, () => BUILTIN_RULES.filter((r) => r.name === 'WardenPredictionLogDropping'));
    warden.predictionLogDropped.inc({ reason: 'queue_full' }, 5);
    let [c] = await source.evaluate(0);
    expect(c).toMatchObject({ active: false, value: 0, labels: { reason: 'queue_full' } });
    expect(c!.labels.deployment).toBeUndefined();
    [c] = await source.evaluate(15_000);
    expect(c).toMatchObject({ active: false, value: 0 });
    warden.predictionLogDropped.inc({ reason: 'queue_full' }, 3);
    [c] = await source.evaluate(30_000);
    expect(c).toMatchObject({ active: true, value: 3, summary: 'Prediction events are being dropped (queue_full)' });
    [c] = await source.evaluate(45_000);
    expect(c).toMatchObject({ active: false, value: 0 });
    warden.predictionLogDropped.reset();
    warden.predictionLogDropped.inc({ reason: 'queue_full' }, 2);
    [c] = await source.evaluate(60_000);
    expect(c).toMatchObject({ active: true, value: 2 });
  });

  it('count a series that first appears between two evaluations from zero, so the first-ever drop fires', async () => {
    const { registry, warden } = setup();
    const source = new MetricRuleSource(registry, () => BUILTIN_RULES.filter((r) => r.name === 'WardenPredictionLogDropping'));
    expect(await source.evaluate(0)).toEqual([]);
    warden.predictionLogDropped.inc({ reason: 'store_error' }, 1);
    const [c] = await source.evaluate(15_000);
    expect(c).toMatchObject({ active: true, value: 1, labels: { reason: 'store_error' } });
  });

  it('read 0 for a counter rule added while its series already has a value', async () => {
    const { registry, warden } = setup();
    warden.predictionLogDropped.inc({ reason: 'queue_full' }, 50);
    let rules: AlertRule[] = [];
    const source = new MetricRuleSource(registry, () => rules);
    await source.evaluate(0);
    rules = BUILTIN_RULES.filter((r) => r.name === 'WardenPredictionLogDropping');
    const [c] = await source.evaluate(15_000);
    expect(c).toMatchObject({ active: false, value: 0 });
  });
});

describe('custom rules', () => {
  it('match series by equality, negation and regex, read histogram _count series, and compute rate per second', async () => {
    const { registry, warden } = setup();
    warden.inferenceRequests.inc({ model: 'a', version: '1', outcome: 'server_error', protocol: 'oip' }, 10);
    warden.inferenceRequests.inc({ model: 'b', version: '1', outcome: 'ok', protocol: 'oip' }, 10);
    warden.inferenceDuration.observe({ model: 'a', version: '1', outcome: 'ok' }, 0.2);
    const rules: AlertRule[] = parseRules([
      { name: 'Errors', metric: 'warden_inference_requests_total', labels: ['outcome=~"server_error|client_error"', 'model!=zzz'], fn: 'rate', op: '>', threshold: 0.5, severity: 'page', summary: '{{ $labels.model }} errors at {{ $value }}/s', runbook: 'docs/runbooks/latency-spike.md' },
      { name: 'Traffic', metric: 'warden_inference_duration_seconds_count', labels: { model: 'a' }, op: '>=', threshold: 1, severity: 'ticket', summary: 's', runbook: 'https://runbooks.example/x' },
    ]);
    const source = new MetricRuleSource(registry, () => rules);
    let conds = await source.evaluate(0);
    expect(conds.filter((c) => c.alertname === 'Errors').map((c) => [c.labels.model, c.active])).toEqual([['a', false]]);
    expect(conds.find((c) => c.alertname === 'Traffic')).toMatchObject({ active: true, value: 1, runbookUrl: 'https://runbooks.example/x' });
    warden.inferenceRequests.inc({ model: 'a', version: '1', outcome: 'server_error', protocol: 'oip' }, 20);
    conds = await source.evaluate(10_000);
    expect(conds.find((c) => c.alertname === 'Errors')).toMatchObject({ active: true, value: 2, summary: 'a errors at 2/s', severity: 'page' });
  });

  it('validate with messages naming the bad field', () => {
    const ok = { name: 'X', metric: 'm', op: '>', threshold: 1, severity: 'ticket', summary: 's', runbook: 'r' };
    expect(() => parseRule({ ...ok, op: '=>' }, 'rules[0]')).toThrow(/rules\[0\]\.op/);
    expect(() => parseRule({ ...ok, severity: 'email' }, 'rules[0]')).toThrow(/rules\[0\]\.severity/);
    expect(() => parseRule({ ...ok, for: '5 minutes' }, 'rules[0]')).toThrow(/rules\[0\]\.for/);
    expect(() => parseRule({ ...ok, name: 'bad name' })).toThrow(/name/);
    expect(() => parseRule({ ...ok, extra: 1 })).toThrow(/unknown key extra/);
    expect(() => parseRule({ ...ok, labels: ['model=~"("'] })).toThrow(/invalid regular expression/);
    expect(() => parseRules([ok, ok])).toThrow(/two rules are named X/);
    const r = parseRule({ ...ok, for: '1h30m', labels: { model: 'a' }, inhibitGroup: 'g' });
    expect(r.forMs).toBe(90 * 60_000);
    expect(parseRule(ruleInput(r))).toEqual(r);
  });

  it('parse durations and matchers as Prometheus and Alertmanager write them', () => {
    expect(parseDuration('30s', 'x')).toBe(30_000);
    expect(parseDuration('1h30m', 'x')).toBe(5_400_000);
    expect(parseDuration('0', 'x')).toBe(0);
    expect(parseDuration('250ms', 'x')).toBe(250);
    expect(() => parseDuration('5', 'x')).toThrow();
    expect(parseMatcherText('deployment="fraud"')).toEqual({ name: 'deployment', value: 'fraud', isRegex: false, isEqual: true });
    expect(parseMatcherText('alertname!~Data.*')).toEqual({ name: 'alertname', value: 'Data.*', isRegex: true, isEqual: false });
    expect(() => parseMatcherText('no operator')).toThrow(/not a matcher/);
  });
});
