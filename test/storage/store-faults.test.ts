/**
 * A full disk and a read-only data directory, for real: the data directory lives on a small tmpfs that the test fills
 * and remounts read-only. Writes that cannot be stored answer 503 WARDEN_STORE_UNAVAILABLE naming the cause and the
 * fix (they used to be 500 WARDEN_INTERNAL, the cause only in the log); /v2/health/ready and warden_store_degraded
 * show it; predictions keep being served. Needs root (mount); skipped, saying so, without it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const logreg = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const gbr = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
const mountPoint = mkdtempSync(path.join(tmpdir(), 'warden-tmpfs-'));

function tryMount(): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mountPoint], { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    return `cannot mount a tmpfs here (${(e as Error).message.split('\n')[0]}); run as root to test store faults`;
  }
}
const mountError = process.platform === 'linux' && process.getuid?.() === 0 ? tryMount() : 'needs root on Linux to mount a tmpfs';
if (mountError) process.stderr.write(`store-faults.test.ts skipped: ${mountError}\n`);

const req = { inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: new Array(12).fill(0.5) }] };

/** Fills the filesystem of `dir` with one file until it is full. */
function fill(dir: string): string {
  const file = path.join(dir, 'filler');
  const chunk = Buffer.alloc(256 * 1024, 1);
  let written = 0;
  try {
    for (;;) {
      writeFileSync(file, chunk, { flag: 'a' });
      written += chunk.length;
    }
  } catch {
    /* ENOSPC: full */
  }
  // Small writes can still fit in the last partial block: fill those too.
  try {
    for (;;) writeFileSync(file, Buffer.alloc(512, 1), { flag: 'a' });
  } catch {
    /* full */
  }
  expect(written).toBeGreaterThan(0);
  return file;
}

async function until(what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(mountError !== undefined)('store faults on a real filesystem', () => {
  let srv: TestServer;
  const dataDir = path.join(mountPoint, 'data');

  beforeAll(async () => {
    srv = await startTestServer({ storage: { dataDir }, predictionLog: { flushIntervalMs: 50 } });
    await srv.warden.registry.push({ model: 'm', bytes: logreg, aliases: ['champion'] });
    await srv.warden.table.settled();
    expect((await srv.json('POST', '/v2/models/m/infer', req)).status).toBe(200);
  });
  afterAll(async () => {
    await srv?.close();
    try {
      execFileSync('mount', ['-o', 'remount,rw', mountPoint], { stdio: 'pipe' });
    } catch {
      /* already rw */
    }
    execFileSync('umount', [mountPoint], { stdio: 'pipe' });
    rmSync(mountPoint, { recursive: true, force: true });
  });

  const degradedGauge = async (store: string) => {
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    return Number(new RegExp(`^warden_store_degraded\\{store="${store}"\\} (\\d)`, 'm').exec(text)?.[1]);
  };

  it('a full disk: writes answer 503 naming the cause and the fix; predictions are served; ready and the gauge say degraded', async () => {
    expect(await degradedGauge('events')).toBe(0);
    const filler = fill(mountPoint);
    try {
      const push = await fetch(`${srv.url}/api/v1/models/other/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: gbr });
      expect(push.status).toBe(503);
      expect(Number(push.headers.get('retry-after'))).toBeGreaterThan(0);
      const body = (await push.json()) as { code: string; error: string };
      expect(body.code).toBe('WARDEN_STORE_UNAVAILABLE');
      expect(body.error).toMatch(/disk holding the data directory is full/);
      expect(body.error).toMatch(/free space/);

      // Predictions keep being served while their log cannot be written.
      for (let i = 0; i < 50; i++) expect((await srv.json('POST', '/v2/models/m/infer', req)).status).toBe(200);
      await until('the log to meet the full disk', async () => (await degradedGauge('events')) === 1);
      const ready = await srv.json('GET', '/v2/health/ready');
      expect(ready.status).toBe(200);
      expect(ready.body.ready).toBe(true);
      expect(ready.body.degraded.map((d: { store: string }) => d.store)).toContain('events');
      expect(ready.body.degraded[0].cause).toMatch(/full/);

      const labels = await srv.json('POST', '/api/v1/labels', { labels: Array.from({ length: 2000 }, (_, i) => ({ key: `k${i}`, value: 1 })) });
      expect(labels.status).toBe(503);
      expect(labels.body.code).toBe('WARDEN_STORE_UNAVAILABLE');
    } finally {
      rmSync(filler, { force: true });
    }
    // Room again: the next flush writes and the events store is healthy.
    await until('the log to write again', async () => (await degradedGauge('events')) === 0);
    const push = await fetch(`${srv.url}/api/v1/models/other/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: gbr });
    expect(push.status).toBe(201);
    // The push's writes succeeded: no store is degraded any more.
    expect((await srv.json('GET', '/v2/health/ready')).body.degraded).toBeUndefined();
  });

  it('a read-only data directory: writes answer 503 naming it; predictions are served', async () => {
    // The artifacts folder is bind-mounted read-only onto itself (a live filesystem with open files cannot be
    // remounted read-only; a bind mount of a folder with none open can). Root ignores permission bits, so this is the
    // one real read-only case a test can make; the databases get SQLite's own read-only state on their connection.
    const artifacts = path.join(dataDir, 'artifacts');
    execFileSync('mount', ['--bind', artifacts, artifacts], { stdio: 'pipe' });
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', artifacts], { stdio: 'pipe' });
      // New bytes (a freshly trained model): identical bytes would need no write at all.
      const fresh = Buffer.from((await train(bikeSharingDemoOptions('linear'))).onnx);
      const push = await fetch(`${srv.url}/api/v1/models/third/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: fresh });
      const body = (await push.json()) as { code: string; error: string };
      expect(push.status, JSON.stringify(body)).toBe(503);
      expect(body.code).toBe('WARDEN_STORE_UNAVAILABLE');
      expect(body.error).toMatch(/read-only or not writable.*artifacts store, EROFS.*storage\.dataDir writable/);
      expect(await degradedGauge('artifacts')).toBe(1);
      for (let i = 0; i < 20; i++) expect((await srv.json('POST', '/v2/models/m/infer', req)).status).toBe(200);
    } finally {
      execFileSync('umount', [artifacts], { stdio: 'pipe' });
    }

    // SQLite's query_only makes the metadata connection refuse writes with SQLITE_READONLY, as a read-only file does.
    const db = (srv.warden.stores.metadata as unknown as { db: { pragma(s: string): unknown } }).db;
    db.pragma('query_only = ON');
    try {
      const alias = await srv.json('PUT', '/api/v1/models/m/aliases/canary', { version: 1 });
      expect(alias.status).toBe(503);
      expect(alias.body.code).toBe('WARDEN_STORE_UNAVAILABLE');
      expect(alias.body.error).toMatch(/read-only or not writable.*metadata store, SQLITE_READONLY/);
      expect(await degradedGauge('metadata')).toBe(1);
      expect((await srv.json('POST', '/v2/models/m/infer', req)).status).toBe(200);
    } finally {
      db.pragma('query_only = OFF');
    }
    // A write that succeeds clears the state at once.
    expect((await srv.json('PUT', '/api/v1/models/m/aliases/canary', { version: 1 })).status).toBe(200);
    expect(await degradedGauge('metadata')).toBe(0);
  });
});
