/**
 * What counts as a good event for each SLI kind: pure classifications of request events, evaluated monitoring
 * windows and CPU cost samples into good/total counts.
 */
import { errorCatalogue, type ErrorCode } from '../errors.ts';
import type { WindowResult } from '../monitoring/index.ts';
import type { PredictionEvent } from '../storage/index.ts';
import type { SliSpec } from './definition.ts';

/** Good and total events contributed by one observation. */
export interface SliCount {
  good: number;
  total: number;
}

/**
 * HTTP status of a logged failure. The prediction log writes errors as `WARDEN_CODE: message`; a code outside the
 * catalogue (or no code) counts as a 500, so an unexpected failure burns availability rather than hiding.
 */
export function errorStatus(error: string | undefined): number {
  return codeStatus(error ? /^(WARDEN_[A-Z0-9_]+):/.exec(error)?.[1] : undefined);
}

/** HTTP status of an error code (`WARDEN_…`) from the catalogue; 500 for a code outside it, as errorStatus counts. */
export function codeStatus(code: string | undefined): number {
  const entry = code ? (errorCatalogue as Record<string, { status: number } | undefined>)[code as ErrorCode] : undefined;
  return entry?.status ?? 500;
}

/**
 * One request's contribution to a traffic SLI, or undefined when the request does not count:
 * - latency: successful requests only; good when answered within `thresholdMs` (failures are availability's business);
 * - availability: successes are good, server (5xx) failures bad; client (4xx) failures — bad input, unknown
 *   versions, missing keys, rate limiting — are the caller's and are left out of good and total alike;
 * - explanation_coverage: successful requests, good when answered with an explanation (`explained`), whether or
 *   not they asked for one; plus, as bad events, requests whose model answered but whose explanation failed
 *   (`explained: false`: a version without a reference, a model that cannot be explained), which fail with a 400
 *   and would otherwise drop out of every SLI. Other failures are availability's business.
 */
export function requestCount(sli: SliSpec, e: Pick<PredictionEvent, 'status' | 'latencyMs' | 'error' | 'explained'>): SliCount | undefined {
  if (sli.kind === 'latency') {
    if (e.status !== 'ok') return undefined;
    return { good: e.latencyMs <= sli.thresholdMs ? 1 : 0, total: 1 };
  }
  if (sli.kind === 'availability') {
    if (e.status === 'ok') return { good: 1, total: 1 };
    return errorStatus(e.error) >= 500 ? { good: 0, total: 1 } : undefined;
  }
  if (sli.kind === 'explanation_coverage') {
    if (e.status === 'ok') return { good: e.explained === true ? 1 : 0, total: 1 };
    return e.explained === false ? { good: 0, total: 1 } : undefined;
  }
  return undefined;
}

/**
 * One evaluated monitoring window's contribution to a window SLI, or undefined when the window says nothing
 * about it (no rows, no completeness checks, no labels yet, no offline metric to compare with).
 * - drift_free: 1 event, good without dataset drift;
 * - completeness: 1 event, good when every `completeness` check passes;
 * - accuracy (realized): one event per labelled prediction, good when correct — accuracy × labelled for
 *   classifiers; for regression a prediction is correct unless its error exceeds twice the reference MAE (the
 *   window's concept-drift mismatch rule);
 * - accuracy (live_offline_gap): 1 event, good when the live metric is within tolerance of the offline one.
 */
export function windowCount(sli: SliSpec, w: Pick<WindowResult, 'rows' | 'drift' | 'quality' | 'performance'>): SliCount | undefined {
  if (w.rows <= 0) return undefined;
  switch (sli.kind) {
    case 'drift_free':
      return { good: w.drift.datasetDrift ? 0 : 1, total: 1 };
    case 'completeness': {
      const checks = w.quality.checks.filter((c) => c.metric === 'completeness');
      if (checks.length === 0) return undefined;
      return { good: checks.some((c) => c.failed) ? 0 : 1, total: 1 };
    }
    case 'accuracy': {
      const p = w.performance;
      if (!p) return undefined;
      if (sli.method === 'live_offline_gap') return p.offline ? { good: p.offline.healthy ? 1 : 0, total: 1 } : undefined;
      if (p.labelled <= 0 || !p.realized) return undefined;
      const accuracy = (p.realized as { accuracy?: number }).accuracy;
      // accuracy = correct / labelled exactly, so rounding recovers the count of correct predictions.
      if (typeof accuracy === 'number') return { good: Math.round(accuracy * p.labelled), total: p.labelled };
      if (p.concept) return { good: Math.round((1 - p.concept.mismatchRate) * p.labelled), total: p.labelled };
      return undefined;
    }
    default:
      return undefined;
  }
}

/** What one deployment did between two cost samples. */
export interface DeploymentUsage {
  /** Successful inferences (requests answered with predictions). */
  inferences: number;
  /** Sum of request latencies (ms), failures included: the deployment's share of busy time. */
  busyMs: number;
  /** Requests of any outcome. */
  requests: number;
}

/**
 * Cost per 1,000 inferences of each deployment between two samples of process CPU time:
 *   cost = costPerCpuHour × cpuSeconds / 3600, split across deployments by their share of request time (busyMs;
 *   by request count when no time was measured), then divided by the deployment's inferences × 1000.
 * With one deployment this is costPerCpuHour × CPU-seconds per minute / 3600 / inferences per minute × 1000.
 * Deployments without a successful inference get no figure (nothing to divide by).
 */
export function costPer1k(cpuSeconds: number, costPerCpuHour: number, usage: ReadonlyMap<string, DeploymentUsage>): Map<string, number> {
  const out = new Map<string, number>();
  let busy = 0;
  let requests = 0;
  for (const u of usage.values()) {
    busy += u.busyMs;
    requests += u.requests;
  }
  const cost = (costPerCpuHour * Math.max(0, cpuSeconds)) / 3600;
  for (const [deployment, u] of usage) {
    if (u.inferences <= 0) continue;
    const share = busy > 0 ? u.busyMs / busy : requests > 0 ? u.requests / requests : 0;
    out.set(deployment, ((cost * share) / u.inferences) * 1000);
  }
  return out;
}
