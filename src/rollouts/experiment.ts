import type { EventStore, RolloutRecord } from '../storage/index.ts';
import type { ExperimentSpec } from './spec.ts';
import { benjaminiHochberg, holm, minimumDetectableEffect, requiredSampleSizePerArm, sampleRatioMismatch, sequentialMeanDifference, type ArmMoments } from './stats/index.ts';
import { ANALYSIS_MAX_ROWS } from './analysis.ts';

export interface ArmResult {
  version: number;
  /** Requests the arm answered. */
  requests: number;
  /** Distinct caller keys the arm served (the units outcomes are averaged over). */
  units: number;
  mean: number | null;
  sd: number | null;
  /** Outcomes (or labelled rows) behind the mean. */
  observations: number;
}

export interface MetricComparison {
  metric: string;
  source: 'outcomes' | 'labels';
  stable: ArmResult;
  candidate: ArmResult;
  /** Candidate minus stable, and its always-valid confidence sequence. */
  difference: number | null;
  lower: number | null;
  upper: number | null;
  relativeDifference: number | null;
  pValue: number;
  /** After Holm or Benjamini–Hochberg across the experiment's metrics. */
  adjustedPValue: number;
  significant: boolean;
  /** Units per arm a fixed-horizon test would need to detect the experiment's MDE at its power. */
  requiredPerArm: number | null;
  /** The smallest difference detectable with the units so far, at the experiment's power. */
  detectableNow: number | null;
  warnings: string[];
}

export interface ExperimentResult {
  rollout: number;
  deployment: string;
  state: RolloutRecord['state'];
  stable: number;
  candidate: number;
  weight: number;
  since: number;
  until: number;
  sampleRatio: { pValue: number; chi2PValue: number; observedShares: number[]; expectedShares: number[]; mismatch: boolean };
  correction: ExperimentSpec['correction'];
  alpha: number;
  metrics: MetricComparison[];
  /** Outcomes posted since the experiment began whose key matched no prediction (counted, not dropped). */
  unmatchedOutcomes: number;
  warnings: string[];
  verdict: string;
}

function momentsFrom(n: number, sum: number, sumSq: number): ArmMoments {
  const mean = n ? sum / n : 0;
  const variance = n > 1 ? Math.max(0, (sumSq - n * mean * mean) / (n - 1)) : 0;
  return { n, mean, variance };
}

/**
 * The results of an A/B experiment: per-arm means of each metric (business outcomes averaged over the arm's keys,
 * a key without an outcome counting 0; or accuracy from labels), an always-valid test per metric, a
 * sample-ratio-mismatch check, Holm or Benjamini–Hochberg across metrics and power guidance. Read-only.
 */
