import { ksStatisticSorted, type WindowResult } from '../monitoring/index.ts';
import type { EventStore, ModelSignature, NewRolloutDecision, StoredPredictionEvent } from '../storage/index.ts';
import type { AnalysisSpec, RolloutStep } from './spec.ts';
import { sampleRatioMismatch, sequentialMeanDifference, sequentialProportionDifference } from './stats/index.ts';

/** Most requests per side one analysis run reads (the first of the step: a prefix, never a chosen subset). */
export const ANALYSIS_MAX_ROWS = 20_000;

export type Verdict = 'success' | 'failure' | 'inconclusive';

/** One metric's measurement: what was measured, the limit, the data behind it and the verdict. */
export interface MetricResult {
  metric: string;
  verdict: Verdict;
  value: number | null;
  threshold: number | null;
  nStable: number;
  nCandidate: number;
  /** An inconclusive blocking metric holds the step; a non-blocking one (labels, estimates) never does. */
  blocking: boolean;
  detail: Record<string, unknown>;
}

export interface AnalysisRun {
  at: number;
  verdict: Verdict;
  metrics: MetricResult[];
  /** Running always-valid p-values per metric, carried to the next run (they may only fall). */
  pValues: Record<string, number>;
  summary: string;
}

export interface AnalysisInput {
  deployment: string;
  stable: number;
  candidate: number;
  step: RolloutStep;
  /** Start of the data this run reads (the step's start). */
  since: number;
  now: number;
  spec: AnalysisSpec;
  signature: ModelSignature;
  /** 1 for the rollout's first run; each look spends part of alpha for the distance bound. */
  look: number;
  previousP: Record<string, number>;
  events: EventStore;
  /** Monitoring windows of a version in [since, now), when monitoring runs. */
  windows?: (version: number, since: number, until: number) => Promise<WindowResult[]>;
}

/** Where a row's prediction is read: an output and the column in its row. */
interface PredictionColumn {
  output: string;
  column: number;
  /** label: a class; probability: P(class 1); value: a regression output. */
  kind: 'label' | 'probability' | 'value';
}

const isFloat = (d: string) => d === 'FP32' || d === 'FP64' || d === 'FP16';
const widthOf = (shape: readonly number[]) => shape.slice(1).reduce((a, b) => a * (b > 0 ? b : 1), 1);

/** The outputs the analysis compares: a class label when the model has one, and one numeric prediction. */
export function predictionColumns(signature: ModelSignature): { label?: PredictionColumn; numeric: PredictionColumn } {
  const outs = signature.outputs;
  const labelOut = outs.find((o) => !isFloat(o.datatype) && widthOf(o.shape) === 1 && o.datatype !== 'BYTES');
  const label = labelOut ? { output: labelOut.name, column: 0, kind: 'label' as const } : undefined;
  const prob = outs.find((o) => isFloat(o.datatype) && widthOf(o.shape) === 2);
  if (label && prob) return { label, numeric: { output: prob.name, column: 1, kind: 'probability' } };
  const value = outs.find((o) => isFloat(o.datatype));
  if (value) return { ...(label ? { label } : {}), numeric: { output: value.name, column: 0, kind: label ? 'probability' : 'value' } };
  return { ...(label ? { label } : {}), numeric: { output: outs[0]!.name, column: 0, kind: label ? 'label' : 'value' } };
}

interface TensorJson {
  name: string;
  shape?: number[];
  dims?: number[];
  data: unknown[];
}

/** The column's value in each row of a logged event's outputs. */
function columnValues(outputs: unknown, col: PredictionColumn): number[] {
  if (!Array.isArray(outputs)) return [];
  const t = (outputs as TensorJson[]).find((o) => o && o.name === col.output);
  if (!t || !Array.isArray(t.data)) return [];
  const rows = (t.shape ?? t.dims)?.[0] ?? t.data.length;
  if (!rows) return [];
  const w = t.data.length / rows;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const v = Number(t.data[r * w + col.column]);
    if (Number.isFinite(v)) out.push(v);
  }
  return out;
}

async function readEvents(events: EventStore, q: { model: string; version: number; since: number; until: number; route?: 'stable' | 'candidate'; status?: 'shadow' }): Promise<StoredPredictionEvent[]> {
  const out: StoredPredictionEvent[] = [];
  let after = 0;
  while (out.length < ANALYSIS_MAX_ROWS) {
    const page = await events.queryPredictions({ ...q, afterSeq: after, limit: Math.min(5000, ANALYSIS_MAX_ROWS - out.length) });
    out.push(...page);
    if (page.length < 5000) break;
    after = page[page.length - 1]!.seq;
  }
  return out;
}

