/**
 * A PostgreSQL outage under load, with the real server stopped for 30 s: predictions keep being served from the
 * loaded model, prediction events queue within the bound and are all written once it is back, writes that cannot be
 * stored are refused (503) rather than acknowledged, and every acknowledged label and registry write survives.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchWarden, type RunningCli } from '../helpers/cli.ts';
import { fixturesDir, repoRoot } from '../helpers/server.ts';
import { freePort, pgServerAvailable, startPgCluster, type PgCluster } from '../helpers/postgres.ts';
import { within } from '../helpers/fleet.ts';

const logreg = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const expected = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.expected.json'), 'utf8')) as { input: number[][] };
const OUTAGE_MS = 30_000;
/** Requests per second the load sends: at 200 ms flushes, a few hundred events wait per second of outage. */
const RATE = 100;

describe.skipIf(!pgServerAvailable())('a 30 s PostgreSQL outage under load', () => {
  let db: PgCluster;
  let server: RunningCli;
  let key: string;
  let dir: string;
  const url = () => `${db.url}?schema=outage`;

  beforeAll(async () => {
    db = await startPgCluster();
    dir = mkdtempSync(path.join(tmpdir(), 'warden-outage-'));
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WARDEN_'))), WARDEN_STORAGE_URL: url() };
    key = execFileSync(process.execPath, ['bin/warden.js', 'keys', 'create', '--role', 'admin'], { cwd: repoRoot, env, encoding: 'utf8' }).trim();
    const port = await freePort();
    server = await launchWarden(['serve', '--port', String(port)], dir, { WARDEN_STORAGE_URL: url(), WARDEN_DRAIN_DELAY_MS: '0' });
  }, 60_000);

  afterAll(async () => {
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    db?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const call = async (method: string, p: string, body?: unknown, headers: Record<string, string> = {}) => {
    const bytes = body instanceof Uint8Array;
    const res = await fetch(`${server.url}${p}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': bytes ? 'application/octet-stream' : 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: bytes ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
  };

  it('keeps serving, refuses what it cannot store, and loses nothing it acknowledged', async () => {
    expect((await call('POST', '/api/v1/models/busy/versions', new Uint8Array(logreg))).status).toBe(201);
    let seq = 0;
    const served: string[] = [];
    const failed: number[] = [];
    let running = true;
    // Steady load with a caller key per request, so every served row can be found in the store afterwards.
    const load = (async () => {
      const t0 = Date.now();
      while (running) {
        const k = `row-${seq++}`;
        const r = await call('POST', '/v2/models/busy/infer', {
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 12], data: expected.input[seq % 64] }],
          parameters: { keys: [k] },
        }).catch(() => ({ status: 0, body: {} }));
        if (r.status === 200) served.push(k);
        else failed.push(r.status);
        const due = t0 + (seq * 1000) / RATE;
        if (due > Date.now()) await new Promise((res) => setTimeout(res, due - Date.now()));
      }
    })();
    await new Promise((r) => setTimeout(r, 2_000));
    // Acknowledged before the outage.
    const before = await call('POST', '/api/v1/labels', { labels: served.slice(0, 50).map((k) => ({ key: k, value: 1 })) });
    expect(before.status).toBe(200);

    db.stop();
    const stoppedAt = Date.now();
    const servedAtStop = served.length;
    // During the outage: a label write and a push are refused with 503 naming the store, never acknowledged.
    await new Promise((r) => setTimeout(r, 2_000));
    const label = await call('POST', '/api/v1/labels', { labels: [{ key: served[0], value: 0 }] });
    expect(label.status).toBe(503);
    expect(label.body.code).toBe('WARDEN_STORE_UNAVAILABLE');
    expect(String(label.body.error)).toMatch(/PostgreSQL/);
    const push = await call('POST', '/api/v1/models/busy2/versions', new Uint8Array(logreg));
    expect(push.status).toBe(503);
    const ready = await fetch(`${server.url}/v2/health/ready`);
    // Still ready: the loaded model serves, so the balancer must keep sending traffic here.
    expect(ready.status).toBe(200);
    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + OUTAGE_MS - Date.now())));
    const servedDuring = served.length - servedAtStop;
    db.start();
    await new Promise((r) => setTimeout(r, 3_000));
    running = false;
    await load;

    // Served through the whole outage (at least 90 % of the rate: the machine has 2 cores).
    expect(servedDuring).toBeGreaterThan((OUTAGE_MS / 1000) * RATE * 0.9);
    expect(failed).toEqual([]);
    // Every served prediction reaches the store once it is back, and the log dropped nothing.
    const c = new pg.Client({ connectionString: db.url, options: '-c search_path=outage' });
    await c.connect();
    try {
      const { value: count } = await within(30_000, async () => {
        const r = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM predictions WHERE model = 'busy' AND status = 'ok'`);
        return r.rows[0]!.n >= served.length ? r.rows[0]!.n : undefined;
      }, 'every served prediction written');
      expect(count).toBe(served.length);
      const metrics = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
      const dropped = metrics.split('\n').filter((l) => l.startsWith('warden_prediction_log_dropped_total')).reduce((s, l) => s + Number(l.split(' ').pop()), 0);
      expect(dropped).toBe(0);
      // The labels acknowledged before the outage are there, joined; the refused one is not.
      const stats = await call('GET', '/api/v1/labels/stats?model=busy');
      expect(stats.body.total).toBe(50);
      // The registry: the version pushed before is intact and loads; the refused push left nothing behind.
      expect((await call('GET', '/api/v1/models/busy/versions/1')).status).toBe(200);
      expect((await call('GET', '/api/v1/models/busy2')).status).toBe(404);
      // Writes work again.
      expect((await call('POST', '/api/v1/labels', { labels: [{ key: served[served.length - 1], value: 1 }] })).status).toBe(200);
    } finally {
      await c.end();
    }
  }, 120_000);
});
