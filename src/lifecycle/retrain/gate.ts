import type { ModelSignature } from '../../storage/index.ts';
import { classificationMetrics, regressionMetrics } from '../trainer/metrics.ts';
import type { MetricRule, RetrainPolicy, Task } from './policy.ts';

/** One thing the gate checked: what was measured, against what, and whether it passed. */
export interface GateCheck {
  check: string;
  passed: boolean;
  value: number | null;
  /** The stable version's value where the check compares with it. */
  baseline?: number | null;
  /** The bound the value had to meet. */
  limit?: number | null;
  detail: string;
}

export interface GateReport {
  passed: boolean;
  holdoutRows: number;
  metrics: { candidate: Record<string, number>; stable: Record<string, number> };
  checks: GateCheck[];
  summary: string;
}

export interface GateInput {
  task: Task;
  /** The holdout's labels (0/1 for a binary task). */
  labels: Float64Array;
  /** Each version's output on the holdout rows: P(label = 1) for binary, the estimate for regression. */
  stable: Float32Array;
  candidate: Float32Array;
  /** Each holdout row's segment key (e.g. `season=3`), when the policy checks segments. */
  segments?: readonly string[];
  rules: RetrainPolicy['gate'];
  signatures: { stable: ModelSignature; candidate: ModelSignature };
  /** Signature differences from the stable version (rollouts' signatureDifferences). */
  signatureDifferences: readonly string[];
  /** The candidate's model-run latency, when the policy has a budget. */
  latency?: { p99Ms: number; runs: number };
}

const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(1) : Math.abs(x) >= 1 ? x.toFixed(3) : x.toPrecision(3));

export const scoreHoldout = (task: Task, labels: Float64Array, predictions: Float32Array): Record<string, number> =>
  task === 'binary' ? classificationMetrics(labels, predictions) : regressionMetrics(labels, predictions);

/**
 * MLflow's MetricThreshold, rule by rule: `threshold` bounds the candidate's value (≥ when greater is better, else ≤);
 * `minAbsoluteChange` and `minRelativeChange` require the candidate to beat the stable version by more than that much,
 * absolutely or as a share of |stable| (against a stable value of 0, any improvement). Each part is its own check.
 */
export function metricChecks(name: string, rule: MetricRule, candidate: number | undefined, baseline: number | undefined): GateCheck[] {
  const out: GateCheck[] = [];
  const dir = rule.greaterIsBetter ? 'higher' : 'lower';
  if (candidate === undefined || !Number.isFinite(candidate)) {
    return [{ check: `metric ${name}`, passed: false, value: null, detail: `${name} could not be computed on the holdout (e.g. ROC AUC of a holdout with one class)` }];
  }
  if (rule.threshold !== undefined) {
    const ok = rule.greaterIsBetter ? candidate >= rule.threshold : candidate <= rule.threshold;
    out.push({ check: `${name} threshold`, passed: ok, value: candidate, limit: rule.threshold, detail: `${name} ${fmt(candidate)}; must be ${rule.greaterIsBetter ? '≥' : '≤'} ${fmt(rule.threshold)} (${dir} is better)` });
  }
  const gain = baseline === undefined ? NaN : rule.greaterIsBetter ? candidate - baseline : baseline - candidate;
  if (rule.minAbsoluteChange !== undefined) {
    const ok = Number.isFinite(gain) && gain > rule.minAbsoluteChange;
    out.push({
      check: `${name} absolute change`,
      passed: ok,
      value: candidate,
      baseline: baseline ?? null,
      limit: rule.minAbsoluteChange,
      detail: `better than stable by ${Number.isFinite(gain) ? fmt(gain) : 'n/a'}; must be more than ${fmt(rule.minAbsoluteChange)}`,
    });
  }
  if (rule.minRelativeChange !== undefined) {
    const rel = baseline === undefined ? NaN : baseline === 0 ? (gain > 0 ? Infinity : 0) : gain / Math.abs(baseline);
    const ok = baseline !== undefined && (baseline === 0 ? gain > 0 : rel > rule.minRelativeChange);
    out.push({
      check: `${name} relative change`,
      passed: ok,
      value: candidate,
      baseline: baseline ?? null,
      limit: rule.minRelativeChange,
      detail: `better than stable by ${Number.isFinite(rel) ? `${(rel * 100).toFixed(2)} %` : baseline === 0 ? 'any amount (stable is 0)' : 'n/a'}; must be more than ${(rule.minRelativeChange * 100).toFixed(2)} %`,
    });
  }
  return out;
}