function standardDeviation(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

/**
 * The verdict of a difference (candidate − stable) against a tolerance, from an always-valid confidence sequence:
 * failure once the whole interval is above the tolerance, success once it is all at or below, else inconclusive.
 */
function againstTolerance(lower: number, upper: number, tolerance: number): Verdict {
  if (lower > tolerance) return 'failure';
  if (upper <= tolerance) return 'success';
  return 'inconclusive';
}

/**
 * A time-uniform confidence sequence for a Bernoulli mean: the normal-mixture boundary of Howard, Ramdas,
 * McAuliffe & Sekhon (2021, eq. 14) for a 1/2-sub-Gaussian variable, with mixing precision `rho` chosen for
 * tightness near n = 500. Valid however often it is looked at.
 */
export function bernoulliConfidenceSequence(successes: number, n: number, alpha: number): { lower: number; upper: number; mean: number } {
  if (n <= 0) return { lower: 0, upper: 1, mean: NaN };
  const mean = successes / n;
  const v = n / 4;
  const rho = 500 / 4;
  const radius = Math.sqrt(((v + rho) / (n * n)) * 2 * Math.log(Math.sqrt((v + rho) / rho) / (alpha / 2)));
  return { mean, lower: Math.max(0, mean - radius), upper: Math.min(1, mean + radius) };
}

/**
 * Dvoretzky–Kiefer–Wolfowitz radius of an empirical CDF of n values at look k, with alpha spent over looks as
 * alpha·6/(π²k²) (the sum over all looks is alpha) and split over the two samples: the KS distance between the true
 * distributions lies within ±(ε₁ + ε₂) of the measured one at every look at once, with probability ≥ 1 − alpha.
 */
export function dkwRadius(n: number, alpha: number, look: number): number {
  if (n <= 0) return Infinity;
  const spent = (alpha * 6) / (Math.PI * Math.PI * look * look) / 2;
  return Math.sqrt(Math.log(2 / spent) / (2 * n));
}

/** One analysis run: every metric of the step, compared between candidate and stable. Reads the event store only. */
export async function analyse(input: AnalysisInput): Promise<AnalysisRun> {
  const { events, deployment: model, stable, candidate, since, now, spec, step } = input;
  const limits = spec.metrics;
  const cols = predictionColumns(input.signature);
  const canary = step.weight > 0;
  const shadowing = step.mirror > 0 || step.weight === 0;
  const [stableEvents, candidateEvents, shadowEvents] = await Promise.all([
    readEvents(events, { model, version: stable, since, until: now, route: 'stable' }),
    canary ? readEvents(events, { model, version: candidate, since, until: now, route: 'candidate' }) : Promise.resolve([]),
    shadowing ? readEvents(events, { model, version: candidate, since, until: now, status: 'shadow' }) : Promise.resolve([]),
  ]);
  const [stableTotal, stableErrors, candTotal, candErrors] = await Promise.all([
    events.countPredictions({ model, version: stable, since, until: now, route: 'stable' }),
    events.countPredictions({ model, version: stable, since, until: now, route: 'stable', status: 'error' }),
    canary ? events.countPredictions({ model, version: candidate, since, until: now, route: 'candidate' }) : Promise.resolve(0),
    canary ? events.countPredictions({ model, version: candidate, since, until: now, route: 'candidate', status: 'error' }) : Promise.resolve(0),
  ]);
  const results: MetricResult[] = [];
  const pValues: Record<string, number> = {};
  const min = spec.minSamples;
  const alpha = spec.alpha;

  // Sample ratio: the split the router was told vs what the log holds. A mismatch means the comparison is biased.
  if (canary && step.weight < 100) {
    const srm = sampleRatioMismatch([stableTotal, candTotal], [1 - step.weight / 100, step.weight / 100], { ...(input.previousP.srm !== undefined ? { previousP: input.previousP.srm } : {}) });
    pValues.srm = srm.pValue;
    results.push({
      metric: 'sampleRatio',
      verdict: srm.pValue < spec.srmAlpha ? 'failure' : stableTotal + candTotal < min ? 'inconclusive' : 'success',
      value: srm.pValue,
      threshold: spec.srmAlpha,
      nStable: stableTotal,
      nCandidate: candTotal,
      blocking: true,
      detail: { observedShares: srm.observedShares, expectedShares: srm.expectedShares, chi2: srm.chi2, chi2PValue: srm.chi2PValue, test: 'sequential Dirichlet-multinomial (Lindon & Malek 2022)' },
    });
  }

  // Error rate: canary-served requests, or the shadow runs' failures.
  if (limits.errorRate.enabled) {
    const cand = canary ? { n: candTotal, successes: candErrors } : { n: shadowEvents.length, successes: shadowEvents.filter((e) => e.error !== undefined).length };
    const base = { n: stableTotal, successes: stableErrors };
    const r = sequentialProportionDifference(base, cand, { alpha, ...(input.previousP.errorRate !== undefined ? { previousP: input.previousP.errorRate } : {}) });
    pValues.errorRate = r.pValue;
    const enough = base.n >= min && cand.n >= min;
    const verdict = enough ? againstTolerance(r.lower, r.upper, limits.errorRate.maxIncrease) : cand.n > 0 && r.lower > limits.errorRate.maxIncrease ? 'failure' : 'inconclusive';
    results.push({
      metric: 'errorRate',
      verdict,
      value: cand.n ? cand.successes / cand.n : null,
      threshold: limits.errorRate.maxIncrease,
      nStable: base.n,
      nCandidate: cand.n,
      blocking: true,
      detail: { stableRate: base.n ? base.successes / base.n : null, difference: r.estimate, lower: r.lower, upper: r.upper, pValue: r.pValue, source: canary ? 'canary' : 'shadow', ...(enough ? {} : { reason: `fewer than ${min} requests on a side` }) },
    });
  }

  // Latency p99: requests each version answered. In a shadow step the candidate's time is its model run alone (no
  // parsing, no queueing), held to the stable version's whole-request latency: it can show a candidate slower than
  // that, never prove one as fast, so there it does not hold the step.
  if (limits.latencyP99.enabled && (canary || shadowing)) {
    const sl = Float64Array.from(stableEvents.filter((e) => e.status === 'ok').map((e) => e.latencyMs)).sort();
    const cl = Float64Array.from((canary ? candidateEvents.filter((e) => e.status === 'ok') : shadowEvents.filter((e) => e.error === undefined)).map((e) => e.latencyMs)).sort();
    const p99s = quantile(sl, 0.99);
    const p99c = quantile(cl, 0.99);
    const limit = Math.max(p99s * (1 + limits.latencyP99.maxIncrease), p99s + limits.latencyP99.slackMs);
    const slow = (xs: Float64Array) => xs.reduce((n, x) => n + (x > limit ? 1 : 0), 0);
    const r = sequentialProportionDifference({ n: sl.length, successes: slow(sl) }, { n: cl.length, successes: slow(cl) }, { alpha, ...(input.previousP.latencyP99 !== undefined ? { previousP: input.previousP.latencyP99 } : {}) });
    pValues.latencyP99 = r.pValue;
    const enough = sl.length >= min && cl.length >= min;
    results.push({
      metric: 'latencyP99',
      verdict: enough ? againstTolerance(r.lower, r.upper, 0.01) : 'inconclusive',
      value: Number.isFinite(p99c) ? p99c : null,
      threshold: Number.isFinite(limit) ? limit : null,
      nStable: sl.length,
      nCandidate: cl.length,
      blocking: canary,
      detail: {
        stableP99Ms: Number.isFinite(p99s) ? p99s : null,
        slowShareDifference: r.estimate,
        lower: r.lower,
        upper: r.upper,
        rule: 'share of requests above the limit, candidate minus stable, must stay within 1 point',
        source: canary ? 'canary' : 'shadow (the candidate\'s model run time against the stable version\'s request latency)',
        ...(enough ? {} : { reason: `fewer than ${min} requests on a side` }),
      },
    });
  }

  // Distance between the two prediction distributions (KS D with a time-uniform DKW band).
  if (limits.predictionDistance.enabled) {
    const stablePreds = Float64Array.from(stableEvents.filter((e) => e.status === 'ok').flatMap((e) => columnValues(e.outputs, cols.numeric))).sort();
    const candPreds = Float64Array.from((canary ? candidateEvents.filter((e) => e.status === 'ok') : shadowEvents.filter((e) => e.error === undefined)).flatMap((e) => columnValues(e.outputs, cols.numeric))).sort();
    const enough = stablePreds.length >= min && candPreds.length >= min;
    const d = stablePreds.length && candPreds.length ? ksStatisticSorted(stablePreds, candPreds) : NaN;
    const eps = dkwRadius(stablePreds.length, alpha, input.look) + dkwRadius(candPreds.length, alpha, input.look);
    const max = limits.predictionDistance.max;
    const verdict: Verdict = !Number.isFinite(d) ? 'inconclusive' : d - eps > max ? 'failure' : enough && d + eps <= max ? 'success' : 'inconclusive';
    results.push({
      metric: 'predictionDistance',
      verdict,
      value: Number.isFinite(d) ? d : null,
      threshold: max,
      nStable: stablePreds.length,
      nCandidate: candPreds.length,
      blocking: true,
      detail: { statistic: 'Kolmogorov-Smirnov D', output: cols.numeric.output, column: cols.numeric.column, lower: Number.isFinite(d) ? Math.max(0, d - eps) : null, upper: Number.isFinite(d) ? Math.min(1, d + eps) : null, source: canary ? 'canary' : 'shadow' },
    });
  }

  // Agreement on rows both versions answered (mirrored requests).
  if (limits.agreement.enabled && shadowing) {
    const byId = new Map<string, StoredPredictionEvent>();
    for (const e of stableEvents) if (e.status === 'ok') byId.set(e.requestId, e);
    let agree = 0;
    let rows = 0;
    const diffs: number[] = [];
    const col = cols.label ?? cols.numeric;
    // Regressors agree within a share of the spread of the stable version's predictions: a relative error would
    // call two models that differ by 2 rentals at an hour of 3 rentals "disagreeing".
    const spread = cols.label ? 0 : standardDeviation(stableEvents.filter((e) => e.status === 'ok').flatMap((e) => columnValues(e.outputs, col)));
    for (const sh of shadowEvents) {
      const st = byId.get(sh.requestId);
      if (!st || sh.error !== undefined) continue;
      const a = columnValues(st.outputs, col);
      const b = columnValues(sh.outputs, col);
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        rows++;
        if (cols.label) {
          if (a[i] === b[i]) agree++;
        } else {
          const diff = b[i]! - a[i]!;
          diffs.push(diff);
          if (Math.abs(diff) <= limits.agreement.tolerance * spread) agree++;
        }
      }
    }
    const cs = bernoulliConfidenceSequence(agree, rows, alpha);
    const minAgree = limits.agreement.min;
    const verdict: Verdict = rows === 0 ? 'inconclusive' : cs.upper < minAgree ? 'failure' : rows >= min && cs.lower >= minAgree ? 'success' : 'inconclusive';
    const sortedAbs = Float64Array.from(diffs.map(Math.abs)).sort();
    results.push({
      metric: 'agreement',
      verdict,
      value: rows ? agree / rows : null,
      threshold: minAgree,
      nStable: rows,
      nCandidate: rows,
      blocking: true,
      detail: {
        rule: cols.label ? `same class (${col.output})` : `|candidate − stable| within ${limits.agreement.tolerance} × the stable predictions' standard deviation (${fmt(limits.agreement.tolerance * spread)}, ${col.output})`,
        lower: cs.lower,
        upper: cs.upper,
        ...(diffs.length
          ? { difference: { mean: diffs.reduce((s, x) => s + x, 0) / diffs.length, absP50: quantile(sortedAbs, 0.5), absP95: quantile(sortedAbs, 0.95), absMax: sortedAbs[sortedAbs.length - 1] } }
          : {}),
      },
    });
  }

  if (limits.accuracy.enabled) results.push(await liveAccuracy(input, cols, pValues));
  if (limits.estimatedAccuracy.enabled && input.windows) {
    const m = await estimatedAccuracy(input);
    if (m) results.push(m);
  }

  const failed = results.filter((r) => r.verdict === 'failure');
  const holding = results.filter((r) => r.blocking && r.verdict === 'inconclusive');
  const verdict: Verdict = failed.length ? 'failure' : holding.length ? 'inconclusive' : 'success';
  const summary = failed.length
    ? `failed: ${failed.map(describe).join('; ')}`
    : holding.length
      ? `inconclusive: ${holding.map(describe).join('; ')}`
      : `passed: ${results.filter((r) => r.verdict === 'success').map(describe).join('; ') || 'nothing to compare'}`;
  return { at: now, verdict, metrics: results, pValues, summary };
}

