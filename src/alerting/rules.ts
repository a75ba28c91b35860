import type { Registry as PromRegistry } from 'prom-client';
import { z } from 'zod';
import { WardenError } from '../errors.ts';
import { checkLabelName, formatDuration, matcherText, matchesAll, parseDuration, parseMatchers, type Matcher } from './labels.ts';
import type { AlertCondition, AlertSource, Severity } from './types.ts';

export type RuleOp = '>' | '>=' | '<' | '<=' | '==' | '!=';
/** `value`: the sample as it is (gauges); `increase` / `rate`: growth of a counter since the previous evaluation. */
export type RuleFn = 'value' | 'increase' | 'rate';
export type RuleOrigin = 'builtin' | 'config' | 'custom';

/** An alert rule on one metric of Warden's registry, validated. */
export interface AlertRule {
  /** The alertname of the alerts it raises. */
  name: string;
  /** Metric (or histogram/summary series such as `…_count`) in the registry. */
  metric: string;
  /** Series of the metric the rule looks at. */
  labels: Matcher[];
  fn: RuleFn;
  op: RuleOp;
  threshold: number;
  /** How long the condition must hold before the alert fires, as written (`5m`). */
  for: string;
  forMs: number;
  severity: Severity;
  /** Templates: `{{ $labels.model }}` and `{{ $value }}` are filled in per series. */
  summary: string;
  description: string;
  /** Runbook path relative to the repository (`docs/runbooks/data-drift.md`) or an absolute URL. */
  runbook: string;
  /** A firing page inhibits tickets of the same deployment and the same inhibit group (default: the alertname). */
  inhibitGroup?: string;
  /** The metric label naming the deployment; copied into the alert's `deployment` label. Default `model`. */
  deploymentLabel: string;
}

/** A rule as the API lists it: where it comes from, and whether a later one of the same name replaces it. */
export interface RuleView extends AlertRule {
  origin: RuleOrigin;
}

const ruleSchema = z
  .object({
    name: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must match [a-zA-Z_][a-zA-Z0-9_]*').max(128),
    metric: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'must be a Prometheus metric name').max(256),
    labels: z.unknown().optional(),
    fn: z.enum(['value', 'increase', 'rate']).default('value'),
    op: z.enum(['>', '>=', '<', '<=', '==', '!=']),
    threshold: z.number().finite(),
    for: z.union([z.string(), z.number().nonnegative()]).default('0s'),
    severity: z.enum(['page', 'ticket']),
    summary: z.string().min(1).max(1024),
    description: z.string().max(8192).optional(),
    runbook: z.string().min(1).max(2048),
    inhibitGroup: z.string().min(1).max(128).optional(),
    deploymentLabel: z.string().optional(),
  })
  .strict();

function issueText(err: z.ZodError, where: string): string {
  return err.issues
    .map((i) => {
      const at = [where, ...i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))].join('').replace(/\.\[/g, '[');
      if (i.code === 'unrecognized_keys') return `${at}: unknown key ${i.keys.join(', ')}`;
      return `${at}: ${i.message}`;
    })
    .join('; ');
}

/** Validates one rule (the YAML/JSON form); throws WARDEN_BAD_REQUEST naming the bad field. */
export function parseRule(raw: unknown, where = 'rule'): AlertRule {
  const r = ruleSchema.safeParse(raw);
  if (!r.success) throw new WardenError('WARDEN_BAD_REQUEST', issueText(r.error, where));
  const d = r.data;
  const forMs = parseDuration(d.for, `${where}.for`);
  const deploymentLabel = checkLabelName(d.deploymentLabel ?? 'model', `${where}.deploymentLabel`);
  return {
    name: d.name,
    metric: d.metric,
    labels: parseMatchers(d.labels, `${where}.labels`),
    fn: d.fn,
    op: d.op,
    threshold: d.threshold,
    for: typeof d.for === 'number' ? formatDuration(d.for) : d.for,
    forMs,
    severity: d.severity,
    summary: d.summary,
    description: d.description ?? '',
    runbook: d.runbook,
    ...(d.inhibitGroup !== undefined ? { inhibitGroup: d.inhibitGroup } : {}),
    deploymentLabel,
  };
}

