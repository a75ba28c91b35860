import { formatDuration, parseDuration } from '../alerting/index.ts';
import { WardenError } from '../errors.ts';
import type { RolloutStrategy } from '../storage/index.ts';

/** One step of a rollout: the candidate's share of traffic, the share mirrored to it, and how long to hold. */
export interface RolloutStep {
  /** Share of requests the candidate answers, 0–99 (100 is the promotion that ends the rollout). */
  weight: number;
  /** Share of the stable version's requests also run on the candidate as shadow, 0–100. */
  mirror: number;
  /** How long the step lasts before it may advance (when its analysis succeeds); null holds it until promoted. */
  pauseMs: number | null;
}

/** Limits of one metric's check; every metric compares the candidate with the stable version. */
export interface MetricLimits {
  errorRate: { enabled: boolean; maxIncrease: number };
  latencyP99: { enabled: boolean; maxIncrease: number; slackMs: number };
  predictionDistance: { enabled: boolean; max: number };
  agreement: { enabled: boolean; min: number; tolerance: number };
  accuracy: { enabled: boolean; maxDrop: number };
  estimatedAccuracy: { enabled: boolean; maxDrop: number };
}

export interface AnalysisSpec {
  intervalMs: number;
  /** Rows (or requests) per side below which a metric is inconclusive. */
  minSamples: number;
  alpha: number;
  /** Failed runs tolerated within a step (Argo's failureLimit); one more aborts the rollout. */
  failureLimit: number;
  /** Inconclusive runs tolerated within a step after its pause has elapsed (Argo's inconclusiveLimit); one more pauses it for a human. */
  inconclusiveLimit: number;
  /** Sequential sample-ratio-mismatch p-value below which the split is not trusted. */
  srmAlpha: number;
  metrics: MetricLimits;
}

export interface ExperimentSpec {
  /** Share of callers (by key) assigned to the candidate arm. */
  weight: number;
  /** Outcome metrics (names posted to /api/v1/outcomes) tested per arm; `accuracy` reads labels. */
  metrics: string[];
  correction: 'holm' | 'bh';
  alpha: number;
  /** Smallest effect worth detecting, as a relative change of each metric's stable mean (0.05 = 5 %). */
  mde: number;
  power: number;
  unkeyed: 'reject' | 'stable';
  /** Salt of the assignment hash: a new experiment reshuffles callers. */
  salt: string;
}

export interface RolloutSpec {
  strategy: RolloutStrategy;
  steps: RolloutStep[];
  analysis: AnalysisSpec;
  experiment?: ExperimentSpec;
  /** Abort when a page-severity alert of the deployment fires (an SLO burning its budget fast). */
  abortOnPage: boolean;
}

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/**
 * The defaults, stated next to Argo Rollouts' and Flagger's in docs/rollouts.md. Canary: 10 → 25 → 50 % with five
 * minutes per step, analysed every 30 s; a step advances only once its pause has elapsed and the last run succeeded.
 */
export const DEFAULT_CANARY_STEPS: readonly RolloutStep[] = [
  { weight: 10, mirror: 0, pauseMs: 5 * 60_000 },
  { weight: 25, mirror: 0, pauseMs: 5 * 60_000 },
  { weight: 50, mirror: 0, pauseMs: 5 * 60_000 },
];

export const DEFAULT_ANALYSIS: AnalysisSpec = {
  intervalMs: 30_000,
  minSamples: 100,
  alpha: 0.05,
  failureLimit: 0,
  inconclusiveLimit: 20,
  srmAlpha: 0.001,
  metrics: {
    errorRate: { enabled: true, maxIncrease: 0.01 },
    latencyP99: { enabled: true, maxIncrease: 0.2, slackMs: 5 },
    predictionDistance: { enabled: true, max: 0.2 },
    // Regressors: half a standard deviation of the stable predictions. At 0.1 a routine retrain of the demo's model
    // agreed on 45 % of hours; at 0.5 on 99.6 %, and the broken (°C) candidate on 0.1 % (docs/rollouts.md, the demo).
    agreement: { enabled: true, min: 0.9, tolerance: 0.5 },
    accuracy: { enabled: true, maxDrop: 0.02 },
    estimatedAccuracy: { enabled: true, maxDrop: 0.05 },
  },
};

type Obj = Record<string, unknown>;

function obj(v: unknown, where: string): Obj {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw bad(`${where} must be an object`);
  return v as Obj;
}

function known(o: Obj, keys: readonly string[], where: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw bad(`${where}: unknown field "${k.slice(0, 40)}"; expected ${keys.join(', ')}`);
}

