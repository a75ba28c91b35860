/**
 * Pushing bytes already registered with `--features` or `--metadata` used to print "already registered" and drop
 * them — the very fix the `:predict` error suggests. Now what the version lacks is added, what it has is kept, and a
 * different value is refused naming it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWarden } from '../helpers/cli.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const file = path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx');
const bytes = readFileSync(file);
const names = (JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.expected.json'), 'utf8')) as { features: string[] }).features;
const features = names.map((name) => ({ name, datatype: 'FP32' }));

describe('pushing the same bytes again', () => {
  let srv: TestServer;
  let dir: string;
  const push = (headers: Record<string, string> = {}) =>
    fetch(`${srv.url}/api/v1/models/busy/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', ...headers }, body: bytes });

  beforeAll(async () => {
    srv = await startTestServer();
    dir = await mkdtemp(path.join(tmpdir(), 'warden-amend-'));
  });
  afterAll(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('adds features to a version that has none, and :predict then works', async () => {
    expect((await push()).status).toBe(201);
    const instance = Object.fromEntries(names.map((n) => [n, 0.5]));
    const before = await srv.json('POST', '/v1/models/busy:predict', { instances: [instance] });
    expect(before.status).toBe(400);
    expect(before.body.error).toMatch(/no named features/);

    const again = await push({ 'x-warden-features': JSON.stringify(features) });
    expect(again.status).toBe(200);
    const body = (await again.json()) as { created: boolean; amended: string[]; version: { version: number; signature: { features: unknown[] } } };
    expect(body).toMatchObject({ created: false, amended: ['features'], version: { version: 1 } });
    expect(body.version.signature.features).toHaveLength(names.length);
    await srv.warden.table.settled();
    expect((await srv.json('POST', '/v1/models/busy:predict', { instances: [instance] })).status).toBe(200);
    expect((await srv.json('GET', '/api/v1/models/busy/versions/1')).body.signature.features).toEqual(features);
  });

  it('keeps what the version has, and refuses a different feature list naming both', async () => {
    const same = await push({ 'x-warden-features': JSON.stringify(features) });
    expect(same.status).toBe(200);
    expect(((await same.json()) as { amended: string[] }).amended).toEqual([]);
    const renamed = features.map((f, i) => (i === 0 ? { ...f, name: 'renamed' } : f));
    const res = await push({ 'x-warden-features': JSON.stringify(renamed) });
    expect(res.status).toBe(409);
    const b = (await res.json()) as { code: string; error: string };
    expect(b.code).toBe('WARDEN_CONFLICT');
    expect(b.error).toMatch(/busy v1 has these bytes already, with a different feature list: it has \[\{"name":"season"/);
    expect(b.error).toMatch(/"renamed"/);
  });

  it('adds metadata fields the version lacks and refuses one that differs', async () => {
    const added = await push({ 'x-warden-metadata': JSON.stringify({ metrics: { auc: 0.9 }, sourceCommit: 'abc123' }) });
    expect(added.status).toBe(200);
    expect(((await added.json()) as { amended: string[] }).amended.sort()).toEqual(['metadata.metrics', 'metadata.sourceCommit']);
    const v = await srv.json('GET', '/api/v1/models/busy/versions/1');
    expect(v.body.metadata).toMatchObject({ metrics: { auc: 0.9 }, sourceCommit: 'abc123' });
    const clash = await push({ 'x-warden-metadata': JSON.stringify({ sourceCommit: 'def456' }) });
    expect(clash.status).toBe(409);
    expect(((await clash.json()) as { error: string }).error).toMatch(/different metadata\.sourceCommit: it has "abc123", this push sends "def456"/);
  });

  it('the CLI says what it added, or that there was nothing to add', async () => {
    const featuresFile = path.join(dir, 'f.json');
    await writeFile(featuresFile, JSON.stringify(features));
    const fresh = await runWarden(['push', file, '--model', 'cli-busy'], { WARDEN_URL: srv.url });
    expect(fresh.stdout).toContain('registered cli-busy v1');
    const amended = await runWarden(['push', file, '--model', 'cli-busy', '--features', featuresFile], { WARDEN_URL: srv.url });
    expect(amended.code, amended.stderr).toBe(0);
    expect(amended.stdout).toContain('already registered (same bytes) cli-busy v1; added features');
    const nothing = await runWarden(['push', file, '--model', 'cli-busy'], { WARDEN_URL: srv.url });
    expect(nothing.stdout).toContain('already registered (same bytes) cli-busy v1; nothing new to add');
  });
});
