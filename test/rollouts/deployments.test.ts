/**
 * Deployments on a real server: deploy warms and checks a version before it serves, moves the stable version and
 * records the change; rollback returns to the previous one; every change of `champion` is in the history, which
 * answers "which version served at T"; 20 switches under load fail no request.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { signatureDifferences } from '../../src/rollouts/index.ts';
import { runWarden } from '../helpers/cli.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const gbr = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
const instance = { season: 3, mnth: 7, hr: 17, holiday: 0, weekday: 3, workingday: 1, weathersit: 1, temp: 0.7, atemp: 0.65, hum: 0.5, windspeed: 0.2 };

describe('deployments', () => {
  let srv: TestServer;
  let t1 = 0;
  let t2 = 0;

  beforeAll(async () => {
    srv = await startTestServer();
    // Two versions with the same signature: the same trainer, two holdout seeds.
    for (const seed of [1, 2]) {
      const { onnx } = await train({ ...bikeSharingDemoOptions('logistic'), seed });
      const res = await fetch(`${srv.url}/api/v1/models/busy/versions${seed === 1 ? '?alias=champion' : ''}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.from(onnx),
      });
      expect(res.status).toBe(201);
    }
    await srv.warden.table.settled();
  }, 60_000);
  afterAll(() => srv.close());

  const predictVersion = async () => {
    const r = await srv.json('POST', '/v1/models/busy:predict', { instances: [instance] });
    expect(r.status).toBe(200);
    return r.body.model_version as string;
  };

  it('shows the stable version and the push that set it', async () => {
    const d = await srv.json('GET', '/api/v1/deployments/busy');
    expect(d.status).toBe(200);
    expect(d.body).toMatchObject({ name: 'busy', stable: { version: 1, pinned: true }, candidate: null, strategy: 'direct', versions: [1, 2] });
    expect(d.body.lastChange).toMatchObject({ kind: 'alias', fromVersion: null, toVersion: 1, actor: 'anonymous (auth off)', reason: 'push with --alias champion' });
    expect(await predictVersion()).toBe('1');
    const list = await srv.json('GET', '/api/v1/deployments');
    expect(list.body.deployments.map((x: { name: string }) => x.name)).toEqual(['busy']);
  });

  it('deploys a version: warmed, signature checked, recorded; requests without a version get it', async () => {
    t1 = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    const res = await srv.json('POST', '/api/v1/deployments/busy/deploy', { version: 2, reason: 'retrained with seed 2' });
    expect(res.status).toBe(200);
    expect(res.body.changed).toBe(true);
    expect(res.body.event).toMatchObject({ kind: 'deploy', fromVersion: 1, toVersion: 2, strategy: 'direct', reason: 'retrained with seed 2', data: { signature: 'compatible' } });
    expect(typeof res.body.event.data.warmMs).toBe('number');
    expect(await predictVersion()).toBe('2');
    // The alias shows the deployment's state.
    expect((await srv.json('GET', '/api/v1/models/busy/aliases')).body.aliases).toEqual([expect.objectContaining({ alias: 'champion', version: 2 })]);
    const again = await srv.json('POST', '/api/v1/deployments/busy/deploy', { version: 'champion' });
    expect(again.body).toMatchObject({ changed: false, event: null });
    t2 = Date.now();
  });

  it('answers which version served at a time, from the history', async () => {
    const before = await srv.json('GET', `/api/v1/deployments/busy/served?at=${t1}`);
    expect(before.body).toMatchObject({ version: 1, basis: 'the last change at or before this time' });
    const after = await srv.json('GET', `/api/v1/deployments/busy/served?at=${new Date(t2).toISOString()}`);
    expect(after.body.version).toBe(2);
    const early = await srv.json('GET', '/api/v1/deployments/busy/served?at=0');
    expect(early.body).toMatchObject({ version: null });
    expect((await srv.json('GET', '/api/v1/deployments/busy/served?at=yesterday')).status).toBe(400);
  });

  it('rolls back to the previous stable version, and forward again', async () => {
    const back = await srv.json('POST', '/api/v1/deployments/busy/rollback', {});
    expect(back.status).toBe(200);
    expect(back.body.event).toMatchObject({ kind: 'rollback', fromVersion: 2, toVersion: 1 });
    expect(await predictVersion()).toBe('1');
    const forward = await srv.json('POST', '/api/v1/deployments/busy/rollback', { reason: 'false alarm' });
    expect(forward.body.event).toMatchObject({ kind: 'rollback', fromVersion: 1, toVersion: 2, reason: 'false alarm' });
    const history = await srv.json('GET', '/api/v1/deployments/busy/history');
    expect(history.body.events.map((e: { kind: string; toVersion: number }) => `${e.kind}:${e.toVersion}`)).toEqual(['alias:1', 'deploy:2', 'rollback:1', 'rollback:2']);
    expect(history.body.nextCursor).toBe(String(history.body.events[3].id));
    const page = await srv.json('GET', `/api/v1/deployments/busy/history?limit=2&after=${history.body.events[1].id}`);
    expect(page.body.events).toHaveLength(2);
  });

  it('refuses a version whose signature would break callers, naming the difference; force switches anyway', async () => {
    const pushed = await fetch(`${srv.url}/api/v1/models/busy/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: gbr });
    expect(pushed.status).toBe(201);
    const res = await srv.json('POST', '/api/v1/deployments/busy/deploy', { version: 3 });
    expect(res.status).toBe(409);
    expect(res.body.error).toMatch(/busy v3 does not take what v2 takes, so callers would fail: .*input input dimension 1 is 12, the stable version's is 11.*output probability is missing/);
    expect(await predictVersion()).toBe('2');
    const forced = await srv.json('POST', '/api/v1/deployments/busy/deploy', { version: 3, force: true, reason: 'knowingly' });
    expect(forced.status).toBe(200);
    expect(forced.body.event).toMatchObject({ fromVersion: 2, toVersion: 3 });
    expect(forced.body.event.data).toMatchObject({ signature: 'differs', differences: expect.arrayContaining(['output probability is missing']) });
    // Back to the version callers fit (forced too: v2 does not take what v3 takes either).
    expect((await srv.json('POST', '/api/v1/deployments/busy/deploy', { version: 2, force: true })).status).toBe(200);
    expect(signatureDifferences({ inputs: [], outputs: [] }, { inputs: [], outputs: [{ name: 'extra', datatype: 'FP32', shape: [-1, 1] }] })).toEqual([]);
  });

  it('refuses bad requests with a clear 4xx and changes nothing', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ version: 99 }, 404, /has no version 99/],
      [{ version: 'nope' }, 404, /no version or alias "nope"/],
      [{ version: 1.5 }, 400, /positive integer/],
      [{}, 400, /needs "version"/],
      [{ version: 1, strategy: 'canary', spec: { steps: 'x' } }, 400, /steps must be a list of 1 to 20 steps/],
      [{ version: 1, strategy: 'blue-green' }, 400, /strategy must be one of direct, shadow, canary, ab/],
      [{ version: 1, force: 'yes' }, 400, /force must be true or false/],
      [[1], 400, /body must be a JSON object/],
    ];
    for (const [body, status, msg] of cases) {
      const res = await srv.json('POST', '/api/v1/deployments/busy/deploy', body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.error).toMatch(msg);
    }
    expect((await srv.json('POST', '/api/v1/deployments/nope/deploy', { version: 1 })).status).toBe(404);
    expect((await srv.json('GET', '/api/v1/deployments/busy')).body.stable.version).toBe(2);
  });

  it('records an alias write to champion made outside deploy, with who made it', async () => {
    const res = await srv.json('PUT', '/api/v1/models/busy/aliases/champion', { version: 1 });
    expect(res.status).toBe(200);
    const d = await srv.json('GET', '/api/v1/deployments/busy');
    expect(d.body.lastChange).toMatchObject({ kind: 'alias', fromVersion: 2, toVersion: 1, actor: 'anonymous (auth off)', reason: 'PUT alias champion' });
    // Other aliases are not deployments' business.
    await srv.json('PUT', '/api/v1/models/busy/aliases/canary', { version: 2 });
    expect((await srv.json('GET', '/api/v1/deployments/busy')).body.lastChange.id).toBe(d.body.lastChange.id);
  });

  it('20 deploys and rollbacks under load fail no request', async () => {
    let stop = false;
    const statuses = new Map<number, number>();
    const versions = new Set<string>();
    const client = async () => {
      while (!stop) {
        const r = await fetch(`${srv.url}/v1/models/busy:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [instance] }) });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        versions.add(((await r.json()) as { model_version: string }).model_version);
      }
    };
    const clients = Array.from({ length: 4 }, client);
    for (let i = 0; i < 20; i++) {
      const res = i % 2 === 0 ? await srv.json('POST', '/api/v1/deployments/busy/deploy', { version: 2 }) : await srv.json('POST', '/api/v1/deployments/busy/rollback', {});
      expect(res.status).toBe(200);
      await new Promise((r) => setTimeout(r, 20));
    }
    stop = true;
    await Promise.all(clients);
    expect([...statuses.keys()]).toEqual([200]);
    expect(statuses.get(200)!).toBeGreaterThan(100);
    expect([...versions].sort()).toEqual(['1', '2']);
  });

  it('the CLI deploys, rolls back and shows the history', async () => {
    const env = { WARDEN_URL: srv.url };
    const dep = await runWarden(['deploy', 'busy', '--version', '2', '--reason', 'from the CLI'], env);
    expect(dep.code, dep.stderr).toBe(0);
    expect(dep.stdout).toMatch(/^busy: deployed v1 → v2 \(direct\)/m);
    const back = await runWarden(['rollback', 'busy'], env);
    expect(back.stdout).toMatch(/^busy: rolled back v2 → v1/m);
    const hist = await runWarden(['deployments', 'history', 'busy'], env);
    expect(hist.stdout).toMatch(/deploy .*from the CLI/);
    const served = await runWarden(['deployments', 'served', 'busy', '--at', new Date().toISOString()], env);
    expect(served.stdout).toMatch(/^busy at .*: v1 \(the last change at or before this time\)/);
    const bad = await runWarden(['deploy', 'busy', '--version', '2', '--strategy', 'canary', '--steps', '10:soon'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/steps\[0\]\.pause: "soon" is not a duration/);
    const canary = await runWarden(['deploy', 'busy', '--version', '2', '--strategy', 'canary', '--steps', '0%100:-,10:1h', '--interval', '10s', '--reason', 'try v2'], env);
    expect(canary.code, canary.stderr).toBe(0);
    expect(canary.stdout).toMatch(/^rollout #\d+ of busy: canary of v2 beside v1 — running/m);
    expect(canary.stdout).toMatch(/steps: ▶ weight 0%, mirror 100%, until promoted → weight 10%, 1h/);
    const status = await runWarden(['rollout', 'status', 'busy'], env);
    expect(status.stdout).toMatch(/traffic: v2 0%, v1 100%; 100% mirrored to v2/);
    const promoted = await runWarden(['rollout', 'promote', 'busy'], env);
    expect(promoted.stdout).toMatch(/step 2\/2: weight 10%, 1h/);
    const got = await runWarden(['deployments', 'get', 'busy'], env);
    expect(got.stdout).toMatch(/candidate: v2 \(running, weight 10%, step 2\/2\)/);
    const aborted = await runWarden(['rollback', 'busy', '--reason', 'not today'], env);
    expect(aborted.stdout).toMatch(/rollout #\d+ of v2 aborted; v1 serves all traffic/);
    const after = await runWarden(['rollout', 'status', 'busy'], env);
    expect(after.stdout).toMatch(/— aborted/);
    expect(after.stdout).toMatch(/outcome: not today/);
  }, 60_000);
});