/** Validates a list of rules (`{rules: [...]}` or a bare list); names must be distinct. */
export function parseRules(raw: unknown, where = 'rules'): AlertRule[] {
  const list = Array.isArray(raw) ? raw : raw && typeof raw === 'object' && Array.isArray((raw as { rules?: unknown }).rules) ? (raw as { rules: unknown[] }).rules : undefined;
  if (!list) throw new WardenError('WARDEN_BAD_REQUEST', `${where} must be a list of rules or {"rules": [...]}`);
  if (list.length > 1000) throw new WardenError('WARDEN_BAD_REQUEST', `${where}: at most 1000 rules`);
  const rules = list.map((r, i) => parseRule(r, `${where}[${i}]`));
  const seen = new Set<string>();
  for (const r of rules) {
    if (seen.has(r.name)) throw new WardenError('WARDEN_BAD_REQUEST', `${where}: two rules are named ${r.name}; rule names must be distinct`);
    seen.add(r.name);
  }
  return rules;
}

/** A rule in the form a file or `PUT /api/v1/alerts/rules` takes (the inverse of `parseRule`). */
export function ruleInput(r: AlertRule): Record<string, unknown> {
  return {
    name: r.name,
    metric: r.metric,
    ...(r.labels.length ? { labels: r.labels.map(matcherText) } : {}),
    fn: r.fn,
    op: r.op,
    threshold: r.threshold,
    for: r.for,
    severity: r.severity,
    summary: r.summary,
    ...(r.description ? { description: r.description } : {}),
    runbook: r.runbook,
    ...(r.inhibitGroup ? { inhibitGroup: r.inhibitGroup } : {}),
    ...(r.deploymentLabel !== 'model' ? { deploymentLabel: r.deploymentLabel } : {}),
  };
}

const runbook = (file: string) => `docs/runbooks/${file}`;

/**
 * Built-in rules on the metrics Warden computes itself. Each points to a runbook; a config or custom rule of the
 * same name replaces one, and `alerting.builtinRules: false` turns them all off.
 */
export const BUILTIN_RULES: readonly AlertRule[] = parseRules(
  [
    {
      name: 'WardenDataDrift',
      metric: 'warden_dataset_drift',
      op: '==',
      threshold: 1,
      severity: 'ticket',
      summary: 'Data drift on {{ $labels.model }} v{{ $labels.version }}',
      description: 'The share of drifted input features reached the dataset drift threshold in the latest monitoring window of {{ $labels.model }} v{{ $labels.version }}.',
      runbook: runbook('data-drift.md'),
    },
    {
      name: 'WardenMultivariateDrift',
      metric: 'warden_multivariate_drift',
      op: '==',
      threshold: 1,
      severity: 'ticket',
      summary: 'Multivariate drift on {{ $labels.model }} v{{ $labels.version }}',
      description: 'The PCA reconstruction error of the latest window left the band learned from the reference: the joint distribution of the inputs changed even where single features may not.',
      runbook: runbook('data-drift.md'),
    },
    {
      name: 'WardenEmbeddingDrift',
      metric: 'warden_embedding_drift',
      op: '==',
      threshold: 1,
      severity: 'ticket',
      summary: 'Embedding {{ $labels.embedding }} drifted on {{ $labels.model }} v{{ $labels.version }}',
      description: 'A classifier told the latest window\'s embeddings from the reference\'s better than the threshold allows.',
      runbook: runbook('embedding-drift.md'),
    },
    {
      name: 'WardenDataQualityFailed',
      metric: 'warden_data_quality_failed',
      op: '==',
      threshold: 1,
      severity: 'ticket',
      summary: 'Data quality check {{ $labels.metric }} failed on {{ $labels.model }} column {{ $labels.column }}',
      description: 'The data-quality metric {{ $labels.metric }} of column {{ $labels.column }} broke its threshold in the latest window (missing values, NaN/Inf, schema or range): an upstream pipeline may be failing.',
      runbook: runbook('pipeline-failure-nans.md'),
    },
    {
      name: 'WardenConceptDrift',
      metric: 'warden_concept_drift_alert',
      labels: ['indicator!=machine_label_share'],
      op: '==',
      threshold: 1,
      severity: 'ticket',
      summary: 'Concept drift ({{ $labels.indicator }}) on {{ $labels.model }} v{{ $labels.version }}',
      description: 'The concept-drift indicator {{ $labels.indicator }} (label shift or prediction/label mismatch rate) broke its threshold in the latest window with labels.',
      runbook: runbook('concept-drift.md'),
      inhibitGroup: 'model-performance',
    },
    {
      name: 'WardenFeedbackLoop',
      metric: 'warden_concept_drift_alert',
      labels: { indicator: 'machine_label_share' },
      op: '==',
      threshold: 1,
      severity: 'ticket',
      summary: 'Machine-made labels dominate {{ $labels.model }} v{{ $labels.version }}',
      description: 'The share of labels produced by a model broke its threshold: the model may be learning from its own predictions.',
      runbook: runbook('feedback-loop-bias.md'),
    },
    {
      name: 'WardenLivePerformanceBelowOffline',
      metric: 'warden_performance_offline_healthy',
      op: '==',
      threshold: 0,
      severity: 'page',
      summary: 'Live {{ $labels.metric }} of {{ $labels.model }} v{{ $labels.version }} is below its offline value',
      description: 'The live primary metric ({{ $labels.metric }}) measured from joined labels fell outside the tolerance of the value recorded at training time.',
      runbook: runbook('training-serving-skew.md'),
      inhibitGroup: 'model-performance',
    },
    {
      name: 'WardenFeatureSkew',
      metric: 'warden_feature_skew_rate',
      op: '>',
      threshold: 0.05,
      severity: 'ticket',
      summary: 'Feature {{ $labels.feature }} of view {{ $labels.view }} is served differently from the offline store',
      description: 'In {{ $value }} of the sampled served rows, {{ $labels.feature }} differs from the offline store\'s point-in-time value for the same entity and time: training and serving see different values (a unit change, a source rewritten but not materialized again).',
      runbook: runbook('training-serving-skew.md'),
    },
    {
      name: 'WardenReviewQueueStale',
      metric: 'warden_review_oldest_age_seconds',
      op: '>',
      threshold: 3600,
      for: '5m',
      severity: 'ticket',
      summary: 'Review queue of {{ $labels.model }} has items older than an hour',
      description: 'The oldest unlabelled review item of {{ $labels.model }} is {{ $value }} seconds old: human labels are not keeping up, so live performance and retraining go without them.',
      runbook: runbook('resource-exhaustion.md'),
    },
    {
      name: 'WardenPredictionLogDropping',
      metric: 'warden_prediction_log_dropped_total',
      fn: 'increase',
      op: '>',
      threshold: 0,
      severity: 'ticket',
      summary: 'Prediction events are being dropped ({{ $labels.reason }})',
      description: '{{ $value }} prediction events were dropped since the previous evaluation (reason {{ $labels.reason }}): the log queue is full or the event store is failing, so monitoring and label joins miss traffic.',
      runbook: runbook('resource-exhaustion.md'),
    },
  ],
  'builtin rules',
);

