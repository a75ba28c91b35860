/** SLO definitions: validation with clear, path-naming errors; and what each SLI kind counts as good. */
import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/errors.ts';
import type { WindowResult } from '../../src/monitoring/index.ts';
import { costPer1k, durationMs, errorStatus, parseSlo, parseSloFile, requestCount, windowCount, type SliSpec } from '../../src/slo/index.ts';

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WardenError);
    expect((e as WardenError).code).toBe('WARDEN_BAD_REQUEST');
    expect((e as WardenError).status).toBe(400);
    return (e as WardenError).message;
  }
  throw new Error('expected a refusal');
}

const base = { name: 'busy-latency', deployment: 'busy', sli: { kind: 'latency', thresholdMs: 25 }, objective: 0.99, period: '30d' };

describe('parseSlo', () => {
  it('accepts each SLI kind and applies defaults', () => {
    expect(parseSlo(base)).toEqual(base);
    expect(parseSlo({ ...base, sli: { kind: 'accuracy' } }).sli).toEqual({ kind: 'accuracy', method: 'realized' });
    expect(parseSlo({ ...base, sli: { kind: 'accuracy', method: 'live_offline_gap' } }).sli).toEqual({ kind: 'accuracy', method: 'live_offline_gap' });
    for (const kind of ['availability', 'drift_free', 'completeness', 'explanation_coverage']) expect(parseSlo({ ...base, sli: { kind } }).sli).toEqual({ kind });
    expect(parseSlo({ ...base, sli: { kind: 'cost', maxCostPer1k: 0.02 } }).sli).toEqual({ kind: 'cost', maxCostPer1k: 0.02 });
    expect(parseSlo({ ...base, period: '7d', description: 'p99 under 25 ms' }).description).toBe('p99 under 25 ms');
  });

  it('refuses bad objectives with a reason a user can act on', () => {
    expect(refusal(() => parseSlo({ ...base, objective: 1 }))).toContain('objective: must be below 1 (an objective of 1 leaves no error budget; write 0.999 for 99.9%)');
    expect(refusal(() => parseSlo({ ...base, objective: 99.9 }))).toContain('objective: must be below 1');
    expect(refusal(() => parseSlo({ ...base, objective: 0 }))).toContain('objective: must be above 0');
    expect(refusal(() => parseSlo({ ...base, objective: '0.99' }))).toContain('objective: Expected number, received string');
  });

  it('refuses bad periods, names, kinds and SLI fields, naming the path', () => {
    expect(refusal(() => parseSlo({ ...base, period: '30 days' }))).toContain('period: must be a duration between 1h and 400d such as "30d", "28d" or "7d"');
    expect(refusal(() => parseSlo({ ...base, period: '5m' }))).toContain('period: must be a duration between 1h and 400d');
    expect(refusal(() => parseSlo({ ...base, period: '2y' }))).toContain('period:');
    expect(refusal(() => parseSlo({ ...base, name: 'Busy Latency' }))).toContain('name: must be 1-64 characters of a-z, 0-9');
    expect(refusal(() => parseSlo({ ...base, sli: { kind: 'throughput' } }))).toContain(
      'sli.kind: must be one of latency, availability, accuracy, drift_free, completeness, cost',
    );
    expect(refusal(() => parseSlo({ ...base, sli: { kind: 'latency' } }))).toContain('sli.thresholdMs: Required');
    expect(refusal(() => parseSlo({ ...base, sli: { kind: 'latency', thresholdMs: -1 } }))).toContain('sli.thresholdMs: Number must be greater than 0');
    expect(refusal(() => parseSlo({ ...base, sli: { kind: 'availability', thresholdMs: 5 } }))).toContain('sli: unknown key thresholdMs');
    expect(refusal(() => parseSlo({ ...base, sli: { kind: 'accuracy', method: 'f1' } }))).toContain('sli.method:');
    expect(refusal(() => parseSlo({ ...base, sli: { kind: 'cost' } }))).toContain('sli.maxCostPer1k: Required');
    expect(refusal(() => parseSlo({ ...base, sli: { kind: 'throughput' } }))).toContain('completeness, cost, explanation_coverage');
    expect(refusal(() => parseSlo({ ...base, sli: { kind: 'explained' } }))).toContain('sli.kind: must be one of');
    // Coverage has no parameters: which requests count is fixed (every successful one), not chosen per SLO.
    expect(refusal(() => parseSlo({ ...base, sli: { kind: 'explanation_coverage', thresholdMs: 25 } }))).toContain('sli: unknown key thresholdMs');
    expect(refusal(() => parseSlo({ ...base, sli: { kind: 'explanation_coverage', onlyAsked: true } }))).toContain('sli: unknown key onlyAsked');
    expect(refusal(() => parseSlo({ ...base, target: 0.9 }))).toContain('unknown key target');
    // Every problem at once, not one per round trip.
    const all = refusal(() => parseSlo({ name: 'x', sli: { kind: 'latency' }, objective: 2, period: 'soon' }));
    expect(all).toContain('deployment: Required');
    expect(all).toContain('sli.thresholdMs: Required');
    expect(all).toContain('objective: must be below 1');
    expect(all).toContain('period: must be a duration');
  });
});