function num(v: unknown, where: string, min: number, max: number, dflt: number, integer = false): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw bad(`${where} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${JSON.stringify(v)?.slice(0, 40)}`);
  }
  return v;
}

function bool(v: unknown, where: string, dflt: boolean): boolean {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw bad(`${where} must be true or false`);
  return v;
}

function duration(v: unknown, where: string): number {
  const ms = parseDuration(v, where);
  if (ms > 30 * 86_400_000) throw bad(`${where} may be at most 30d`);
  return ms;
}

function steps(raw: unknown, strategy: RolloutStrategy, o: Obj): RolloutStep[] {
  if (strategy === 'shadow') {
    if (raw !== undefined) throw bad('a shadow rollout has no steps; set "mirror" (the share of traffic copied to the candidate, default 100) and promote or abort it');
    const mirror = num(o.mirror, 'mirror', 1, 100, 100);
    return [{ weight: 0, mirror, pauseMs: null }];
  }
  if (strategy === 'ab') {
    if (raw !== undefined) throw bad('an A/B experiment has no steps; set experiment.weight (the share of callers on the candidate)');
    return [{ weight: 0, mirror: 0, pauseMs: null }];
  }
  if (raw === undefined) return DEFAULT_CANARY_STEPS.map((s) => ({ ...s }));
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 20) throw bad('steps must be a list of 1 to 20 steps such as {"weight": 10, "pause": "5m"}');
  let last = -1;
  return raw.map((s, i) => {
    const where = `steps[${i}]`;
    const x = obj(s, where);
    known(x, ['weight', 'mirror', 'pause'], where);
    if (x.weight === undefined) throw bad(`${where}.weight is required: the candidate's share of traffic, 0 to 99 (the rollout ends by promotion to 100)`);
    const weight = num(x.weight, `${where}.weight`, 0, 99, 0);
    if (weight < last) throw bad(`${where}.weight ${weight} is below the step before (${last}); weights may only grow`);
    last = weight;
    const mirror = num(x.mirror, `${where}.mirror`, 0, 100, 0);
    // A pause of "until promoted" is written null or omitted; Argo's `pause: {}`.
    const pauseMs = x.pause === undefined || x.pause === null ? null : duration(x.pause, `${where}.pause`);
    return { weight, mirror, pauseMs };
  });
}

function metricLimits(raw: unknown): MetricLimits {
  const m = obj(raw, 'analysis.metrics');
  const d = DEFAULT_ANALYSIS.metrics;
  known(m, Object.keys(d), 'analysis.metrics');
  const part = (name: keyof MetricLimits) => {
    const x = obj(m[name], `analysis.metrics.${name}`);
    known(x, ['enabled', ...Object.keys(d[name]).filter((k) => k !== 'enabled')], `analysis.metrics.${name}`);
    return x;
  };
  const e = part('errorRate');
  const l = part('latencyP99');
  const p = part('predictionDistance');
  const a = part('agreement');
  const acc = part('accuracy');
  const est = part('estimatedAccuracy');
  const w = (n: string) => `analysis.metrics.${n}`;
  return {
    errorRate: { enabled: bool(e.enabled, w('errorRate.enabled'), true), maxIncrease: num(e.maxIncrease, w('errorRate.maxIncrease'), 0, 1, d.errorRate.maxIncrease) },
    latencyP99: {
      enabled: bool(l.enabled, w('latencyP99.enabled'), true),
      maxIncrease: num(l.maxIncrease, w('latencyP99.maxIncrease'), 0, 100, d.latencyP99.maxIncrease),
      slackMs: num(l.slackMs, w('latencyP99.slackMs'), 0, 60_000, d.latencyP99.slackMs),
    },
    predictionDistance: { enabled: bool(p.enabled, w('predictionDistance.enabled'), true), max: num(p.max, w('predictionDistance.max'), 0.001, 1, d.predictionDistance.max) },
    agreement: {
      enabled: bool(a.enabled, w('agreement.enabled'), true),
      min: num(a.min, w('agreement.min'), 0, 1, d.agreement.min),
      tolerance: num(a.tolerance, w('agreement.tolerance'), 0, 10, d.agreement.tolerance),
    },
    accuracy: { enabled: bool(acc.enabled, w('accuracy.enabled'), true), maxDrop: num(acc.maxDrop, w('accuracy.maxDrop'), 0, 1e9, d.accuracy.maxDrop) },
    estimatedAccuracy: { enabled: bool(est.enabled, w('estimatedAccuracy.enabled'), true), maxDrop: num(est.maxDrop, w('estimatedAccuracy.maxDrop'), 0, 1, d.estimatedAccuracy.maxDrop) },
  };
}

