/**
 * The other strategies and the controller's guards on a real server: shadow copies are logged and compared, never
 * returned; an A/B experiment assigns callers by key, reads outcomes posted later and counts unknown keys; a canary
 * without traffic is inconclusive, pauses after its limit and never fails; a page-level alert of the deployment
 * aborts its rollout within an interval.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertCondition } from '../../src/alerting/index.ts';
import { bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { bikeInstance, until } from '../helpers/rollouts.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const instanceAt = bikeInstance;


describe('rollout strategies', () => {
  let srv: TestServer;
  /** A page-severity condition the test raises for a deployment, as an SLO burning fast would. */
  const pages = new Set<string>();
  /** Deployments whose stable version (v1) pages about its own live accuracy. */
  const stablePages = new Set<string>();

  beforeAll(async () => {
    srv = await startTestServer({ rollouts: { syncMs: 100 }, predictionLog: { flushIntervalMs: 50 }, alerting: { evaluationIntervalMs: 100 } } as never);
    for (const model of ['bike', 'quiet']) {
      for (const seed of [1, 2]) {
        const { onnx } = await train({ ...bikeSharingDemoOptions('linear'), seed });
        const res = await fetch(`${srv.url}/api/v1/models/${model}/versions${seed === 1 ? '?alias=champion' : ''}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(onnx) });
        expect(res.status).toBe(201);
      }
    }
    await srv.warden.table.settled();
    srv.warden.alerting!.addSource({
      name: 'test-pages',
      evaluate: async (): Promise<AlertCondition[]> =>
        [
          ...[...pages].map((deployment) => ({
            alertname: 'SLOErrorBudgetBurn',
            labels: { deployment, slo: `${deployment}-availability`, window: '1h' },
            severity: 'page' as const,
            active: true,
            summary: `${deployment}: burning its budget at 20×`,
            description: 'test condition',
            runbookUrl: 'docs/runbooks/latency-spike.md',
          })),
          ...[...stablePages].map((deployment) => ({
            alertname: 'WardenLivePerformanceBelowOffline',
            labels: { deployment, model: deployment, version: '1', metric: 'rmse' },
            severity: 'page' as const,
            active: true,
            summary: `Live rmse of ${deployment} v1 is below its offline value`,
            description: 'test condition',
            runbookUrl: 'docs/runbooks/training-serving-skew.md',
          })),
        ],
    });
  }, 120_000);
  afterAll(() => srv.close());

  const predict = (model: string, i: number, parameters?: Record<string, unknown>) =>
    srv.json('POST', `/v1/models/${model}:predict`, { instances: [instanceAt(i)], ...(parameters ? { parameters } : {}) });

  it('shadow: the candidate answers copies off the caller\'s clock; callers only ever get stable', async () => {
    const start = await srv.json('POST', '/api/v1/deployments/bike/deploy', { version: 2, strategy: 'shadow', spec: { mirror: 100, analysis: { interval: '1s', minSamples: 30, metrics: { latencyP99: { slackMs: 50 } } } } });
    // The slack is wide because both sides are the same small model and this test is about the mechanism: on 2 cores
    // shared with other test files, 5 ms of scheduling noise once aborted the shadow on a latency "regression".
    expect(start.status).toBe(200);
    expect(start.body.rollout).toMatchObject({ strategy: 'shadow', weight: 0, mirror: 100 });
    // The aliases show the deployment's state; the rollout owns champion until it ends.
    const aliases = await srv.json('GET', '/api/v1/models/bike/aliases');
    expect(aliases.body.deployment).toMatchObject({ stable: 1, strategy: 'shadow', candidate: { version: 2, state: 'running', weight: 0, mirror: 100 } });
    const moved = await srv.json('PUT', '/api/v1/models/bike/aliases/champion', { version: 2 });
    expect(moved.status).toBe(409);
    expect(moved.body.error).toMatch(/running shadow rollout of v2 .* owns champion: promote or abort it/);
    expect((await srv.json('PUT', '/api/v1/models/bike/aliases/challenger', { version: 2 })).status).toBe(200);
    const versions = new Set<string>();
    for (let i = 0; i < 800; i++) {
      const r = await predict('bike', i);
      expect(r.status).toBe(200);
      versions.add(r.body.model_version);
    }
    expect([...versions]).toEqual(['1']);
    await srv.warden.shadow.drained();
    const st = srv.warden.shadow.stats();
    expect(st.run).toBe(800);
    expect(st.dropped).toBe(0);
    // The copies are in the log, flagged, under the caller's request ids.
    const shadow = await until(async () => {
      const evs = await srv.warden.stores.events.queryPredictions({ model: "bike", status: "shadow", limit: 1000 });
      return evs.length >= 800 ? evs : undefined;
    }, 5000, 'shadow events');
    const served = await srv.warden.stores.events.queryPredictions({ model: 'bike', requestId: shadow[0]!.requestId, limit: 5 });
    expect(served.map((e) => e.status).sort()).toEqual(['ok', 'shadow']);
    const decided = await until(async () => {
      const d = (await srv.json('GET', '/api/v1/deployments/bike/rollout')).body.decisions as { metric: string; verdict: string; value: number; detail: Record<string, unknown> }[];
      return d.some((x) => x.metric === 'agreement' && x.verdict !== 'inconclusive') ? d : undefined;
    }, 10_000, 'an analysis of the shadow').catch(async (e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify((await srv.json('GET', '/api/v1/deployments/bike/rollout')).body.decisions)}`);
    });
    const agreement = decided.find((d) => d.metric === 'agreement')!;
    expect(agreement.verdict).toBe('success');
    expect(agreement.value).toBeGreaterThan(0.9);
    expect(agreement.detail.difference).toMatchObject({ absP95: expect.any(Number) });
    // Shadow latency: the candidate's run time against stable's request latency, reported but never holding the step.
    const latency = decided.find((d) => d.metric === 'latencyP99')!;
    expect(latency.detail).toMatchObject({ blocking: false, source: expect.stringMatching(/^shadow/) });
    expect(latency.verdict).not.toBe('failure');
    // A shadow is ended by hand: promotion makes the candidate stable.
    const p = await srv.json('POST', '/api/v1/deployments/bike/rollout/promote', { reason: 'shadow looks right' });
    expect(p.status).toBe(200);
    expect(p.body.rollout.state).toBe('promoted');
    expect((await predict('bike', 1)).body.model_version).toBe('2');
  }, 60_000);

  it('A/B: sticky by key, outcomes per arm, unknown keys counted, a request without a key refused', async () => {
    const start = await srv.json('POST', '/api/v1/deployments/bike/deploy', { version: 1, strategy: 'ab', spec: { experiment: { weight: 50, metrics: ['conversion'], mde: 0.5 } } });
    expect(start.status).toBe(200);
    const noKey = await predict('bike', 0);
    expect(noKey.status).toBe(400);
    expect(noKey.body.error).toMatch(/runs an A\/B experiment, which assigns callers by key: send parameters.keys/);
    const arm = new Map<string, string>();
    for (let u = 0; u < 300; u++) {
      const key = `user-${u}`;
      const a = await predict('bike', u, { keys: [key] });
      expect(a.status).toBe(200);
      arm.set(key, a.body.model_version);
    }
    // The same caller gets the same arm, on a later request with another row.
    for (let u = 0; u < 300; u += 7) {
      const again = await predict('bike', u + 1000, { assignment_key: `user-${u}`, keys: [`user-${u}-again`] });
      expect(again.body.model_version).toBe(arm.get(`user-${u}`));
    }
    const onCandidate = [...arm.values()].filter((v) => v === '1').length;
    // 50 % of 300 keys: a 4-sigma band is ±35.
    expect(Math.abs(onCandidate - 150)).toBeLessThan(35);
    await srv.warden.log!.flush();
    // Conversions: 40 % of the candidate's callers, 10 % of the stable's, deterministic by key number.
    const outcomes = [...arm].map(([key, v], i) => ({ key, metric: 'conversion', value: (v === '1' ? i % 5 < 2 : i % 10 === 0) ? 1 : 0 }));
    outcomes.push({ key: 'nobody-saw-this', metric: 'conversion', value: 1 });
    const posted = await srv.json('POST', '/api/v1/outcomes', { outcomes });
    expect(posted.status).toBe(200);
    expect(posted.body).toMatchObject({ accepted: 301, matched: 300, unmatched: 1, unknownKeys: ['nobody-saw-this'] });
    for (const [body, msg] of [
      [{ outcomes: [{ key: 'k', metric: 'conversion', value: 'yes' }] }, /value must be a finite number/],
      [{ outcomes: [{ key: '', metric: 'conversion', value: 1 }] }, /key must be the caller key/],
      [{ outcomes: [] }, /send 1 to 5000 outcomes/],
      [{ outcome: [] }, /body must be \{"outcomes"/],
    ] as const) {
      const r = await srv.json('POST', '/api/v1/outcomes', body);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(msg);
    }
    const exp = await srv.json('GET', '/api/v1/deployments/bike/experiment');
    expect(exp.status).toBe(200);
    const conv = exp.body.metrics[0];
    expect(conv).toMatchObject({ metric: 'conversion', source: 'outcomes' });
    expect(conv.candidate.mean).toBeGreaterThan(conv.stable.mean);
    expect(conv.significant).toBe(true);
    expect(conv.lower).toBeGreaterThan(0);
    expect(exp.body.sampleRatio.mismatch).toBe(false);
    expect(exp.body.unmatchedOutcomes).toBe(1);
    expect(exp.body.warnings.join(' ')).toMatch(/1 outcome\(s\) .* named a key no prediction carries/);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    expect(metrics).toMatch(/warden_outcomes_total\{matched="false"\} 1/);
    expect((await srv.json('POST', '/api/v1/deployments/bike/rollout/abort', {})).body.rollout.state).toBe('aborted');
    expect((await predict('bike', 3)).status).toBe(200);
  }, 60_000);

  it('too little data is inconclusive: it holds the step, pauses at its limit, and never fails', async () => {
    const start = await srv.json('POST', '/api/v1/deployments/quiet/deploy', { version: 2, strategy: 'canary', spec: { steps: [{ weight: 50, pause: '1s' }], analysis: { interval: '1s', inconclusiveLimit: 2 } } });
    expect(start.status).toBe(200);
    const paused = await until(async () => {
      const s = (await srv.json('GET', '/api/v1/deployments/quiet/rollout')).body;
      return s.rollout.state === 'paused' ? s : undefined;
    }, 15_000, 'the quiet canary to pause');
    expect(paused.rollout.status.outcome).toBe('inconclusive');
    const all = (await srv.json('GET', '/api/v1/deployments/quiet/rollout/decisions')).body.decisions as { verdict: string }[];
    expect(all.length).toBeGreaterThan(0);
    expect(all.some((d) => d.verdict === 'failure')).toBe(false);
    const history = (await srv.json('GET', '/api/v1/deployments/quiet/history')).body.events;
    expect(history.at(-1)).toMatchObject({ kind: 'rollout-pause', actor: 'rollout controller' });
    expect(history.at(-1).reason).toMatch(/inconclusive for 3 runs \(limit 2\)/);
    const resumed = await srv.json('POST', '/api/v1/deployments/quiet/rollout/resume', {});
    expect(resumed.body.rollout.state).toBe('running');
    expect(resumed.body.rollout.status.stepRuns).toEqual({ success: 0, failure: 0, inconclusive: 0 });
  }, 30_000);

  it('a page-level alert of the deployment aborts its rollout within an interval; a page about the stable version alone does not', async () => {
    // quiet's canary from the last test is running again (v1 stable, v2 candidate).
    stablePages.add('quiet');
    try {
      // Firing, and seen by several syncs (100 ms) and evaluations (100 ms): the rollout runs on.
      await until(async () => (srv.warden.alerting!.alerts({ deployment: 'quiet', severity: 'page' }).some((a) => a.state === 'firing') ? true : undefined), 5000, 'the stable version\'s page to fire');
      await new Promise((r) => setTimeout(r, 600));
      expect((await srv.json('GET', '/api/v1/deployments/quiet/rollout')).body.rollout.state).toBe('running');
    } finally {
      stablePages.delete('quiet');
    }
    pages.add('quiet');
    try {
      const done = await until(async () => {
        const s = (await srv.json('GET', '/api/v1/deployments/quiet/rollout')).body;
        return s.rollout.state === 'aborted' ? s : undefined;
      }, 5000, 'the abort on a page');
      expect(done.rollout.status.outcome).toMatch(/a page-level alert fired: SLOErrorBudgetBurn \(slo quiet-availability, window 1h\)/);
      const last = (await srv.json('GET', '/api/v1/deployments/quiet/history')).body.events.at(-1);
      expect(last).toMatchObject({ kind: 'rollout-abort', actor: 'rollout controller' });
    } finally {
      pages.delete('quiet');
    }
  }, 15_000);
});