describe('parseSloFile', () => {
  it('reads a list of SLOs; an empty file has none', () => {
    expect(parseSloFile({ slos: [base, { ...base, name: 'b' }] }).map((s) => s.name)).toEqual(['busy-latency', 'b']);
    expect(parseSloFile(null)).toEqual([]);
    expect(parseSloFile({})).toEqual([]);
    expect(parseSloFile({ slos: null })).toEqual([]);
  });

  it('names the entry at fault, and refuses duplicate names', () => {
    expect(refusal(() => parseSloFile({ slos: [base, { ...base, name: 'b', objective: 1.5 }] }, 'slo.yaml'))).toContain('slo.yaml is invalid: slos[1].objective: must be below 1');
    expect(refusal(() => parseSloFile({ slos: [base, base] }, 'slo.yaml'))).toContain('slos[1].name: busy-latency is defined twice');
    expect(refusal(() => parseSloFile({ slo: [] }))).toContain('unknown key slo');
    expect(refusal(() => parseSloFile({ slos: {} }))).toContain('slos: Expected array');
  });
});

describe('durationMs', () => {
  it('reads one number and one unit', () => {
    expect(durationMs('30d')).toBe(30 * 86_400_000);
    expect(durationMs('6h')).toBe(21_600_000);
    expect(durationMs('1.5h')).toBe(5_400_000);
    expect(durationMs('2w')).toBe(14 * 86_400_000);
    expect(durationMs('30')).toBeUndefined();
    expect(durationMs('1h30m')).toBeUndefined();
  });
});