function analysis(raw: unknown): AnalysisSpec {
  const a = obj(raw, 'analysis');
  known(a, ['interval', 'minSamples', 'alpha', 'failureLimit', 'inconclusiveLimit', 'srmAlpha', 'metrics'], 'analysis');
  const d = DEFAULT_ANALYSIS;
  const intervalMs = a.interval === undefined ? d.intervalMs : duration(a.interval, 'analysis.interval');
  if (intervalMs < 1000) throw bad('analysis.interval must be at least 1s');
  return {
    intervalMs,
    minSamples: num(a.minSamples, 'analysis.minSamples', 10, 1_000_000, d.minSamples, true),
    alpha: num(a.alpha, 'analysis.alpha', 0.0001, 0.5, d.alpha),
    failureLimit: num(a.failureLimit, 'analysis.failureLimit', 0, 1000, d.failureLimit, true),
    inconclusiveLimit: num(a.inconclusiveLimit, 'analysis.inconclusiveLimit', 0, 100_000, d.inconclusiveLimit, true),
    srmAlpha: num(a.srmAlpha, 'analysis.srmAlpha', 1e-9, 0.1, d.srmAlpha),
    metrics: metricLimits(a.metrics),
  };
}

const METRIC_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;

function experiment(raw: unknown, salt: string): ExperimentSpec {
  const x = obj(raw, 'experiment');
  known(x, ['weight', 'metrics', 'correction', 'alpha', 'mde', 'power', 'unkeyed'], 'experiment');
  const metrics = x.metrics === undefined ? ['accuracy'] : x.metrics;
  if (!Array.isArray(metrics) || metrics.length === 0 || metrics.length > 20) throw bad('experiment.metrics must list 1 to 20 metric names (outcome metrics, or accuracy for labels)');
  for (const m of metrics) if (typeof m !== 'string' || !METRIC_NAME.test(m)) throw bad(`experiment.metrics: ${JSON.stringify(m)?.slice(0, 40)} is not a metric name (letters, digits, _.:-, at most 64)`);
  if (new Set(metrics).size !== metrics.length) throw bad('experiment.metrics names a metric twice');
  const correction = x.correction ?? 'holm';
  if (correction !== 'holm' && correction !== 'bh') throw bad('experiment.correction must be holm (family-wise error) or bh (false discovery rate)');
  const unkeyed = x.unkeyed ?? 'reject';
  if (unkeyed !== 'reject' && unkeyed !== 'stable') throw bad('experiment.unkeyed must be reject (400 for a request without a key) or stable');
  return {
    weight: num(x.weight, 'experiment.weight', 1, 99, 50),
    metrics: metrics as string[],
    correction,
    alpha: num(x.alpha, 'experiment.alpha', 0.0001, 0.5, 0.05),
    mde: num(x.mde, 'experiment.mde', 0.0001, 10, 0.05),
    power: num(x.power, 'experiment.power', 0.5, 0.999, 0.8),
    unkeyed,
    salt,
  };
}

/** Validates a rollout request's spec (strategy, steps, analysis, experiment) and fills the defaults. */
export function parseRolloutSpec(strategy: RolloutStrategy, raw: unknown, salt: string): RolloutSpec {
  const o = obj(raw, 'spec');
  known(o, ['steps', 'mirror', 'analysis', 'experiment', 'abortOnPage'], 'spec');
  if (strategy !== 'shadow' && o.mirror !== undefined) throw bad('mirror is a shadow rollout\'s setting; a canary step takes its own "mirror"');
  if (strategy !== 'ab' && o.experiment !== undefined) throw bad('experiment settings belong to strategy ab');
  const spec: RolloutSpec = { strategy, steps: steps(o.steps, strategy, o), analysis: analysis(o.analysis), abortOnPage: bool(o.abortOnPage, 'abortOnPage', true) };
  if (strategy === 'ab') {
    spec.experiment = experiment(o.experiment, salt);
    spec.steps = [{ weight: spec.experiment.weight, mirror: 0, pauseMs: null }];
  }
  return spec;
}

/** A step as people read it: "weight 10%, mirror 0%, 5m". */
export function describeStep(s: RolloutStep): string {
  const parts = [`weight ${s.weight}%`];
  if (s.mirror > 0) parts.push(`mirror ${s.mirror}%`);
  parts.push(s.pauseMs === null ? 'until promoted' : formatDuration(s.pauseMs));
  return parts.join(', ');
}