export async function experimentResult(r: RolloutRecord, spec: ExperimentSpec, events: EventStore, now: number, previousP: Record<string, number>): Promise<ExperimentResult> {
  const since = r.createdAt;
  const until = r.endedAt ?? now;
  const model = r.deployment;
  const [reqS, reqC, unitsS, unitsC, stats, unmatched] = await Promise.all([
    events.countPredictions({ model, version: r.stableVersion, route: 'stable', since, until }),
    events.countPredictions({ model, version: r.candidateVersion, route: 'candidate', since, until }),
    events.countKeys({ model, version: r.stableVersion, since, until }),
    events.countKeys({ model, version: r.candidateVersion, since, until }),
    events.outcomeStats({ model, since, until }),
    events.unmatchedOutcomes(since),
  ]);
  const srm = sampleRatioMismatch([reqS, reqC], [1 - spec.weight / 100, spec.weight / 100], { ...(previousP.srm !== undefined ? { previousP: previousP.srm } : {}) });
  const raw: Omit<MetricComparison, 'adjustedPValue' | 'significant'>[] = [];
  for (const metric of spec.metrics) {
    let ms: ArmMoments;
    let mc: ArmMoments;
    let source: 'outcomes' | 'labels';
    let obsS: number;
    let obsC: number;
    if (metric === 'accuracy' && !stats.some((x) => x.metric === 'accuracy')) {
      source = 'labels';
      const score = async (version: number) => {
        const rows = await events.queryLabelled({ model, version, since, until, limit: ANALYSIS_MAX_ROWS });
        const xs: number[] = [];
        for (const row of rows) {
          const label = Number(row.label);
          const out = row.outputs ? Object.values(row.outputs)[0] : undefined;
          const v = Number(out?.[0]);
          if (Number.isFinite(label) && Number.isFinite(v)) xs.push(v === label ? 1 : 0);
        }
        return xs;
      };
      const [a, b] = await Promise.all([score(r.stableVersion), score(r.candidateVersion)]);
      ms = momentsFrom(a.length, a.reduce((s, x) => s + x, 0), a.reduce((s, x) => s + x * x, 0));
      mc = momentsFrom(b.length, b.reduce((s, x) => s + x, 0), b.reduce((s, x) => s + x * x, 0));
      obsS = a.length;
      obsC = b.length;
    } else {
      source = 'outcomes';
      const of = (version: number, route: 'stable' | 'candidate') => stats.filter((x) => x.metric === metric && x.version === version && x.route === route);
      const sum = (rows: typeof stats) => rows.reduce((acc, x) => ({ n: acc.n + x.n, sum: acc.sum + x.sum, sumSq: acc.sumSq + x.sumSq }), { n: 0, sum: 0, sumSq: 0 });
      const a = sum(of(r.stableVersion, 'stable'));
      const b = sum(of(r.candidateVersion, 'candidate'));
      obsS = a.n;
      obsC = b.n;
      // Every key the arm served is a unit; a unit with no outcome posted counts 0 (no conversion, no revenue).
      ms = momentsFrom(Math.max(unitsS, a.n), a.sum, a.sumSq);
      mc = momentsFrom(Math.max(unitsC, b.n), b.sum, b.sumSq);
    }
    const test = sequentialMeanDifference(ms, mc, { alpha: spec.alpha, ...(previousP[metric] !== undefined ? { previousP: previousP[metric] } : {}) });
    const pooledSd = Math.sqrt((ms.variance + mc.variance) / 2);
    const effect = spec.mde * Math.abs(ms.mean);
    const warnings: string[] = [];
    let requiredPerArm: number | null = null;
    let detectableNow: number | null = null;
    if (pooledSd > 0 && effect > 0) {
      requiredPerArm = Math.ceil(requiredSampleSizePerArm({ sd: pooledSd, mde: effect, alpha: spec.alpha, power: spec.power }));
      const nMin = Math.min(ms.n, mc.n);
      if (nMin >= 2) detectableNow = minimumDetectableEffect({ sd: pooledSd, nPerArm: nMin, alpha: spec.alpha, power: spec.power });
      if (nMin < requiredPerArm) {
        warnings.push(`underpowered: ${nMin} units on the smaller arm, about ${requiredPerArm} per arm needed to detect a ${(spec.mde * 100).toPrecision(3)}% change at ${spec.power * 100}% power`);
      }
    } else if (ms.n + mc.n > 0) warnings.push('no variation yet: power cannot be estimated');
    if (obsS + obsC === 0) warnings.push(source === 'labels' ? 'no labels joined yet' : `no outcomes posted for ${metric} yet (POST /api/v1/outcomes)`);
    raw.push({
      metric,
      source,
      stable: { version: r.stableVersion, requests: reqS, units: unitsS, mean: ms.n ? ms.mean : null, sd: ms.n > 1 ? Math.sqrt(ms.variance) : null, observations: obsS },
      candidate: { version: r.candidateVersion, requests: reqC, units: unitsC, mean: mc.n ? mc.mean : null, sd: mc.n > 1 ? Math.sqrt(mc.variance) : null, observations: obsC },
      difference: ms.n && mc.n ? test.estimate : null,
      lower: Number.isFinite(test.lower) ? test.lower : null,
      upper: Number.isFinite(test.upper) ? test.upper : null,
      relativeDifference: ms.n && mc.n && ms.mean !== 0 ? test.estimate / Math.abs(ms.mean) : null,
      pValue: test.pValue,
      requiredPerArm,
      detectableNow,
      warnings,
    });
  }
  const adjusted = spec.correction === 'holm' ? holm(raw.map((m) => m.pValue)) : benjaminiHochberg(raw.map((m) => m.pValue));
  const metrics = raw.map((m, i) => ({ ...m, adjustedPValue: adjusted[i]!, significant: adjusted[i]! < spec.alpha }));
  const mismatch = srm.pValue < 0.001;
  const warnings: string[] = [];
  if (mismatch) warnings.push(`sample ratio mismatch: ${srm.observedShares.map((x) => (x * 100).toFixed(1) + '%').join(' / ')} observed for ${srm.expectedShares.map((x) => (x * 100).toFixed(1) + '%').join(' / ')} expected (p ${srm.pValue.toPrecision(2)}); the results are not trustworthy until the cause is found`);
  if (unmatched > 0) warnings.push(`${unmatched} outcome(s) since the experiment began named a key no prediction carries; they are stored but in no arm`);
  const sig = metrics.filter((m) => m.significant);
  const verdict = mismatch
    ? 'do not decide: the split is off'
    : sig.length
      ? sig.map((m) => `${m.metric}: candidate ${m.difference! > 0 ? 'higher' : 'lower'} by ${m.relativeDifference !== null ? `${(m.relativeDifference * 100).toPrecision(3)}%` : m.difference!.toPrecision(3)} (adjusted p ${m.adjustedPValue.toPrecision(2)})`).join('; ')
      : 'no significant difference yet';
  return {
    rollout: r.id,
    deployment: model,
    state: r.state,
    stable: r.stableVersion,
    candidate: r.candidateVersion,
    weight: spec.weight,
    since,
    until,
    sampleRatio: { pValue: srm.pValue, chi2PValue: srm.chi2PValue, observedShares: srm.observedShares, expectedShares: srm.expectedShares, mismatch },
    correction: spec.correction,
    alpha: spec.alpha,
    metrics,
    unmatchedOutcomes: unmatched,
    warnings,
    verdict,
  };
}
