/**
 * A call that writes nothing must not clear a store's degraded state: a viewer's label stats on a full disk, or a
 * push of bytes already stored on a read-only artifacts folder, used to reset it (and its `since`), so the gauge
 * flapped. Found by review; needs root (mount), skipped without it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const logreg = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const mountPoint = mkdtempSync(path.join(tmpdir(), 'warden-tmpfs-health-'));
const req = { inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: new Array(12).fill(0.5) }] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fill(dir: string): string {
  const file = path.join(dir, 'filler');
  try {
    for (;;) writeFileSync(file, Buffer.alloc(256 * 1024, 1), { flag: 'a' });
  } catch {
    /* full */
  }
  try {
    for (;;) writeFileSync(file, Buffer.alloc(512, 1), { flag: 'a' });
  } catch {
    /* full */
  }
  return file;
}

describe.skipIf(process.getuid?.() !== 0)('degraded state is not cleared by calls that write nothing', () => {
  let srv: TestServer;
  const dataDir = path.join(mountPoint, 'data');
  beforeAll(async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mountPoint]);
    srv = await startTestServer({ storage: { dataDir }, predictionLog: { flushIntervalMs: 50 } });
    await srv.warden.registry.push({ model: 'm', bytes: logreg, aliases: ['champion'] });
    await srv.warden.table.settled();
  });
  afterAll(async () => {
    await srv?.close();
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });
  const gauge = async (store: string) =>
    Number(new RegExp(`^warden_store_degraded\\{store="${store}"\\} (\\d)`, 'm').exec(await (await fetch(`${srv.url}/metrics`)).text())?.[1]);

  it('full disk: a viewer GET /api/v1/labels/stats leaves events degraded, with its since', async () => {
    const filler = fill(mountPoint);
    try {
      for (let i = 0; i < 30; i++) await srv.json('POST', '/v2/models/m/infer', req);
      for (let i = 0; i < 100 && (await gauge('events')) !== 1; i++) await sleep(50);
      expect(await gauge('events')).toBe(1);
      const since1 = (await srv.json('GET', '/v2/health/ready')).body.degraded?.[0]?.since;
      await sleep(1100);
      const stats = await srv.json('GET', '/api/v1/labels/stats');
      const afterGet = await gauge('events');
      // Still full: a labels write is refused right after.
      const labels = await srv.json('POST', '/api/v1/labels', { labels: Array.from({ length: 2000 }, (_, i) => ({ key: `k${i}`, value: 1 })) });
      const since2 = (await srv.json('GET', '/v2/health/ready')).body.degraded?.[0]?.since;
      expect(stats.status).toBe(200);
      expect(labels.status).toBe(503);
      expect(afterGet).toBe(1);
      expect(since2).toBe(since1);
    } finally {
      rmSync(filler, { force: true });
    }
  });

  it('read-only artifacts: re-pushing bytes already stored leaves artifacts degraded', async () => {
    const artifacts = path.join(dataDir, 'artifacts');
    execFileSync('mount', ['--bind', artifacts, artifacts]);
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', artifacts]);
      const fresh = Buffer.from((await train(bikeSharingDemoOptions('linear'))).onnx);
      const refused = await fetch(`${srv.url}/api/v1/models/third/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: fresh });
      expect(refused.status).toBe(503);
      expect(await gauge('artifacts')).toBe(1);
      const again = await fetch(`${srv.url}/api/v1/models/m/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: logreg });
      expect(again.status).toBe(200);
      const afterRepush = await gauge('artifacts');
      const refusedAgain = await fetch(`${srv.url}/api/v1/models/third/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: fresh });
      expect(refusedAgain.status).toBe(503);
      expect(afterRepush).toBe(1);
    } finally {
      execFileSync('umount', [artifacts]);
    }
  });
});
