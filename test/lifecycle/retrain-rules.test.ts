/**
 * The rules behind retraining, case by case: each trigger fires on its own evidence and counts again after a run;
 * each guardrail holds a fired trigger; the gate's metric checks follow MLflow's MetricThreshold; a command line is
 * split as a shell would, without running one.
 */
import { describe, expect, it } from 'vitest';
import { evaluateTriggers, metricChecks, parseRetrainPolicy, runGate, splitCommand } from '../../src/lifecycle/index.ts';
import type { WindowSummary } from '../../src/monitoring/index.ts';
import type { JobRecord } from '../../src/storage/index.ts';

const HOUR = 3600_000;
const NOW = 1_800_000_000_000;

const window = (i: number, o: { drift?: boolean; labelled?: number; healthy?: boolean; live?: number; machine?: number; shift?: number; estimated?: number } = {}): WindowSummary => ({
  windowStart: NOW - (i + 1) * HOUR,
  windowEnd: NOW - i * HOUR,
  rows: 100,
  datasetDrift: o.drift ?? false,
  driftShare: o.drift ? 0.5 : 0,
  predictionDrift: false,
  qualityFailures: 0,
  features: [],
  ...(o.labelled !== undefined || o.healthy !== undefined || o.estimated !== undefined
    ? {
        performance: {
          task: 'regression',
          labelled: o.labelled ?? 0,
          labelsBySource: { human: o.labelled ?? 0, system: 0, model: 0 },
          lateLabels: 0,
          ...(o.healthy !== undefined ? { offline: { metric: 'rmse', offline: 100, live: o.live ?? 100, gap: ((o.live ?? 100) - 100) / 100, healthy: o.healthy } } : {}),
          ...(o.estimated !== undefined ? { estimated: { mae: o.estimated * 0.8, rmse: o.estimated } } : {}),
          ...(o.labelled ? { concept: { labelShift: o.shift ?? 0, labelShiftAlert: false, mismatchRate: 0, mismatchAlert: false, machineLabelShare: o.machine ?? 0, machineLabelAlert: false } } : {}),
        },
      }
    : {}),
});

const base = { train: { trainer: 'gbt' }, data: { minRows: 100 } };
const evaluate = (policy: unknown, windows: WindowSummary[], jobs: { last?: Partial<JobRecord>; active?: Partial<JobRecord> } = {}, policyUpdatedAt = NOW - 10 * HOUR) =>
  evaluateTriggers({
    now: NOW,
    policy: parseRetrainPolicy(policy),
    policyUpdatedAt,
    version: 1,
    offline: { rmse: 100, mae: 80 },
    windows,
    ...(jobs.last ? { lastJob: jobs.last as JobRecord } : {}),
    ...(jobs.active ? { activeJob: jobs.active as JobRecord } : {}),
  });