const fmt = (x: number | null) => (x === null ? 'n/a' : Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(3));

function describe(r: MetricResult): string {
  return `${r.metric} ${fmt(r.value)} (limit ${fmt(r.threshold)}, n ${r.nStable}/${r.nCandidate})`;
}

/** Live accuracy from joined labels: fraction correct (classes) or mean absolute error (regression), per side. */
async function liveAccuracy(input: AnalysisInput, cols: ReturnType<typeof predictionColumns>, pValues: Record<string, number>): Promise<MetricResult> {
  const score = async (version: number) => {
    const rows = await input.events.queryLabelled({ model: input.deployment, version, since: input.since, until: input.now, limit: ANALYSIS_MAX_ROWS });
    const xs: number[] = [];
    for (const r of rows) {
      const label = typeof r.label === 'boolean' ? Number(r.label) : Number(r.label);
      if (!Number.isFinite(label) || !r.outputs) continue;
      const col = cols.label ?? cols.numeric;
      const v = Number(r.outputs[col.output]?.[col.column]);
      if (!Number.isFinite(v)) continue;
      // Higher is better on both: 1 for a right class, minus the absolute error for a regression.
      xs.push(cols.label ? (v === label ? 1 : 0) : -Math.abs(v - label));
    }
    return xs;
  };
  const [s, c] = await Promise.all([score(input.stable), score(input.candidate)]);
  const moments = (xs: number[]) => {
    const n = xs.length;
    const mean = n ? xs.reduce((a, b) => a + b, 0) / n : 0;
    const variance = n > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
    return { n, mean, variance };
  };
  const ms = moments(s);
  const mc = moments(c);
  const maxDrop = input.spec.metrics.accuracy.maxDrop;
  const base = { metric: 'accuracy', threshold: maxDrop, nStable: ms.n, nCandidate: mc.n, blocking: false };
  if (ms.n < input.spec.minSamples || mc.n < input.spec.minSamples) {
    return { ...base, verdict: 'inconclusive', value: mc.n ? mc.mean : null, detail: { reason: `${ms.n} and ${mc.n} labelled rows; ${input.spec.minSamples} needed on each side`, measure: cols.label ? 'accuracy' : 'negative MAE' } };
  }
  // Drop = stable − candidate; its interval from the candidate-minus-stable sequence, negated.
  const r = sequentialMeanDifference(ms, mc, { alpha: input.spec.alpha, ...(input.previousP.accuracy !== undefined ? { previousP: input.previousP.accuracy } : {}) });
  pValues.accuracy = r.pValue;
  return {
    ...base,
    verdict: againstTolerance(-r.upper, -r.lower, maxDrop),
    value: cols.label ? mc.mean : -mc.mean,
    detail: { measure: cols.label ? 'accuracy' : 'MAE', stable: cols.label ? ms.mean : -ms.mean, drop: -r.estimate, lower: -r.upper, upper: -r.lower, pValue: r.pValue },
  };
}

