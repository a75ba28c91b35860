/**
 * `npm run demo:rollout` against a real server seeded like `npm start`: the script runs as a child process with fast
 * flags; its timeline shows the retrain going shadow → canary → promoted and then the broken (°C) candidate aborted by
 * the controller with its failing metric, and the deployment ends on the retrained version. It also refuses clearly
 * when no server answers and when a rollout is already running.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemo } from '../../src/lifecycle/index.ts';
import { cleanEnv } from '../helpers/cli.ts';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';

const SCRIPT = path.join(repoRoot, 'scripts', 'demo', 'rollout-demo.ts');

function runDemo(args: string[], timeoutMs = 100_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { cwd: repoRoot, env: cleanEnv(), timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new Error(`the demo did not exit normally (${err.signal ?? err.message}):\n${stdout}\n${stderr}`));
      else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

describe('npm run demo:rollout', () => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startTestServer({ demo: true, rollouts: { syncMs: 100 }, predictionLog: { flushIntervalMs: 50 } } as never);
    // What `warden serve --demo` does before it listens: bike-demand and bike-busy, trained on 2011, as champion.
    await seedDemo(srv.warden.registry, pino({ level: 'silent' }));
    await srv.warden.table.settled();
  });

  afterAll(async () => {
    await srv?.close();
  });

  // 18 s alone; 43 s seen in a full run on 2 loaded cores, past the demo's old 40 s deadline: the bounds leave room.
  it('promotes the retrain step by step, then the controller aborts the °C candidate and traffic goes back to stable', async () => {
    const r = await runDemo(['--url', srv.url, '--rate', '200', '--canary', '25,50', '--pause', '1', '--interval', '1', '--timeout', '80']);
    const out = r.stdout;
    expect(r.code, `${out}\n${r.stderr}`).toBe(0);

    // The retrain: the shadow step, both canary steps, each analysis run with its numbers, then the promotion.
    const promoted = out.indexOf('✔ PROMOTED by the rollout controller: v2 is the stable version of bike-demand');
    expect(promoted, out).toBeGreaterThan(0);
    const first = out.slice(0, promoted);
    expect(first).toMatch(/rollout #1 started: canary of v2 beside stable v1/);
    expect(first).toMatch(/step 1\/3: shadow \(mirror 100%\)/);
    expect(first).toMatch(/analysis run \d+ · step 1\/3 shadow \(mirror 100%\) → success/);
    expect(first).toMatch(/▶ step 2\/3: canary 25% — step 1 passed its analysis/);
    expect(first).toMatch(/▶ step 3\/3: canary 50% — step 2 passed its analysis/);
    expect(first).toMatch(/agreement +pass +\d+\.\d% of mirrored rows agree, band \[.*\] vs min 90% +\(n \d+ rows\)/);
    expect(first).toMatch(/predictionDistance pass +KS D 0\.\d+, band \[.*\] vs max 0\.2 +\(n \d+\/\d+\)/);
    expect(first).toMatch(/sampleRatio +pass +candidate got [\d.]+% of requests \(asked 25%\)/);
    expect(first).toMatch(/errorRate +pass +errors 0\.00% vs stable 0\.00%/);
    expect(first).toMatch(/traffic during step 2: \d+ requests: v1 \d+ \([\d.]+%\), v2 \d+/);
    expect(first).not.toMatch(/ FAIL /);

    // The broken candidate: aborted by the controller on its prediction distance, after the promotion.
    const aborted = out.indexOf('✖ ABORTED by the rollout controller: all traffic back to v2');
    expect(aborted, out).toBeGreaterThan(promoted);
    const second = out.slice(promoted);
    expect(second).toMatch(/rollout #2 started: canary of v3 beside stable v2/);
    expect(second).toMatch(/ABORTED .* analysis failed at step 1 \(weight 25%, 1s\): failed: predictionDistance/);
    const failed = /predictionDistance FAIL +KS D (0\.\d+), band \[(0\.\d+), [\d.]+\] vs max 0\.2/.exec(second);
    expect(failed, second).not.toBeNull();
    expect(Number(failed![2])).toBeGreaterThan(0.2);
    const after = /after the abort: (\d+) requests: v2 (\d+) \(100\.0%\)\n/.exec(second);
    expect(after, second).not.toBeNull();
    expect(Number(after![1])).toBeGreaterThan(50);
    expect(second).toMatch(/bike-demand ends on v2; \d+ requests sent, 0 failed/);

    // The server agrees: v2 stable, nothing running, the promotion and the controller's abort in the history.
    expect((await srv.json('GET', '/api/v1/deployments/bike-demand')).body).toMatchObject({ stable: { version: 2 }, candidate: null });
    const events = (await srv.json('GET', '/api/v1/deployments/bike-demand/history')).body.events as { kind: string; actor: string; toVersion: number; data: { candidate: number } }[];
    expect(events.filter((e) => e.kind.startsWith('rollout-')).map((e) => `${e.kind} v${e.data.candidate}`)).toEqual([
      'rollout-start v2',
      'rollout-step v2',
      'rollout-step v2',
      'rollout-promote v2',
      'rollout-start v3',
      'rollout-abort v3',
    ]);
    expect(events.at(-1)).toMatchObject({ kind: 'rollout-abort', actor: 'rollout controller', toVersion: 2 });
    // The audit log has the controller's steps, promotion and abort as the rollouts loop's, linked from the event.
    const loop = (await srv.json('GET', '/api/v1/audit?actor=rollouts&limit=100')).body.entries as { action: string; object: string; requestId: string; summary: { after: { state: string } } }[];
    expect(loop.map((e) => e.action).reverse()).toEqual(expect.arrayContaining(['rollout.step', 'rollout.promote', 'rollout.abort']));
    expect(loop.every((e) => e.object === 'deployment:bike-demand')).toBe(true);
    expect(loop.find((e) => e.action === 'rollout.abort')!.requestId).toBe((events.at(-1) as unknown as { data: { requestId: string } }).data.requestId);
    expect((await srv.json('GET', '/api/v1/audit/verify')).body).toMatchObject({ ok: true });
    const v2 = (await srv.json('GET', '/api/v1/models/bike-demand/versions/2')).body;
    expect(v2.metadata.tags).toEqual({ demo: 'rollout', dataset: 'uci-bike-sharing-2011-2012q1' });
    expect(v2.metadata.description).toMatch(/retrained on 2011 \+ Jan–Mar 2012/);
  }, 120_000);

  it('says to start the server when none answers, and how to abort a rollout already running', async () => {
    const down = await runDemo(['--url', 'http://127.0.0.1:9']);
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(/cannot reach Warden at http:\/\/127\.0\.0\.1:9 .*\n.*`npm start`/);

    const start = await srv.json('POST', '/api/v1/deployments/bike-demand/deploy', { version: 3, strategy: 'shadow' });
    expect(start.status).toBe(200);
    const busy = await runDemo(['--url', srv.url]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toContain(`bike-demand already has a running rollout (#${start.body.rollout.id}) of v3`);
    expect(busy.stderr).toContain(`npm run warden -- --url ${srv.url} rollout abort bike-demand`);
    expect(busy.stderr).toContain('--abort-running');
    expect((await srv.json('GET', '/api/v1/deployments/bike-demand')).body.candidate).toMatchObject({ version: 3, state: 'running' });
    await srv.json('POST', '/api/v1/deployments/bike-demand/rollout/abort', {});
  }, 30_000);
});