/**
 * The validation gate: the candidate against the stable version on the same recent labelled holdout. It passes only
 * when every check passes: the metric rules, the same signature, the latency budget, and no segment worse than the
 * margin. The report keeps every number either way.
 */
export function runGate(input: GateInput): GateReport {
  const candidate = scoreHoldout(input.task, input.labels, input.candidate);
  const stable = scoreHoldout(input.task, input.labels, input.stable);
  const checks: GateCheck[] = [];
  checks.push({
    check: 'signature',
    passed: input.signatureDifferences.length === 0,
    value: input.signatureDifferences.length,
    limit: 0,
    detail: input.signatureDifferences.length ? `differs from the stable version: ${input.signatureDifferences.join('; ')}` : 'the same inputs, outputs and named features as the stable version',
  });
  for (const [name, rule] of Object.entries(input.rules.metrics)) checks.push(...metricChecks(name, rule, candidate[name], stable[name]));
  if (input.rules.latencyBudgetMs !== undefined) {
    const l = input.latency;
    checks.push({
      check: 'latency',
      passed: l !== undefined && l.p99Ms <= input.rules.latencyBudgetMs,
      value: l?.p99Ms ?? null,
      limit: input.rules.latencyBudgetMs,
      detail: l ? `model run p99 ${fmt(l.p99Ms)} ms over ${l.runs} single-row runs; budget ${fmt(input.rules.latencyBudgetMs)} ms` : 'not measured',
    });
  }
  if (input.rules.segments && input.segments) checks.push(...segmentChecks(input));
  const failed = checks.filter((c) => !c.passed);
  const primary = input.task === 'binary' ? 'accuracy' : 'mae';
  const headline = `${primary} ${fmt(candidate[primary]!)} against stable ${fmt(stable[primary]!)} on ${input.labels.length} holdout rows`;
  return {
    passed: failed.length === 0,
    holdoutRows: input.labels.length,
    metrics: { candidate, stable },
    checks,
    summary: failed.length ? `failed ${failed.length} of ${checks.length} checks (${failed.map((c) => c.check).join(', ')}): ${headline}` : `passed ${checks.length} checks: ${headline}`,
  };
}

/**
 * No segment worse than the margin: per segment with enough holdout rows, the primary metric (accuracy, or MAE) of the
 * candidate may be worse than the stable version's by at most `maxDrop` of the stable value. A model that is better on
 * average but fails one season is stopped here.
 */
function segmentChecks(input: GateInput): GateCheck[] {
  const { maxDrop, minRows } = input.rules.segments!;
  const groups = new Map<string, number[]>();
  input.segments!.forEach((s, i) => {
    const g = groups.get(s);
    if (g) g.push(i);
    else if (groups.size < 1000) groups.set(s, [i]);
  });
  const primary = input.task === 'binary' ? 'accuracy' : 'mae';
  const greater = input.task === 'binary';
  const out: GateCheck[] = [];
  let worst: { key: string; drop: number; c: number; s: number; n: number } | undefined;
  let compared = 0;
  for (const [key, rows] of groups) {
    if (rows.length < minRows) continue;
    compared++;
    const labels = Float64Array.from(rows, (i) => input.labels[i]!);
    const c = scoreHoldout(input.task, labels, Float32Array.from(rows, (i) => input.candidate[i]!))[primary]!;
    const s = scoreHoldout(input.task, labels, Float32Array.from(rows, (i) => input.stable[i]!))[primary]!;
    const drop = s === 0 ? (greater ? s - c : c - s) : (greater ? s - c : c - s) / Math.abs(s);
    if (!worst || drop > worst.drop) worst = { key, drop, c, s, n: rows.length };
  }
  if (!worst) {
    out.push({ check: 'segments', passed: true, value: null, limit: maxDrop, detail: `no segment has ${minRows} holdout rows; nothing to compare` });
    return out;
  }
  out.push({
    check: 'segments',
    passed: worst.drop <= maxDrop,
    value: worst.drop,
    limit: maxDrop,
    baseline: worst.s,
    detail: `worst of ${compared} segments: ${worst.key || '(all)'} (${worst.n} rows), ${primary} ${fmt(worst.c)} against stable ${fmt(worst.s)}: ${worst.drop > 0 ? `${(worst.drop * 100).toFixed(1)} % worse` : `${(-worst.drop * 100).toFixed(1)} % better`}; at most ${(maxDrop * 100).toFixed(1)} % worse allowed`,
  });
  return out;
}
