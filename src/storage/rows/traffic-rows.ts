/**
 * Traffic buckets as both adapters keep them: the row's counts and how two records of one bucket add up. SQLite
 * adds them here before it writes; PostgreSQL adds a batch's records of one bucket here and the stored row in SQL
 * (its upsert follows these rules), so replicas on either database sum alike.
 */
import type { TrafficBucketRecord, TrafficStep, TrafficUsageRecord } from '../ports.ts';

/** The `step` column: a bucket's length in ms. */
export const STEP_MS: Record<TrafficStep, number> = { minute: 60_000, hour: 3_600_000 };

/** Error codes a traffic bucket keeps (the rest fold into `other`). */
export const MAX_ERROR_CODES = 32;

/** A traffic row but for `histogram` and `errors`, which each database holds in its own types. */
export interface TrafficCounts {
  model: string;
  step: number;
  ts: number;
  version: number;
  requests: number;
  ok: number;
  client_errors: number;
  server_errors: number;
  shadow: number;
  rows: number;
  latency_sum_ms: number;
  min_ms: number;
  max_ms: number;
  cpu_ms: number;
}

export function toTraffic(r: TrafficCounts, histogram: number[], errors: Record<string, number>): TrafficBucketRecord {
  return {
    model: r.model,
    version: r.version,
    step: r.step === STEP_MS.hour ? 'hour' : 'minute',
    ts: r.ts,
    requests: r.requests,
    ok: r.ok,
    clientErrors: r.client_errors,
    serverErrors: r.server_errors,
    shadow: r.shadow,
    rows: r.rows,
    latencySumMs: r.latency_sum_ms,
    minMs: r.min_ms,
    maxMs: r.max_ms,
    cpuMs: r.cpu_ms,
    histogram,
    errors,
  };
}

export const rowToUsage = (r: Pick<TrafficCounts, 'model' | 'version' | 'ts' | 'requests' | 'ok' | 'shadow' | 'cpu_ms'>): TrafficUsageRecord => ({
  model: r.model,
  version: Number(r.version),
  ts: Number(r.ts),
  requests: Number(r.requests),
  ok: Number(r.ok),
  shadow: Number(r.shadow),
  cpuMs: Number(r.cpu_ms),
});

function addInto(into: number[], add: readonly number[]): number[] {
  for (let i = 0; i < add.length; i++) into[i] = (into[i] ?? 0) + (add[i] ?? 0);
  return into;
}

/**
 * Which of equally frequent error codes stay when a bucket has too many: the first in the records' key order
 * (SQLite, which merges only here), or the first by code (PostgreSQL: JSONB keeps no key order, so its SQL merge
 * orders by code, and the merge of a batch here must agree with it).
 */
export type ErrorTies = 'key-order' | 'by-code';

/** Adds two buckets' error counts, keeping at most `max` codes (the smallest folded into `other`). */
function mergeErrors(a: Record<string, number>, b: Record<string, number>, ties: ErrorTies, max = MAX_ERROR_CODES): Record<string, number> {
  const out: Record<string, number> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  if (Object.keys(out).length <= max) return out;
  const other = out.other ?? 0;
  delete out.other;
  // The sort is stable: with 'key-order', ties keep the order of `out`'s keys.
  const sorted = Object.entries(out).sort((x, y) => y[1] - x[1] || (ties === 'by-code' ? (x[0] < y[0] ? -1 : 1) : 0));
  const kept: Record<string, number> = {};
  let rest = other;
  sorted.forEach(([k, v], i) => {
    if (i < max - 1) kept[k] = v;
    else rest += v;
  });
  kept.other = rest;
  return kept;
}

/** Two records of one bucket added up (min/max over those that saw requests). */
export function mergeTraffic(a: TrafficBucketRecord, b: TrafficBucketRecord, ties: ErrorTies): TrafficBucketRecord {
  const served = (x: TrafficBucketRecord) => x.requests > 0;
  return {
    ...a,
    requests: a.requests + b.requests,
    ok: a.ok + b.ok,
    clientErrors: a.clientErrors + b.clientErrors,
    serverErrors: a.serverErrors + b.serverErrors,
    shadow: a.shadow + b.shadow,
    rows: a.rows + b.rows,
    latencySumMs: a.latencySumMs + b.latencySumMs,
    minMs: served(a) && served(b) ? Math.min(a.minMs, b.minMs) : served(a) ? a.minMs : b.minMs,
    maxMs: Math.max(a.maxMs, b.maxMs),
    cpuMs: a.cpuMs + b.cpuMs,
    histogram: addInto([...a.histogram], b.histogram),
    errors: mergeErrors(a.errors, b.errors, ties),
  };
}

/** A histogram without its tail of empty bins, as both adapters store it. */
export function trimZeros(h: readonly number[]): number[] {
  let n = h.length;
  while (n > 0 && !h[n - 1]) n--;
  return h.slice(0, n);
}