describe('request SLIs', () => {
  const latency: SliSpec = { kind: 'latency', thresholdMs: 25 };
  const availability: SliSpec = { kind: 'availability' };
  const ok = (latencyMs: number) => ({ status: 'ok' as const, latencyMs });
  const failed = (error: string) => ({ status: 'error' as const, latencyMs: 1, error });

  it('maps a logged error to its HTTP status through the catalogue; unknown codes are 500s', () => {
    expect(errorStatus('WARDEN_INVALID_INPUT: input x has shape [1]')).toBe(400);
    expect(errorStatus('WARDEN_VERSION_NOT_FOUND: no version 9')).toBe(404);
    expect(errorStatus('WARDEN_RATE_LIMITED: too many')).toBe(429);
    expect(errorStatus('WARDEN_INFERENCE_FAILED: runtime died')).toBe(500);
    expect(errorStatus('WARDEN_MODEL_NOT_READY: cannot load')).toBe(503);
    expect(errorStatus('WARDEN_NOT_IN_THE_CATALOGUE: ?')).toBe(500);
    expect(errorStatus('boom')).toBe(500);
    expect(errorStatus(undefined)).toBe(500);
  });

  it('latency: successful requests within the threshold are good; failures do not count', () => {
    expect(requestCount(latency, ok(24.9))).toEqual({ good: 1, total: 1 });
    expect(requestCount(latency, ok(25))).toEqual({ good: 1, total: 1 });
    expect(requestCount(latency, ok(25.1))).toEqual({ good: 0, total: 1 });
    expect(requestCount(latency, failed('WARDEN_INFERENCE_FAILED: x'))).toBeUndefined();
  });

  it('availability: 5xx failures are bad, 4xx failures are the caller’s and count neither way', () => {
    expect(requestCount(availability, ok(3))).toEqual({ good: 1, total: 1 });
    expect(requestCount(availability, failed('WARDEN_INFERENCE_FAILED: x'))).toEqual({ good: 0, total: 1 });
    expect(requestCount(availability, failed('WARDEN_MODEL_NOT_READY: x'))).toEqual({ good: 0, total: 1 });
    expect(requestCount(availability, failed('WARDEN_INVALID_INPUT: x'))).toBeUndefined();
    expect(requestCount(availability, failed('WARDEN_BAD_REQUEST: x'))).toBeUndefined();
    expect(requestCount(availability, failed('WARDEN_RATE_LIMITED: x'))).toBeUndefined();
    expect(requestCount({ kind: 'drift_free' }, ok(3))).toBeUndefined();
  });

  it('explanation_coverage: every successful request counts, good when explained; a failed explanation is bad', () => {
    const coverage: SliSpec = { kind: 'explanation_coverage' };
    expect(requestCount(coverage, { ...ok(3), explained: true })).toEqual({ good: 1, total: 1 });
    // A request that did not ask is still a request the deployment answered unexplained.
    expect(requestCount(coverage, ok(3))).toEqual({ good: 0, total: 1 });
    // The model answered, the explanation failed (400: no reference, a model that cannot be explained).
    expect(requestCount(coverage, { ...failed('WARDEN_BAD_REQUEST: gbr v2 has no reference'), explained: false })).toEqual({ good: 0, total: 1 });
    // Other failures, client or server, are availability's.
    expect(requestCount(coverage, failed('WARDEN_BAD_REQUEST: parameters.explain must be true, false or …'))).toBeUndefined();
    expect(requestCount(coverage, failed('WARDEN_INFERENCE_FAILED: x'))).toBeUndefined();
    // The flag means nothing to the other kinds.
    expect(requestCount(availability, { ...failed('WARDEN_BAD_REQUEST: x'), explained: false })).toBeUndefined();
    expect(requestCount(latency, { ...ok(3), explained: true })).toEqual({ good: 1, total: 1 });
  });
});