/**
 * The names a rule's `metric` can take on this registry, as /metrics writes its samples: a counter or gauge by its
 * name, a histogram as `_bucket`, `_sum` and `_count`, a summary by its name (quantiles), `_sum` and `_count`. Read
 * from the registered metrics rather than their samples, so a labelled metric counts before its first series.
 */
export function exportedMetricNames(registry: PromRegistry): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of registry.getMetricsAsArray()) {
    // prom-client's typings declare a numeric enum, but the objects carry the text type ('counter', 'histogram', …).
    const type = String(m.type as unknown);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) out.set(`${m.name}${suffix}`, type);
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) out.set(`${m.name}${suffix}`, type);
    else out.set(m.name, type);
  }
  return out;
}

/** Levenshtein distance, for "did you mean" on a mistyped metric name (names are short: O(n·m) is nothing). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * Why the rule's metric is not one this registry exports (it would match no series and never fire), with what to
 * write instead; undefined when it is exported.
 */
export function unknownMetric(rule: Pick<AlertRule, 'metric'>, names: ReadonlyMap<string, string>, where: string): string | undefined {
  const metric = rule.metric;
  if (names.has(metric)) return undefined;
  const hints: string[] = [];
  if (names.has(`${metric}_count`)) hints.push(`${metric} is a ${names.get(`${metric}_count`)}: use ${metric}_count, ${metric}_sum or ${metric}_bucket`);
  if (names.has(`${metric}_total`)) hints.push(`did you mean ${metric}_total? (counters end in _total)`);
  else {
    const near = [...names.keys()].filter((n) => editDistance(n, metric) <= 2);
    if (near.length) hints.push(`did you mean ${near.join(' or ')}?`);
  }
  const own = [...names.keys()].filter((n) => n.startsWith('warden_')).sort();
  const others = names.size - own.length;
  return (
    `${where}: metric ${metric} is not exported by this server, so the rule would match no series and never fire` +
    (hints.length ? `; ${hints.join('; ')}` : '') +
    `${hints.at(-1)?.endsWith('?') ? '' : '.'} Metrics it can use: ${own.join(', ')}${others ? ` (and ${others} process_* / nodejs_* metrics; see GET /metrics)` : ''}`
  );
}

