/**
 * `npm run demo:lifecycle` against a real server: the script runs as a child process; its output shows the 2012
 * windows drifting, the drift trigger starting a job, the retrained tree model passing the gate with its numbers and
 * going to shadow, then the leaky trainer's run rejected by the gate with nothing registered. It refuses clearly when
 * the model is already there (a second run).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv } from '../helpers/cli.ts';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';

const SCRIPT = path.join(repoRoot, 'scripts', 'demo', 'lifecycle-demo.ts');

function runDemo(args: string[], timeoutMs = 150_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { cwd: repoRoot, env: cleanEnv(), timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new Error(`the demo did not exit normally (${err.signal ?? err.message}):\n${stdout}\n${stderr}`));
      else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

describe('npm run demo:lifecycle', () => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startTestServer({ retraining: { intervalMs: 500 }, predictionLog: { flushIntervalMs: 50 } });
  });
  afterAll(async () => {
    await srv?.close();
  });

  it('drift (or live accuracy) fires the trigger, the retrained model passes the gate and goes to shadow; the leaky run is rejected', async () => {
    const r = await runDemo(['--url', srv.url, '--timeout', '100']);
    const out = r.stdout;
    expect(r.code, `${out}\n${r.stderr}`).toBe(0);
    expect(out).toMatch(/served 4358 hours of January–June 2012 and sent their counts as labels/);
    expect(out).toMatch(/2012-03-15 +336 +DRIFT/);
    // The policy has two triggers and both hold on these windows; which the controller sees first depends on when the
    // windows' labels are joined (under load the accuracy one can come first). Either way the reason is its own.
    expect(out).toMatch(/job #1 started by the (drift trigger: drift: 3 of the last 3 windows show dataset drift|accuracy trigger: accuracy: 2 of the last 2 judged windows below offline rmse)/);
    expect(out).toMatch(/training on 12131 rows \(8645 base \+ 3486 traffic\), holding out the newest 872/);
    expect(out).toMatch(/gate: passed 5 checks/);
    const m = /holdout of 872 newest labelled hours: MAE ([\d.]+) vs stable ([\d.]+), R² ([-\d.]+)/.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(0.9 * Number(m![2]));
    expect(Number(m![3])).toBeGreaterThanOrEqual(0.5);
    expect(out).toMatch(/bike-lifecycle: stable v1, shadow of v2 \(mirror 100 %\)/);
    // The leak: the trainer's own detector warns, its offline metrics are near perfect, and the gate stops it.
    expect(out).toMatch(/warning: possible target leakage: atemp predicts label/);
    expect(out).toMatch(/✘ job #2 rejected by the gate/);
    expect(out).toMatch(/FAIL r2 threshold/);
    expect(out).toMatch(/bike-lifecycle still has 2 versions/);
    const deployment = (await srv.json('GET', '/api/v1/deployments/bike-lifecycle')).body;
    expect(deployment).toMatchObject({ stable: { version: 1 }, strategy: 'shadow', candidate: { version: 2 } });
    // The retraining loop's actions are in the audit log: the trigger's job, v2 registered with its lineage, the shadow
    // it started, and both runs' ends.
    const loop = ((await srv.json('GET', '/api/v1/audit?actor=retraining&limit=100')).body.entries as { action: string; object: string; summary: Record<string, { [k: string]: unknown }> }[]).reverse();
    expect(loop.map((e) => e.action)).toEqual(['retrain.trigger', 'version.register', 'rollout.start', 'retrain.end', 'retrain.end']);
    expect(loop[1]).toMatchObject({ object: 'model:bike-lifecycle', summary: { after: { version: 2 } } });
    expect(loop[3]!.summary.after).toMatchObject({ state: 'succeeded', version: 2 });
    expect(loop[4]!.summary.after).toMatchObject({ state: 'rejected' });
    const again = await runDemo(['--url', srv.url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/bike-lifecycle already exists on this server \(an earlier run of the demo\)/);
  }, 200_000);

  it('says so when no server answers', async () => {
    const r = await runDemo(['--url', 'http://127.0.0.1:9']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no Warden server answers at http:\/\/127\.0\.0\.1:9/);
  });
});
