/**
 * Pricing: what a deployment's traffic cost (docs/cost.md#the-cost-model). Pure functions over the traffic table's
 * hour buckets, which every replica adds its counts and CPU time to, so the same figures come out on every replica.
 */
import { DAY_MS, HOUR_MS, utcPeriods } from '../calendar.ts';
import type { TrafficUsageRecord } from '../storage/index.ts';

export { DAY_MS, HOUR_MS };

/**
 * - `cpu`: a version's cost is the process CPU time traffic/ attributed to it (its share of request and shadow-run
 *   time in each interval) priced per CPU-hour.
 * - `replica`: the fleet's replicas are paid by the hour, busy or idle; each hour's cost is shared among the
 *   deployments by their share of that hour's CPU time (of requests and shadow runs where no CPU time was measured).
 *   An hour without traffic is idle: its cost is counted apart, on no deployment.
 */
export type CostModel =
  | { kind: 'cpu'; pricePerCpuHour: number }
  | { kind: 'replica'; pricePerReplicaHour: number; replicas: number };

/** One hour of one deployment version, priced. */
export interface PricedHour {
  deployment: string;
  /** 0: requests that failed before a version was chosen. */
  version: number;
  /** Start of the hour (epoch ms). */
  ts: number;
  amount: number;
  /** Successful inferences (requests answered with predictions). */
  inferences: number;
  requests: number;
}

/** The replicas' cost over [since, until) (model `replica`), busy or idle. */
export function replicaCost(model: Extract<CostModel, { kind: 'replica' }>, since: number, until: number): number {
  return (model.pricePerReplicaHour * model.replicas * Math.max(0, until - since)) / HOUR_MS;
}

/**
 * Prices hour buckets (any order). With model `replica` an hour's cost counts only the part of it before `now`, so
 * the current hour grows as it passes.
 */
export function priceHours(rows: readonly TrafficUsageRecord[], model: CostModel, now: number): PricedHour[] {
  if (model.kind === 'cpu') {
    const perMs = model.pricePerCpuHour / HOUR_MS;
    return rows.map((r) => ({ deployment: r.model, version: r.version, ts: r.ts, amount: r.cpuMs * perMs, inferences: r.ok, requests: r.requests }));
  }
  const byHour = new Map<number, { cpu: number; work: number }>();
  for (const r of rows) {
    const h = byHour.get(r.ts) ?? { cpu: 0, work: 0 };
    h.cpu += r.cpuMs;
    h.work += r.requests + r.shadow;
    byHour.set(r.ts, h);
  }
  return rows.map((r) => {
    const h = byHour.get(r.ts)!;
    const share = h.cpu > 0 ? r.cpuMs / h.cpu : h.work > 0 ? (r.requests + r.shadow) / h.work : 0;
    const hourCost = replicaCost(model, r.ts, Math.min(now, r.ts + HOUR_MS));
    return { deployment: r.model, version: r.version, ts: r.ts, amount: hourCost * share, inferences: r.ok, requests: r.requests };
  });
}

/** Start of the UTC day, of the next one, of the UTC month and of the next month holding `t`. */
export const periods = utcPeriods;

/**
 * A cost anomaly: an hour costing at least `factor` × the deployment's mean hour over the `baselineHours` before
 * it, counted from the first hour with spend in that window (a deployment younger than the window is measured over
 * its life), with at least `minBaselineHours` such hours, and at least `minSpend`.
 */
export interface AnomalySettings {
  factor: number;
  baselineHours: number;
  minBaselineHours: number;
  minSpend: number;
}

export interface AnomalyVerdict {
  active: boolean;
  /** The hour judged (the current one so far, or the last complete one, whichever stands out more). */
  hour: number;
  spend: number;
  /** Mean spend per hour over the baseline; null when there is too little baseline to judge. */
  baseline: number | null;
  baselineHours: number;
}

/** Judges the current hour (so far) and the last complete hour of one deployment's spend by hour start. */
export function anomaly(spendByHour: ReadonlyMap<number, number>, now: number, s: AnomalySettings): AnomalyVerdict {
  const current = Math.floor(now / HOUR_MS) * HOUR_MS;
  const judge = (hour: number): AnomalyVerdict => {
    const spend = spendByHour.get(hour) ?? 0;
    let first = -1;
    for (let i = s.baselineHours; i >= 1; i--) {
      if ((spendByHour.get(hour - i * HOUR_MS) ?? 0) > 0) {
        first = i;
        break;
      }
    }
    if (first < s.minBaselineHours) return { active: false, hour, spend, baseline: null, baselineHours: Math.max(first, 0) };
    let sum = 0;
    for (let i = first; i >= 1; i--) sum += spendByHour.get(hour - i * HOUR_MS) ?? 0;
    const baseline = sum / first;
    return { active: spend > 0 && spend >= s.minSpend && spend >= s.factor * baseline, hour, spend, baseline, baselineHours: first };
  };
  const a = judge(current);
  const b = judge(current - HOUR_MS);
  if (a.active) return a;
  if (b.active) return b;
  const ratio = (v: AnomalyVerdict) => (v.baseline ? v.spend / v.baseline : 0);
  return ratio(b) > ratio(a) ? b : a;
}
