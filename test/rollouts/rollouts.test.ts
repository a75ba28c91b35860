/**
 * Rollouts on a real server with real models: a canary of a retrained version passes its analysis step by step and
 * is promoted; a broken candidate (temperature trained in °C, served normalized) fails its analysis and is rolled
 * back automatically with an alert; a canary without traffic stays inconclusive and is never failed; shadow copies
 * are logged and compared, never returned; an A/B experiment assigns by key and reads posted outcomes.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIKE_SHARING_CSV, bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { BIKE_FEATURES, BIKE_ROWS_2011, bikeInstance, until } from '../helpers/rollouts.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const rows = BIKE_ROWS_2011;
const FEATURES = BIKE_FEATURES;
const instanceAt = bikeInstance;

/** The bike CSV with temperatures in °C (temp × 41, atemp × 50, as the dataset's README defines them). */
function celsiusCsv(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'warden-celsius-'));
  const text = readFileSync(BIKE_SHARING_CSV, 'utf8').split('\n');
  const header = text[0]!.split(',');
  const ti = header.indexOf('temp');
  const ai = header.indexOf('atemp');
  const out = [text[0]];
  for (const line of text.slice(1)) {
    if (!line) continue;
    const c = line.split(',');
    c[ti] = String(Number(c[ti]) * 41);
    c[ai] = String(Number(c[ai]) * 50);
    out.push(c.join(','));
  }
  const file = path.join(dir, 'hour-celsius.csv');
  writeFileSync(file, out.join('\n') + '\n');
  return file;
}

const fast = { interval: '1s', minSamples: 40 };


