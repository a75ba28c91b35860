/**
 * Graceful drain on SIGTERM against the real CLI (`node bin/warden.js serve`), as a load balancer or Kubernetes
 * sees it: readiness flips to 503 at once while liveness stays 200 and requests — one already in flight and new
 * ones — are still answered for server.drainDelayMs; then the server closes, the prediction log is written, and
 * the process exits 0. A second SIGTERM ends the delay at once; SIGINT does not wait for it.
 */
import http from 'node:http';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../src/storage/index.ts';
import { launchWarden, stopCliServers, type RunningCli } from '../helpers/cli.ts';
import { freePort } from './ports.ts';

const INSTANCE = { season: 3, mnth: 7, hr: 17, holiday: 0, weekday: 3, workingday: 1, weathersit: 1, temp: 0.7, atemp: 0.65, hum: 0.5, windspeed: 0.2 };
const BODY = JSON.stringify({ instances: [INSTANCE] });

const started: RunningCli[] = [];
afterEach(() => stopCliServers(started));

/** `warden serve --demo` on a port of this file's range (18500-18539) with the given drain delay. */
async function serve(drainDelayMs: number): Promise<RunningCli> {
  const port = await freePort(18500, 18539);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'warden-drain-'));
  const srv = await launchWarden(['serve', '--demo', '--port', String(port)], dataDir, { WARDEN_DRAIN_DELAY_MS: String(drainDelayMs) }, (c) =>
    started.push({ child: c, url: '', dataDir, exited: new Promise((r) => c.once('exit', (code, signal) => r({ code, signal }))), output: () => '' }),
  );
  expect(srv.url).toBe(`http://127.0.0.1:${port}`);
  return srv;
}

async function status(url: string): Promise<{ status: number; body: unknown; connection: string | null }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, connection: res.headers.get('connection') };
}

async function predict(url: string, requestId: string): Promise<{ status: number; connection: string | null }> {
  const res = await fetch(`${url}/v1/models/bike-demand:predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: BODY,
  });
  await res.arrayBuffer();
  return { status: res.status, connection: res.headers.get('connection') };
}

/** Starts a prediction whose body is sent in two halves; `finish()` sends the rest and resolves with the answer. */
function slowPredict(url: string, requestId: string): { finish: () => Promise<number> } {
  const u = new URL(`${url}/v1/models/bike-demand:predict`);
  const req = http.request({
    host: u.hostname,
    port: u.port,
    path: u.pathname,
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY), 'x-request-id': requestId },
  });
  const answer = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
  req.write(BODY.slice(0, 20));
  return {
    finish: () => {
      req.end(BODY.slice(20));
      return answer;
    },
  };
}

async function waitFor<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function loggedIds(dataDir: string): Promise<Set<string>> {
  const store = new SqliteEventStore(path.join(dataDir, 'events.db'));
  try {
    return new Set((await store.queryPredictions({ limit: 100_000 })).map((r) => r.requestId));
  } finally {
    await store.close();
  }
}

describe('graceful drain on SIGTERM (real CLI)', () => {
  it('readiness 503 at once; liveness, in-flight and new requests still served for the drain delay; then exit 0 with the log written', async () => {
    const DRAIN_MS = 3000;
    const srv = await serve(DRAIN_MS);
    expect((await status(`${srv.url}/v2/health/ready`)).status).toBe(200);
    const inflight = slowPredict(srv.url, 'drain-inflight');
    await predict(srv.url, 'drain-before');

    const sent = Date.now();
    srv.child.kill('SIGTERM');
    const ready = await waitFor('readiness after SIGTERM', () => status(`${srv.url}/v2/health/ready`), (r) => r.status === 503, 2000);
    const flippedMs = Date.now() - sent;
    expect(ready.body).toEqual({ ready: false, draining: true });
    expect(flippedMs).toBeLessThan(2000);

    // Served during the drain: liveness, a new prediction (each told to reconnect), and the request already in flight.
    const live = await status(`${srv.url}/v2/health/live`);
    expect(live.status).toBe(200);
    expect(live.connection).toBe('close');
    const during = await predict(srv.url, 'drain-during');
    expect(during).toEqual({ status: 200, connection: 'close' });
    expect(await inflight.finish()).toBe(200);
    // Still within the delay: the process is alive and readiness still says no.
    expect(Date.now() - sent).toBeLessThan(DRAIN_MS);
    expect(srv.child.exitCode).toBeNull();
    expect((await predict(srv.url, 'drain-late')).status).toBe(200);

    const exit = await srv.exited;
    const exitedMs = Date.now() - sent;
    expect(exit, srv.output()).toEqual({ code: 0, signal: null });
    expect(exitedMs).toBeGreaterThanOrEqual(DRAIN_MS - 100);
    expect(srv.output()).toContain('draining: /v2/health/ready answers 503');
    expect(srv.output()).toContain('stopped cleanly');
    const ids = await loggedIds(srv.dataDir);
    for (const id of ['drain-before', 'drain-inflight', 'drain-during', 'drain-late']) expect(ids.has(id), id).toBe(true);
  });

  it('a second SIGTERM ends a long drain delay at once and still exits 0', async () => {
    const srv = await serve(120_000);
    const sent = Date.now();
    srv.child.kill('SIGTERM');
    await waitFor('readiness after SIGTERM', () => status(`${srv.url}/v2/health/ready`), (r) => r.status === 503, 2000);
    srv.child.kill('SIGTERM');
    expect(await srv.exited, srv.output()).toEqual({ code: 0, signal: null });
    expect(Date.now() - sent).toBeLessThan(15_000);
    expect(srv.output()).toContain('second signal: ending the drain delay now');
    expect(srv.output()).toContain('stopped cleanly');
  });

  it('SIGINT (Ctrl-C) does not wait for the drain delay', async () => {
    const srv = await serve(120_000);
    const sent = Date.now();
    srv.child.kill('SIGINT');
    expect(await srv.exited, srv.output()).toEqual({ code: 0, signal: null });
    expect(Date.now() - sent).toBeLessThan(15_000);
    expect(srv.output()).not.toContain('draining:');
  });
});