describe('window SLIs', () => {
  /** A window result with just what the SLIs read. */
  function win(over: Partial<WindowResult> = {}): WindowResult {
    return {
      model: 'busy',
      version: 1,
      windowStart: 0,
      windowEnd: 3_600_000,
      rows: 500,
      drift: { datasetDrift: false } as WindowResult['drift'],
      quality: {
        rows: 500,
        failed: 0,
        checks: [
          { column: 'temp', metric: 'completeness', value: 1, threshold: 0.95, failed: false },
          { column: 'hum', metric: 'completeness', value: 0.99, threshold: 0.95, failed: false },
          { column: 'temp', metric: 'out_of_range_share', value: 0.5, threshold: 0.01, failed: true },
        ],
      },
      extraFeatures: {},
      histograms: [],
      ...over,
    };
  }

  it('drift_free: one event per window, good without dataset drift', () => {
    expect(windowCount({ kind: 'drift_free' }, win())).toEqual({ good: 1, total: 1 });
    expect(windowCount({ kind: 'drift_free' }, win({ drift: { datasetDrift: true } as WindowResult['drift'] }))).toEqual({ good: 0, total: 1 });
    expect(windowCount({ kind: 'drift_free' }, win({ rows: 0 }))).toBeUndefined();
  });

  it('completeness: good when every completeness check passes (other checks are not its business)', () => {
    expect(windowCount({ kind: 'completeness' }, win())).toEqual({ good: 1, total: 1 });
    const w = win();
    w.quality.checks[1]!.failed = true;
    expect(windowCount({ kind: 'completeness' }, w)).toEqual({ good: 0, total: 1 });
    expect(windowCount({ kind: 'completeness' }, win({ quality: { rows: 500, failed: 0, checks: [] } }))).toBeUndefined();
  });

  it('accuracy: correct labelled predictions (realized), or windows within the offline tolerance', () => {
    const perf = (p: Partial<NonNullable<WindowResult['performance']>>) =>
      win({ performance: { task: 'binary', labelled: 0, labelsBySource: { human: 0, system: 0, model: 0 }, lateLabels: 0, ...p } });
    const realized = { kind: 'accuracy', method: 'realized' } as const;
    const gap = { kind: 'accuracy', method: 'live_offline_gap' } as const;
    // 200 labelled at accuracy 0.915 → 183 correct.
    const w = perf({ labelled: 200, realized: { accuracy: 0.915 } as never, offline: { metric: 'accuracy', offline: 0.95, live: 0.915, gap: -0.0368, healthy: true } });
    expect(windowCount(realized, w)).toEqual({ good: 183, total: 200 });
    expect(windowCount(gap, w)).toEqual({ good: 1, total: 1 });
    expect(windowCount(gap, perf({ labelled: 10, realized: { accuracy: 0.5 } as never, offline: { metric: 'accuracy', offline: 0.95, live: 0.5, gap: -0.47, healthy: false } }))).toEqual({
      good: 0,
      total: 1,
    });
    // Regression: correct unless the error exceeds twice the reference MAE (1 − mismatch rate 0.1 of 50 → 45).
    const reg = perf({ task: 'regression', labelled: 50, realized: { rmse: 3 } as never, concept: { mismatchRate: 0.1 } as never });
    expect(windowCount(realized, reg)).toEqual({ good: 45, total: 50 });
    // Nothing labelled yet, no performance configured, no offline metric: the window says nothing.
    expect(windowCount(realized, perf({ labelled: 0 }))).toBeUndefined();
    expect(windowCount(realized, win())).toBeUndefined();
    expect(windowCount(gap, perf({ labelled: 5, realized: { accuracy: 1 } as never }))).toBeUndefined();
  });
});

describe('costPer1k', () => {
  it('prices process CPU time and splits it by request time across deployments', () => {
    // 36 CPU-seconds at 0.5 per CPU-hour = 0.005. a had 300 ms of request time, b 100 ms: a pays 3/4 = 0.00375 for
    // 100 inferences → 0.0375 per 1,000; b pays 0.00125 for 50 → 0.025 per 1,000.
    const costs = costPer1k(36, 0.5, new Map([
      ['a', { inferences: 100, busyMs: 300, requests: 110 }],
      ['b', { inferences: 50, busyMs: 100, requests: 50 }],
    ]));
    expect(costs.get('a')).toBeCloseTo(0.0375, 12);
    expect(costs.get('b')).toBeCloseTo(0.025, 12);
  });

  it('with one deployment is costPerCpuHour × CPU-seconds / 3600 / inferences × 1000', () => {
    // 0.5 × 36 / 3600 / 150 × 1000 = 0.0333…
    expect(costPer1k(36, 0.5, new Map([['a', { inferences: 150, busyMs: 10, requests: 150 }]])).get('a')).toBeCloseTo(0.5 * 36 / 3600 / 150 * 1000, 12);
  });

  it('gives no figure without inferences, and splits by requests when no time was measured', () => {
    const costs = costPer1k(3.6, 1, new Map([
      ['idle', { inferences: 0, busyMs: 0, requests: 2 }],
      ['x', { inferences: 2, busyMs: 0, requests: 2 }],
    ]));
    expect(costs.has('idle')).toBe(false);
    // 0.001 × 2/4 / 2 × 1000 = 0.25
    expect(costs.get('x')).toBeCloseTo(0.25, 12);
  });
});