/** Replaces `{{ $labels.name }}` and `{{ $value }}` (Prometheus alert template syntax, the common subset). */
export function expandTemplate(text: string, labels: Readonly<Record<string, string>>, value: number | undefined): string {
  return text
    .replace(/\{\{\s*\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_m, name: string) => labels[name] ?? '')
    .replace(/\{\{\s*\$value\s*\}\}/g, () => (value === undefined ? '' : String(Number.isInteger(value) ? value : Number(value.toPrecision(6)))));
}

/** Applies the rule's comparison; NaN never holds. */
export function compare(x: number, op: RuleOp, threshold: number): boolean {
  if (Number.isNaN(x)) return false;
  switch (op) {
    case '>':
      return x > threshold;
    case '>=':
      return x >= threshold;
    case '<':
      return x < threshold;
    case '<=':
      return x <= threshold;
    case '==':
      return x === threshold;
    case '!=':
      return x !== threshold;
  }
}

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** Reads the registry into series by sample name (histograms give `_bucket`, `_sum` and `_count` series). */
async function readSamples(registry: PromRegistry): Promise<Map<string, Sample[]>> {
  const out = new Map<string, Sample[]>();
  for (const m of await registry.getMetricsAsJSON()) {
    for (const v of m.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
      const name = v.metricName ?? m.name;
      const labels: Record<string, string> = {};
      for (const [k, x] of Object.entries(v.labels ?? {})) labels[k] = String(x);
      let list = out.get(name);
      if (!list) out.set(name, (list = []));
      list.push({ labels, value: v.value });
    }
  }
  return out;
}

const seriesKey = (rule: string, labels: Record<string, string>) =>
  `${rule}\u0000${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\u0001')}`;

/**
 * The alert source of metric rules: evaluates each rule against the prom-client registry Warden exports on
 * `/metrics`, one condition per matching series. `increase` and `rate` compare a counter with its value at the
 * previous evaluation (a drop is a counter reset, counted from zero). A series that appeared since the previous
 * evaluation counts from zero, as a new counter series starts at 0 (prom-client creates it on its first `inc`),
 * so a first-ever event still fires; a rule evaluated for the first time (at start, or just added) has nothing
 * to compare with and reads 0.
 */
export class MetricRuleSource implements AlertSource {
  readonly name = 'rules';
  private last = new Map<string, { value: number; at: number }>();
  /** Counter rules evaluated at the previous evaluation, by identity, and when that was. */
  private counterRules = new Set<string>();
  private lastAt: number | undefined;

  constructor(
    private readonly registry: PromRegistry,
    private readonly rules: () => readonly AlertRule[],
  ) {}

  async evaluate(now: number): Promise<AlertCondition[]> {
    const samples = await readSamples(this.registry);
    const seen = new Map<string, { value: number; at: number }>();
    const counterRules = new Set<string>();
    const out: AlertCondition[] = [];
    for (const rule of this.rules()) {
      const identity = rule.fn === 'value' ? '' : JSON.stringify([rule.name, rule.metric, rule.fn, rule.labels]);
      if (identity) counterRules.add(identity);
      const known = identity !== '' && this.counterRules.has(identity) && this.lastAt !== undefined;
      for (const s of samples.get(rule.metric) ?? []) {
        if (!matchesAll(rule.labels, s.labels)) continue;
        let x = s.value;
        if (rule.fn !== 'value') {
          const key = seriesKey(rule.name, s.labels);
          const prev = this.last.get(key) ?? (known ? { value: 0, at: this.lastAt! } : undefined);
          seen.set(key, { value: s.value, at: now });
          const increase = prev === undefined ? 0 : s.value >= prev.value ? s.value - prev.value : s.value;
          x = rule.fn === 'increase' ? increase : prev === undefined || now <= prev.at ? 0 : increase / ((now - prev.at) / 1000);
        }
        const labels: Record<string, string> = { ...s.labels };
        const deployment = s.labels[rule.deploymentLabel];
        if (deployment !== undefined && labels.deployment === undefined) labels.deployment = deployment;
        if (rule.inhibitGroup) labels.inhibit_group = rule.inhibitGroup;
        out.push({
          alertname: rule.name,
          labels,
          severity: rule.severity,
          active: compare(x, rule.op, rule.threshold),
          value: x,
          forMs: rule.forMs,
          summary: expandTemplate(rule.summary, labels, x),
          description: expandTemplate(rule.description, labels, x),
          runbookUrl: rule.runbook,
        });
      }
    }
    // Series that disappeared (or rules removed) forget their previous value.
    this.last = seen;
    this.counterRules = counterRules;
    this.lastAt = now;
    return out;
  }
}