/**
 * Estimated performance before labels (CBPE accuracy, DLE MAE) from the monitoring windows of each side. A point
 * estimate held to a limit, not a test: it never holds a step, and fails one only by more than the limit.
 */
async function estimatedAccuracy(input: AnalysisInput): Promise<MetricResult | undefined> {
  const read = async (version: number) => {
    const ws = await input.windows!(version, input.since, input.now);
    let rows = 0;
    let sum = 0;
    let kind: 'accuracy' | 'mae' | undefined;
    for (const w of ws) {
      const est = w.performance?.estimated as { accuracy?: number; mae?: number } | undefined;
      if (!est) continue;
      const v = est.accuracy ?? (est.mae !== undefined ? -est.mae : undefined);
      if (v === undefined || !Number.isFinite(v)) continue;
      kind = est.accuracy !== undefined ? 'accuracy' : 'mae';
      rows += w.rows;
      sum += v * w.rows;
    }
    return { rows, mean: rows ? sum / rows : NaN, kind };
  };
  const [s, c] = await Promise.all([read(input.stable), read(input.candidate)]);
  if (!s.kind && !c.kind) return undefined;
  const drop = s.mean - c.mean;
  const maxDrop = input.spec.metrics.estimatedAccuracy.maxDrop;
  const verdict: Verdict = !Number.isFinite(drop) ? 'inconclusive' : drop > maxDrop ? 'failure' : 'success';
  return {
    metric: 'estimatedAccuracy',
    verdict,
    value: Number.isFinite(c.mean) ? (c.kind === 'mae' ? -c.mean : c.mean) : null,
    threshold: maxDrop,
    nStable: s.rows,
    nCandidate: c.rows,
    blocking: false,
    detail: { estimate: s.kind === 'mae' || c.kind === 'mae' ? 'DLE MAE' : 'CBPE accuracy', drop: Number.isFinite(drop) ? drop : null, stable: Number.isFinite(s.mean) ? (s.kind === 'mae' ? -s.mean : s.mean) : null },
  };
}

/** The run's metrics as stored decisions. */
export function decisionsOf(rolloutId: number, step: number, run: AnalysisRun): NewRolloutDecision[] {
  return run.metrics.map((m) => ({
    rolloutId,
    at: run.at,
    step,
    metric: m.metric,
    verdict: m.verdict,
    value: m.value,
    threshold: m.threshold,
    nStable: m.nStable,
    nCandidate: m.nCandidate,
    detail: { ...m.detail, blocking: m.blocking },
  }));
}