describe('retraining triggers and guardrails', () => {
  it('drift fires on N drifted windows in a row, newest first, and not on N−1 or a gap', () => {
    const p = { ...base, triggers: { drift: { windows: 3 } } };
    const lab = { labelled: 200 };
    expect(evaluate(p, [window(0, { drift: true, ...lab }), window(1, { drift: true }), window(2, { drift: true })])).toMatchObject({ decision: 'start', fired: { trigger: 'drift', values: { drifted: 3, windows: 3, needed: 3 } } });
    expect(evaluate(p, [window(0, { drift: true, ...lab }), window(1, { drift: true })]).decision).toBe('none');
    expect(evaluate(p, [window(0, { drift: true, ...lab }), window(1), window(2, { drift: true }), window(3, { drift: true })]).decision).toBe('none');
    // After a run, only windows that began after it count.
    const ran = { last: { id: 1, createdAt: NOW - 2.5 * HOUR, finishedAt: NOW - 2.4 * HOUR, state: 'succeeded' as const } };
    const p0 = { ...p, guardrails: { cooldown: 0 } };
    expect(evaluate(p0, [window(0, { drift: true, ...lab }), window(1, { drift: true }), window(2, { drift: true })], ran).decision).toBe('none');
  });

  it('accuracy fires when live RMSE is outside the offline tolerance, or, without labels, the DLE estimate is', () => {
    const p = { ...base, triggers: { accuracy: { windows: 2 } } };
    expect(evaluate(p, [window(0, { labelled: 200, healthy: false, live: 130 }), window(1, { labelled: 50, healthy: false, live: 120 })])).toMatchObject({ decision: 'start', fired: { trigger: 'accuracy', values: { below: 2, judged: 2, newest: 130, offline: 100 } } });
    expect(evaluate(p, [window(0, { labelled: 200, healthy: false, live: 130 }), window(1, { labelled: 50, healthy: true })]).decision).toBe('none');
    // Estimates: RMSE 110 is 10 % above offline 100, past the 5 % tolerance; 104 is within it.
    const est = [window(0, { estimated: 110, labelled: 0 }), window(1, { estimated: 112, labelled: 150 })];
    expect(evaluate(p, est).fired?.values).toMatchObject({ below: 2 });
    expect(evaluate({ ...p, triggers: { accuracy: { windows: 2, estimated: false } } }, est).triggers[0]!.fired).toBe(false);
    expect(evaluate(p, [window(0, { estimated: 104, labelled: 200 }), window(1, { estimated: 104 })]).triggers[0]!.fired).toBe(false);
  });

  it('labels fire on enough labelled rows since the last run; a schedule from the last run or the policy', () => {
    const p = { ...base, triggers: { labels: { min: 300 } } };
    expect(evaluate(p, [window(0, { labelled: 200 }), window(1, { labelled: 100 })]).fired).toMatchObject({ trigger: 'labels', values: { labelled: 300, min: 300 } });
    const since = { last: { id: 2, createdAt: NOW - 1.5 * HOUR, finishedAt: NOW - 1.4 * HOUR, state: 'rejected' as const } };
    expect(evaluate({ ...p, guardrails: { cooldown: 0 } }, [window(0, { labelled: 200 }), window(1, { labelled: 100 })], since).triggers[0]).toMatchObject({ fired: false, values: { labelled: 200 } });
    const s = { ...base, triggers: { schedule: { every: '6h' } } };
    expect(evaluate(s, [window(0, { labelled: 200 })], {}, NOW - 7 * HOUR).decision).toBe('start');
    expect(evaluate(s, [window(0, { labelled: 200 })], {}, NOW - 5 * HOUR).decision).toBe('none');
    expect(evaluate({ ...s, guardrails: { cooldown: 0 } }, [window(0, { labelled: 200 })], { last: { id: 3, createdAt: NOW - 5 * HOUR, finishedAt: NOW - 4 * HOUR, state: 'failed' } }, NOW - 30 * HOUR).decision).toBe('none');
  });

  it('each guardrail holds a fired trigger and says why: disabled, a run active, cooldown, machine labels, label shift, too little data', () => {
    const p = { ...base, triggers: { labels: { min: 100 } } };
    const ws = [window(0, { labelled: 200 })];
    const held = (policy: unknown, w = ws, jobs = {}) => {
      const e = evaluate(policy, w, jobs);
      expect(e.decision).toBe('hold');
      return e.guardrails.filter((g) => g.holding).map((g) => g.guardrail);
    };
    expect(evaluate(p, ws).decision).toBe('start');
    expect(held({ ...p, enabled: false })).toEqual(['enabled']);
    expect(held(p, ws, { active: { id: 9, state: 'running' } })).toEqual(['one-at-a-time']);
    const recent = { last: { id: 9, createdAt: NOW - 3 * HOUR, finishedAt: NOW - 2 * HOUR, state: 'succeeded' as const } };
    expect(held({ ...p, triggers: { schedule: { every: '1h' } } }, ws, recent)).toEqual(['cooldown']);
    expect(evaluate({ ...p, triggers: { schedule: { every: '1h' } }, guardrails: { cooldown: '1h' } }, ws, recent).decision).toBe('start');
    expect(held(p, [window(0, { labelled: 200, machine: 0.3 })])).toEqual(['machine-labels']);
    expect(evaluate({ ...p, guardrails: { maxMachineLabelShare: 0.5 } }, [window(0, { labelled: 200, machine: 0.3 })]).decision).toBe('start');
    expect(held({ ...p, guardrails: { maxLabelShift: 0.5 } }, [window(0, { labelled: 200, shift: 0.7 })])).toEqual(['label-shift']);
    // Without a limit, label shift is reported as monitoring measures it, not held on.
    expect(evaluate(p, [window(0, { labelled: 200, shift: 0.7 })]).decision).toBe('start');
    expect(held({ ...p, data: { minRows: 500 } })).toEqual(['data']);
    expect(evaluate({ ...p, data: { minRows: 500 } }, ws).reason).toMatch(/labels fired, held by data: 200 labelled rows in the data range; a run needs 500/);
  });
});

