/**
 * `npm run demo:features` against a real server: the script runs as a child process. Its output shows the training
 * set built by point-in-time retrieval (the first day, with no day before it, left out), the model that reads the
 * previous day's totals beating the one that does not on the same holdout, the view materialized and the model served
 * 2012 by date alone, a date with no row refused naming the features, no skew before the source's unit change and
 * skew on prev_temp alone after it, and the WardenFeatureSkew alert firing. It refuses clearly on a second run.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv } from '../helpers/cli.ts';
import { repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';

const SCRIPT = path.join(repoRoot, 'scripts', 'demo', 'features-demo.ts');

function runDemo(args: string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { cwd: repoRoot, env: cleanEnv(), timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(new Error(`the demo did not exit normally (${err.signal ?? err.message}):\n${stdout}\n${stderr}`));
      else resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

describe('npm run demo:features', () => {
  let srv: TestServer;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-features-demo-'));
    // The skew timer never fires on its own here: the demo's checks are the only ones.
    srv = await startTestServer({ features: { skewEveryMs: 3_600_000 }, alerting: { evaluationIntervalMs: 200 } });
  });
  afterAll(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('trains from a point-in-time join, serves by date, and the skew check catches the unit change', async () => {
    const r = await runDemo(['--url', srv.url, '--dir', dir, '--timeout', '30']);
    const out = r.stdout;
    expect(r.code, `${out}\n${r.stderr}`).toBe(0);
    expect(out).toMatch(/training set: 8645 hours of 2011 joined point-in-time with daily_lag in \d+ ms; 24 hours of 2011-01-01 have no day before/);
    const m = /with the previous day's totals mae=([\d.]+).*\n\s+without them\s+mae=([\d.]+)/.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(0.9 * Number(m![2]));
    expect(out).toMatch(/materialized daily_lag: 730 rows read, 730 written, watermark 2012-12-31/);
    // 2012-06-01's row holds 2012-05-31's totals (day.csv: cnt 7338, registered 6238, temp 0.68).
    expect(out).toContain('online 2012-06-01: prev_cnt=7338 (present), prev_registered=6238 (present), prev_temp=0.68 (present)');
    expect(out).toContain('online 2010-06-01: prev_cnt=– (missing)');
    expect(out).toMatch(/served 3638 hours of 2012 \(January–May\) in 152 requests, features filled by date/);
    expect(out).toMatch(/2013-01-01\) → 400: instances\[0\]: feature prev_cnt of view daily_lag for entity date="2013-01-01" is missing/);
    expect(out).toMatch(/skew check on 200 sampled rows: prev_cnt 0\.0 %, prev_registered 0\.0 %, prev_temp 0\.0 %/);
    expect(out).toMatch(/materialize: 730 rows read, 0 written/);
    expect(out).toMatch(/served 720 more hours in 30 requests; skew check on 200 sampled rows: prev_cnt 0\.0 %, prev_registered 0\.0 %, prev_temp 100\.0 %/);
    const ex = /e\.g\. prev_temp for date=(\S+): served ([\d.]+), offline store ([\d.]+)/.exec(out);
    expect(ex, out).not.toBeNull();
    expect(Number(ex![3])).toBeCloseTo(41 * Number(ex![2]), 3);
    expect(out).toMatch(/alert WardenFeatureSkew firing \(ticket\) for daily_lag:prev_temp; runbook \S*training-serving-skew\.md/);
    // The server's own view agrees: the metric, and the source the demo left in °C.
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    expect(metrics).toContain('warden_feature_skew_rate{view="daily_lag",feature="prev_temp"} 1');
    expect(metrics).toContain('warden_feature_skew_rate{view="daily_lag",feature="prev_cnt"} 0');
    expect(readFileSync(path.join(dir, 'daily-lag.csv'), 'utf8').split('\n')[1]).toBe('2011-01-02,2011-01-02T00:00:00Z,985,654,14.1108');
    const again = await runDemo(['--url', srv.url, '--dir', dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/bike-daily-features already exists on this server \(an earlier run of the demo\)/);
  }, 150_000);

  it('says so when no server answers', async () => {
    const r = await runDemo(['--url', 'http://127.0.0.1:9', '--dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no Warden server answers at http:\/\/127\.0\.0\.1:9/);
  });
});
