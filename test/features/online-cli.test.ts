/**
 * `warden features materialize | materialize-status | bind | bindings | online | skew | unbind` against a real server: a
 * run followed to its end (exit 0, each view's counts), a second run with nothing new, a failing view exits 1 with
 * its error, a binding printed with the features each view provides, online values with their status.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeOnnx } from '../../src/lifecycle/trainer/onnx-writer.ts';
import { runWarden } from '../helpers/cli.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let srv: TestServer;
let dir: string;
const cli = (...args: string[]) => runWarden(['--url', srv.url, ...args], {}, 60_000);
const NOW = Date.now();

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'warden-online-cli-'));
  const rows = Array.from({ length: 12_000 }, (_, i) => `s${i},${NOW - 60_000},${i}`);
  writeFileSync(path.join(dir, 'counts.csv'), `station,ts,cnt\n${rows.join('\n')}\ns-old,${NOW - 30 * 86_400_000},1\n`);
  writeFileSync(path.join(dir, 'broken.csv'), `station,ts,cnt\ns1,${NOW},one\n`);
  srv = await startTestServer();
  const put = await srv.json('PUT', '/api/v1/features', {
    entities: [{ name: 'station', joinKeys: ['station'] }],
    featureViews: [
      { name: 'counts', entities: ['station'], source: { kind: 'file', path: path.join(dir, 'counts.csv') }, timestampField: 'ts', ttl: '1d', schema: [{ name: 'cnt', dtype: 'float' }] },
      { name: 'broken', entities: ['station'], source: { kind: 'file', path: path.join(dir, 'broken.csv') }, timestampField: 'ts', ttl: 0, schema: [{ name: 'cnt', dtype: 'string' }] },
    ],
  });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
  // The definitions check a file's first rows when they are applied: the file goes bad after.
  writeFileSync(path.join(dir, 'broken.csv'), `station,ts,cnt\ns1,yesterday,one\n`);
  const model = writeOnnx({ kind: 'linear', featureCount: 2, weights: Float32Array.from([1, 1]), bias: 0, metadata: {} });
  const pushed = await fetch(`${srv.url}/api/v1/models/m/versions?alias=champion`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'x-warden-features': JSON.stringify([{ name: 'hr' }, { name: 'cnt' }]) },
    body: Buffer.from(model),
  });
  expect(pushed.status).toBe(201);
}, 60_000);
afterAll(async () => {
  await srv?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('warden features (online store)', () => {
  it('materialize follows the run to its end and prints each view', async () => {
    const r = await cli('features', 'materialize', 'counts');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/counts \(csv\): succeeded, 12001 read, 12001 written, 12001 replaced, watermark \d{4}-/);
    expect(r.stdout).toMatch(/materialization m\w+ succeeded/);
    const again = await cli('features', 'materialize', 'counts');
    expect(again.stdout).toContain('counts (csv): succeeded, 0 read, 0 written');
    const st = await cli('features', 'materialize-status');
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/counts\s+csv\s+\d{4}-\S+\s+12001\s+m\w+ succeeded/);
    expect(st.stdout).toMatch(/broken\s+csv\s+0/);
    const json = await cli('--json', 'features', 'materialize', 'counts', '--no-wait');
    expect(JSON.parse(json.stdout).run.views[0].view).toBe('counts');
  });

  it('a failing view exits 1 naming the file, line and column', async () => {
    const r = await cli('features', 'materialize', 'broken');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('broken (csv): failed, 1 read, 0 written');
    expect(r.stdout).toContain('broken.csv line 2: event time ts = "yesterday" is not a time (epoch ms or ISO-8601)');
    expect((await cli('features', 'materialize', 'nope')).code).toBe(2);
  });

  it('bind, bindings, online, unbind', async () => {
    const b = await cli('features', 'bind', 'm', 'counts');
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/^m reads counts; updated \S+ by /);
    expect(b.stdout).toContain('  counts: cnt');
    expect((await cli('features', 'bindings', 'm')).stdout).toContain('  counts: cnt');
    expect((await srv.json('POST', '/v1/models/m:predict', { instances: [{ hr: 1, station: 's7' }] })).body.predictions).toEqual([8]);
    const online = await cli('features', 'online', 'counts', '--entity', 'station=s7', '--entity', 'station=s-old', '--entity', 'station=nope');
    expect(online.code, online.stderr).toBe(0);
    const lines = online.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ENTITY\s+FEATURE\s+VALUE\s+STATUS\s+EVENT_TIME$/);
    expect(lines[1]).toMatch(/^station=s7\s+cnt\s+7\s+present\s+\d{4}-/);
    expect(lines[2]).toMatch(/^station=s-old\s+cnt\s+expired\s+\d{4}-/);
    expect(lines[3]).toMatch(/^station=nope\s+cnt\s+missing$/);
    expect((await cli('features', 'online', 'counts', '--entity', 's7')).code).toBe(2);
    // The row served above is the skew sample: the source agrees with what was served.
    const check = await cli('features', 'skew', '--check');
    expect(check.code, check.stderr).toBe(0);
    expect(check.stdout).toMatch(/^counts: 1 of 1 served rows compared at \d{4}-\S+ \(m\)\n  cnt: skew 0\.0 % \(0 of 1 differ\)\n?$/);
    expect((await cli('features', 'skew')).stdout).toBe(check.stdout);
    expect((await cli('features', 'skew', '--check')).stdout.trim()).toMatch(/^no served rows of a feature view were sampled since the last check/);
    expect((await cli('features', 'skew', '--view', 'nope')).stdout.trim()).toBe('no skew check of view nope has run on this server');
    const json = JSON.parse((await cli('--json', 'features', 'skew', '--view', 'counts')).stdout);
    expect(json.views[0]).toMatchObject({ view: 'counts', rows: 1, features: [{ feature: 'cnt', compared: 1, differing: 0, rate: 0 }] });
    const u = await cli('features', 'unbind', 'm');
    expect(u.stdout.trim()).toBe('m: reads no feature views');
    expect((await cli('features', 'bindings', 'm')).code).toBe(2);
  });
});