describe('rollouts', () => {
  let srv: TestServer;
  let traffic = true;
  const served = new Map<string, number>();
  let failures = 0;
  let loop: Promise<void> = Promise.resolve();

  beforeAll(async () => {
    srv = await startTestServer({ rollouts: { syncMs: 100, leaseMs: 2000 }, predictionLog: { flushIntervalMs: 50 }, alerting: { evaluationIntervalMs: 200 } } as never);
    const push = async (onnx: Uint8Array, alias = false) => {
      const res = await fetch(`${srv.url}/api/v1/models/bike/versions${alias ? '?alias=champion' : ''}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(onnx) });
      expect(res.status).toBe(201);
    };
    await push((await train({ ...bikeSharingDemoOptions('linear'), seed: 1 })).onnx, true);
    await push((await train({ ...bikeSharingDemoOptions('linear'), seed: 2 })).onnx);
    await push((await train({ ...bikeSharingDemoOptions('linear', celsiusCsv()), seed: 1 })).onnx);
    await srv.warden.table.settled();
    // v1 is monitored against 2011; a new version must inherit that, not stop being monitored.
    const refRows = rows.slice(0, 2000).map((r) => FEATURES.map((f) => Number(r[f])));
    await srv.warden.monitoring!.setReference('bike', '1', { kind: 'table', table: { names: FEATURES, rows: refRows }, name: '2011' }, {});
    // Steady traffic: 4 callers in a loop, each request a real row of 2011.
    const caller = async (c: number) => {
      for (let i = c; traffic; i += 4) {
        const r = await srv.json('POST', '/v1/models/bike:predict', { instances: [instanceAt(i)] });
        if (r.status !== 200) failures++;
        else served.set(r.body.model_version, (served.get(r.body.model_version) ?? 0) + 1);
      }
    };
    loop = Promise.all([0, 1, 2, 3].map(caller)).then(() => undefined);
  }, 120_000);

  afterAll(async () => {
    traffic = false;
    await loop;
    await srv.close();
  });

  it('refuses bad rollout requests with a clear answer', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ version: 9, strategy: 'canary' }, 404, /no version 9|version/i],
      [{ version: 2, strategy: 'canary', spec: { steps: [{ weight: 150 }] } }, 400, /steps\[0\]\.weight must be a number in \[0, 99\]/],
      [{ version: 2, strategy: 'canary', spec: { steps: [{ weight: -1 }] } }, 400, /weight must be a number in \[0, 99\]/],
      [{ version: 2, strategy: 'canary', spec: { steps: [{ weight: 50 }, { weight: 10 }] } }, 400, /weights may only grow/],
      [{ version: 2, strategy: 'canary', spec: { analysis: { interval: '5ms' } } }, 400, /at least 1s/],
      [{ version: 2, strategy: 'canary', spec: { colour: 'blue' } }, 400, /unknown field "colour"/],
      [{ version: 1, strategy: 'canary' }, 409, /already the stable version/],
      [{ version: 2, strategy: 'direct', spec: {} }, 400, /direct deploy takes no spec/],
    ];
    for (const [body, status, msg] of cases) {
      const r = await srv.json('POST', '/api/v1/deployments/bike/deploy', body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.body.error).toMatch(msg);
    }
    expect((await srv.json('POST', '/api/v1/deployments/bike/rollout/promote', {})).status).toBe(409);
  });

  it('promotes a good candidate step by step, each decision recorded with its numbers', async () => {
    const start = await srv.json('POST', '/api/v1/deployments/bike/deploy', {
      version: 2,
      strategy: 'canary',
      reason: 'retrained',
      spec: { steps: [{ weight: 30, mirror: 100, pause: '1s' }, { weight: 60, pause: '1s' }], analysis: fast },
    });
    expect(start.status).toBe(200);
    expect(start.body.rollout).toMatchObject({ strategy: 'canary', state: 'running', stable: 1, candidate: 2, weight: 30, mirror: 100 });
    expect(start.body.deployment.candidate).toMatchObject({ version: 2, weight: 30, step: 1, steps: 2 });
    // Monitoring follows the deployment: v2 got v1's reference, re-profiled with its own predictions.
    expect(start.body.event.data.monitoring).toMatch(/^inherited v1's reference: \d+ sampled rows re-profiled with v2's predictions/);
    const inherited = srv.warden.monitoring!.reference('bike', 2);
    expect(inherited?.record.source.name).toBe('inherited from v1');
    expect(inherited?.schema.columns.map((c) => c.name)).toEqual(srv.warden.monitoring!.reference('bike', 1)?.schema.columns.map((c) => c.name));
    // A second rollout on a busy deployment is refused.
    const busy = await srv.json('POST', '/api/v1/deployments/bike/deploy', { version: 3, strategy: 'canary' });
    expect(busy.status).toBe(409);
    expect(busy.body.error).toMatch(/running canary rollout of v2/);
    const done = await until(async () => {
      const s = await srv.json('GET', '/api/v1/deployments/bike/rollout');
      return s.body.rollout.state === 'running' ? undefined : s.body;
    }, 60_000, 'the canary to end');
    expect(done.rollout.status.outcome + JSON.stringify(done.decisions)).toMatch(/every step passed/);
    expect(done.rollout.state).toBe('promoted');
    expect((await srv.json('GET', '/api/v1/deployments/bike')).body).toMatchObject({ stable: { version: 2 }, candidate: null });
    expect(served.get('2')).toBeGreaterThan(0);
    const history = (await srv.json('GET', '/api/v1/deployments/bike/history')).body.events.map((e: { kind: string }) => e.kind);
    expect(history).toEqual(expect.arrayContaining(['rollout-start', 'rollout-step', 'rollout-promote']));
    const dec = (await srv.json('GET', '/api/v1/deployments/bike/rollout/decisions')).body.decisions as { metric: string; verdict: string; value: number; threshold: number; nStable: number; nCandidate: number }[];
    const metrics = new Set(dec.map((d) => d.metric));
    for (const m of ['errorRate', 'latencyP99', 'predictionDistance', 'agreement', 'sampleRatio']) expect(metrics, m).toContain(m);
    const passed = dec.filter((d) => d.verdict === 'success' && d.metric === 'predictionDistance');
    expect(passed.length).toBeGreaterThan(0);
    expect(passed[0]!.threshold).toBe(0.2);
    expect(passed[0]!.nStable).toBeGreaterThanOrEqual(40);
    expect(dec.some((d) => d.verdict === 'failure')).toBe(false);
    expect(failures).toBe(0);
    // The shadow copies of step 1 were logged, flagged, and never answered a caller.
    const shadows = await srv.warden.stores.events.countPredictions({ model: 'bike', status: 'shadow' });
    expect(shadows).toBeGreaterThan(0);
  }, 90_000);

  it('rolls a broken candidate back automatically, raises an alert with a runbook and ends the suppression', async () => {
    const start = await srv.json('POST', '/api/v1/deployments/bike/deploy', { version: 3, strategy: 'canary', spec: { steps: [{ weight: 20, pause: '30s' }], analysis: fast } });
    expect(start.status).toBe(200);
    const sid = start.body.rollout.status.suppressionId ?? (await srv.json('GET', '/api/v1/deployments/bike/rollout')).body.rollout.status.suppressionId;
    expect(typeof sid).toBe('string');
    const done = await until(async () => {
      const s = await srv.json('GET', '/api/v1/deployments/bike/rollout');
      return s.body.rollout.state === 'running' ? undefined : s.body;
    }, 30_000, 'the broken canary to be aborted');
    expect(done.rollout.state).toBe('aborted');
    expect(done.rollout.status.outcome).toMatch(/analysis failed at step 1 .*predictionDistance/);
    const failed = done.decisions.find((d: { metric: string }) => d.metric === 'predictionDistance');
    expect(failed).toMatchObject({ verdict: 'failure', threshold: 0.2 });
    expect(failed.value).toBeGreaterThan(0.3);
    expect((await srv.json('GET', '/api/v1/deployments/bike')).body).toMatchObject({ stable: { version: 2 }, candidate: null });
    const history = (await srv.json('GET', '/api/v1/deployments/bike/history')).body.events;
    const abort = history.at(-1);
    expect(abort).toMatchObject({ kind: 'rollout-abort', actor: 'rollout controller', fromVersion: 2, toVersion: 2 });
    expect(abort.data.metrics.some((m: { metric: string; verdict: string }) => m.metric === 'predictionDistance' && m.verdict === 'failure')).toBe(true);
    // Within a sync the router sends nothing to v3.
    await new Promise((r) => setTimeout(r, 300));
    const before = served.get('3') ?? 0;
    await new Promise((r) => setTimeout(r, 500));
    expect(served.get('3') ?? 0).toBe(before);
    await srv.warden.alerting!.evaluate();
    const alert = srv.warden.alerting!.alerts({ deployment: 'bike' }).find((a) => a.alertname === 'RolloutAborted');
    expect(alert).toBeDefined();
    expect(alert!.annotations.runbook_url ?? JSON.stringify(alert!.annotations)).toMatch(/rollout-aborted/);
    expect(alert!.suppressedBy).toEqual([]);
    const sups = await srv.warden.alerting!.listSuppressions({ includeEnded: true });
    expect(sups.find((s) => s.id === sid)?.active).toBe(false);
    expect(failures).toBe(0);
  }, 60_000);
});
