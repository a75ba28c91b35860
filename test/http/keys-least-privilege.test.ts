/**
 * Keys for least privilege over real HTTP on loopback and a real SQLite store: scopes, expiry, rotation with an
 * overlap, last use written in batches, revocation at once here and within auth.keyRefreshMs on another server.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApiKey, KeyRing } from '../../src/security/index.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite/metadata-store.ts';
import { runWarden } from '../helpers/cli.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const modelBytes = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const inferBody = { inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: new Array(12).fill(0.5) }] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bearer = (s: string) => ({ authorization: `Bearer ${s}` });
// Spied before any store exists: the stores' health wrapper keeps the method it first sees.
const touchSpy = vi.spyOn(SqliteMetadataStore.prototype, 'touchApiKeys');

describe('keys for least privilege (auth.required: true)', () => {
  let srv: TestServer;
  let admin: string;

  beforeAll(async () => {
    srv = await startTestServer({ auth: { required: true, lastUsedFlushMs: 200, keyRefreshMs: 300 } });
    admin = (await createApiKey(srv.warden.stores.metadata, 'admin', 'admin')).secret;
    await srv.warden.keys.reload();
    for (const m of ['bike', 'taxi']) {
      const res = await fetch(`${srv.url}/api/v1/models/${m}/versions?alias=champion`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', ...bearer(admin) },
        body: modelBytes,
      });
      expect(res.status).toBe(201);
    }
  });
  afterAll(() => srv?.close());

  const create = (body: unknown) => srv.json('POST', '/api/v1/keys', body, bearer(admin));

  it('refuses a scope naming an unknown model with 400 naming it, and scopes on an admin key', async () => {
    const res = await create({ name: 'x', role: 'predictor', scopes: ['bike', 'nope'] });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'WARDEN_BAD_REQUEST' });
    expect(res.body.error).toMatch(/unknown model "nope"/);
    expect((await create({ name: 'x', role: 'admin', scopes: ['bike'] })).status).toBe(400);
    for (const scopes of [[], 'bike', [1], new Array(101).fill('bike')]) expect((await create({ name: 'x', role: 'viewer', scopes })).status).toBe(400);
    expect((await srv.json('GET', '/api/v1/keys', undefined, bearer(admin))).body.keys.map((k: { name: string }) => k.name)).toEqual(['admin']);
  });

  it('lets a scoped key reach its models only; lists are filtered, routes about no one model refuse it', async () => {
    const made = await create({ name: 'bike-app', role: 'predictor', scopes: ['bike'] });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ scopes: ['bike'], role: 'predictor' });
    expect(made.body.hash).toBeUndefined();
    const key = bearer(made.body.secret);
    expect((await srv.json('POST', '/v2/models/bike/infer', inferBody, key)).status).toBe(200);
    expect((await srv.json('POST', '/v1/models/bike:predict', { instances: [new Array(12).fill(0.5)] }, key)).status).not.toBe(403);
    const other = await srv.json('POST', '/v2/models/taxi/infer', inferBody, key);
    expect(other.status).toBe(403);
    expect(other.body.error).toMatch(/scoped to models bike, not "taxi"/);
    expect((await srv.json('POST', '/v1/models/taxi:predict', { instances: [new Array(12).fill(0.5)] }, key)).status).toBe(403);
    expect((await srv.json('GET', '/v2/models/taxi', undefined, key)).status).toBe(403);
    expect((await srv.json('GET', '/v2/models/bike', undefined, key)).status).toBe(200);
    expect((await srv.json('GET', '/api/v1/deployments/taxi', undefined, key)).status).toBe(403);
    expect((await srv.json('GET', '/api/v1/models', undefined, key)).body.models.map((m: { name: string }) => m.name)).toEqual(['bike']);
    expect((await srv.json('GET', '/api/v1/deployments', undefined, key)).body.deployments.map((m: { name: string }) => m.name)).toEqual(['bike']);
    const log = await srv.json('GET', '/api/v1/predictions?model=bike', undefined, key);
    expect(log.status).toBe(403);
    expect(log.body.error).toMatch(/not about one model/);
    expect((await srv.json('GET', '/api/v1/session', undefined, key)).body.key).toMatchObject({ scopes: ['bike'] });
    // The unscoped admin still sees both.
    expect((await srv.json('GET', '/api/v1/models', undefined, bearer(admin))).body.models).toHaveLength(2);
  });

  it('refuses an expired key with 401 saying when it expired; a past or malformed expiry is a 400', async () => {
    const at = Date.now() + 400;
    const made = await create({ name: 'short', role: 'viewer', expiresAt: new Date(at).toISOString() });
    expect(made.status).toBe(201);
    expect(made.body.expiresAt).toBe(at);
    expect((await srv.json('GET', '/v2/models/bike', undefined, bearer(made.body.secret))).status).toBe(200);
    await sleep(at - Date.now() + 20);
    const res = await srv.json('GET', '/v2/models/bike', undefined, bearer(made.body.secret));
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ code: 'WARDEN_KEY_EXPIRED', error: `API key ${made.body.id} expired at ${new Date(at).toISOString()}; ask an admin for a new key ('warden keys create')` });
    expect((await create({ name: 'x', role: 'viewer', expiresAt: Date.now() - 1 })).status).toBe(400);
    expect((await create({ name: 'x', role: 'viewer', expiresAt: 'soon' })).status).toBe(400);
    expect((await create({ name: 'x', role: 'viewer', expiresIn: '30d' })).body.expiresAt).toBeGreaterThan(Date.now() + 29 * 86_400_000);
  });

  it('rotates with an overlap: both secrets work until it ends, then the old one is refused', async () => {
    const made = await create({ name: 'rot', role: 'viewer' });
    const rotated = await srv.json('POST', `/api/v1/keys/${made.body.id}/rotate`, { overlap: '600ms' }, bearer(admin));
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(made.body.secret);
    expect(rotated.body.previousHash).toBeUndefined();
    const until = rotated.body.previousUntil as number;
    for (const s of [made.body.secret, rotated.body.secret]) expect((await srv.json('GET', '/v2/models/bike', undefined, bearer(s))).status).toBe(200);
    await sleep(until - Date.now() + 20);
    const old = await srv.json('GET', '/v2/models/bike', undefined, bearer(made.body.secret));
    expect(old.status).toBe(401);
    expect(old.body.code).toBe('WARDEN_KEY_EXPIRED');
    expect(old.body.error).toContain(`replaced by a rotation and stopped working at ${new Date(until).toISOString()}`);
    expect((await srv.json('GET', '/v2/models/bike', undefined, bearer(rotated.body.secret))).status).toBe(200);
    expect((await srv.json('POST', '/api/v1/keys/nope/rotate', { overlap: '1h' }, bearer(admin))).status).toBe(404);
    expect((await srv.json('POST', `/api/v1/keys/${made.body.id}/rotate`, { overlap: '31d' }, bearer(admin))).status).toBe(400);
    expect((await srv.json('POST', `/api/v1/keys/${made.body.id}/rotate`, { overlap: 'later' }, bearer(admin))).status).toBe(400);
  });

  it('records last use in memory and writes it in batches, not per request', async () => {
    const made = await create({ name: 'used', role: 'viewer' });
    const before = Date.now();
    const store = srv.warden.stores.metadata;
    const callsBefore = touchSpy.mock.calls.length;
    for (let i = 0; i < 20; i++) await srv.json('GET', '/v2/models/bike', undefined, bearer(made.body.secret));
    // Shown at once from memory, before any write.
    const listed = (await srv.json('GET', '/api/v1/keys', undefined, bearer(admin))).body.keys.find((k: { id: string }) => k.id === made.body.id);
    expect(listed.lastUsedAt).toBeGreaterThanOrEqual(before);
    await sleep(450);
    const writes = touchSpy.mock.calls.length - callsBefore;
    // 20 requests over ~0.5 s with auth.lastUsedFlushMs 200: two or three batched writes, not 20.
    expect(writes).toBeGreaterThan(0);
    expect(writes).toBeLessThanOrEqual(4);
    const stored = (await store.listApiKeys()).find((k) => k.id === made.body.id);
    expect(stored?.lastUsedAt).toBeGreaterThanOrEqual(before);
  });

  it('revokes at once on this server and within auth.keyRefreshMs on another server of the same store', async () => {
    const other = await startTestServer({ auth: { required: true, keyRefreshMs: 300 }, storage: { dataDir: srv.dataDir } });
    try {
      const made = await create({ name: 'gone', role: 'viewer' });
      for (const s of [srv, other]) expect((await s.json('GET', '/v2/models/bike', undefined, bearer(made.body.secret))).status).toBe(200);
      expect((await srv.json('DELETE', `/api/v1/keys/${made.body.id}`, undefined, bearer(admin))).status).toBe(204);
      expect((await srv.json('GET', '/v2/models/bike', undefined, bearer(made.body.secret))).status).toBe(401);
      const revokedAt = Date.now();
      let refusedAfter = Infinity;
      while (Date.now() - revokedAt < 2000) {
        if ((await other.json('GET', '/v2/models/bike', undefined, bearer(made.body.secret))).status === 401) {
          refusedAfter = Date.now() - revokedAt;
          break;
        }
        await sleep(20);
      }
      expect(refusedAfter).toBeLessThanOrEqual(300 + 150);
    } finally {
      await other.warden.close();
    }
  });

  it('warden keys create/rotate/list work on the data directory: scopes, expiry, overlap and last use shown', async () => {
    const env = { WARDEN_DATA_DIR: srv.dataDir };
    const bad = await runWarden(['keys', 'create', '--role', 'predictor', '--scope', 'nope'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown model "nope"/);
    const made = await runWarden(['keys', 'create', '--role', 'predictor', '--name', 'cli-bike', '--scope', 'bike', '--expires', '7d'], env);
    expect(made.code).toBe(0);
    const secret = made.stdout.trim();
    expect((await srv.json('POST', '/v2/models/bike/infer', inferBody, bearer(secret))).status).toBe(200);
    expect((await srv.json('POST', '/v2/models/taxi/infer', inferBody, bearer(secret))).status).toBe(403);
    await srv.warden.keys.flushUsage();
    const id = /created key ([0-9a-f]+)/.exec(made.stderr)![1]!;
    const rotated = await runWarden(['keys', 'rotate', id, '--overlap', '1h'], env);
    expect(rotated.code).toBe(0);
    expect(rotated.stderr).toMatch(/old secret works until/);
    // Both work: the new one is found by the miss reload, the old one during its hour.
    for (const s of [secret, rotated.stdout.trim()]) expect((await srv.json('POST', '/v2/models/bike/infer', inferBody, bearer(s))).status).toBe(200);
    const list = await runWarden(['keys', 'list'], env);
    expect(list.code).toBe(0);
    const line = list.stdout.split('\n').find((l) => l.includes(id))!;
    expect(line).toMatch(/cli-bike\s+predictor\s+bike\s/);
    expect(line.match(/\d{4}-\d\d-\d\dT/g)?.length).toBe(4); // created, expires, old secret until, last used
    expect((await runWarden(['keys', 'rotate', 'nope'], env)).code).toBe(2);
    expect((await runWarden(['keys', 'rotate', id, '--overlap', 'soon'], env)).code).toBe(2);
  });
});

describe('KeyRing', () => {
  it('accepts only the exact secret (digests compared in constant time after the lookup)', async () => {
    const srv = await startTestServer();
    try {
      const made = await createApiKey(srv.warden.stores.metadata, 'k', 'viewer');
      const ring = new KeyRing(srv.warden.stores.metadata);
      await ring.reload();
      expect(ring.verify(made.secret)?.key.id).toBe(made.record.id);
      expect(ring.verify(`${made.secret}x`)).toBeUndefined();
      expect(ring.verify('')).toBeUndefined();
    } finally {
      await srv.close();
    }
  });
});