describe('the validation gate', () => {
  it('follows MLflow MetricThreshold: threshold inclusive, changes strictly better, relative to |baseline|', () => {
    const lower = { greaterIsBetter: false };
    expect(metricChecks('mae', { ...lower, threshold: 50 }, 50, 60)[0]!.passed).toBe(true);
    expect(metricChecks('mae', { ...lower, threshold: 50 }, 50.01, 60)[0]!.passed).toBe(false);
    expect(metricChecks('r2', { greaterIsBetter: true, threshold: 0.8 }, 0.8, 0.7)[0]!.passed).toBe(true);
    // Absolute: MAE 55 beats 60 by 5, which is not more than 5.
    expect(metricChecks('mae', { ...lower, minAbsoluteChange: 5 }, 55, 60)[0]!.passed).toBe(false);
    expect(metricChecks('mae', { ...lower, minAbsoluteChange: 5 }, 54.9, 60)[0]!.passed).toBe(true);
    // Relative: 10 % of |−2| for a negative R² baseline.
    expect(metricChecks('r2', { greaterIsBetter: true, minRelativeChange: 0.1 }, -1.7, -2)[0]).toMatchObject({ passed: true, baseline: -2 });
    expect(metricChecks('r2', { greaterIsBetter: true, minRelativeChange: 0.1 }, -1.85, -2)[0]!.passed).toBe(false);
    // Against 0, any improvement.
    expect(metricChecks('r2', { greaterIsBetter: true, minRelativeChange: 0.5 }, 0.01, 0)[0]!.passed).toBe(true);
    expect(metricChecks('accuracy', { greaterIsBetter: true, threshold: 0.5 }, undefined, 0.9)[0]).toMatchObject({ passed: false, detail: expect.stringMatching(/could not be computed/) });
  });

  it('fails on a different signature, the latency budget, and a segment worse than the margin, keeping every number', () => {
    const labels = Float64Array.from({ length: 200 }, (_, i) => i);
    const stable = Float32Array.from(labels, (y) => y + 10);
    // Better everywhere but segment b, where it is twice as far off.
    const segments = Array.from(labels, (_, i) => (i < 150 ? 'season=a' : 'season=b'));
    const candidate = Float32Array.from(labels, (y, i) => (i < 150 ? y + 2 : y + 20));
    const sig = { inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'variable', datatype: 'FP32', shape: [-1, 1] }] };
    const report = runGate({
      task: 'regression',
      labels,
      stable,
      candidate,
      segments,
      rules: { metrics: { mae: { greaterIsBetter: false, minRelativeChange: 0.1 } }, latencyBudgetMs: 1, segments: { maxDrop: 0.2, minRows: 30 } },
      signatures: { stable: sig, candidate: sig },
      signatureDifferences: ['input input: dimension 1 is 3, was 2'],
      latency: { p99Ms: 1.5, runs: 200 },
    });
    expect(report.passed).toBe(false);
    expect(report.checks.map((c) => [c.check, c.passed])).toEqual([['signature', false], ['mae relative change', true], ['latency', false], ['segments', false]]);
    expect(report.metrics.candidate.mae).toBeCloseTo((150 * 2 + 50 * 20) / 200, 9);
    expect(report.checks[3]).toMatchObject({ value: 1, limit: 0.2, detail: expect.stringMatching(/worst of 2 segments: season=b \(50 rows\), mae 20\.0.* against stable 10\.0.*100\.0 % worse/) });
    expect(report.summary).toMatch(/^failed 3 of 4 checks \(signature, latency, segments\): mae 6\.500 against stable 10\.000 on 200 holdout rows$/);
  });

  it('splits a command as a POSIX shell would, and refuses what only a shell would do', () => {
    expect(splitCommand(`python "train me.py" --data {dataset} --out '{model}' a\\ b ""`)).toEqual(['python', 'train me.py', '--data', '{dataset}', '--out', '{model}', 'a b', '']);
    expect(() => splitCommand('train {dataset} {model} > log')).toThrow(/runs without a shell/);
    expect(() => splitCommand('train "{dataset}')).toThrow(/unclosed quote/);
    expect(splitCommand('echo "a|b"')).toEqual(['echo', 'a|b']);
  });
});
