import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createApiKey } from '../../src/security/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const modelBytes = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));

describe('API keys and roles (auth.required: true)', () => {
  let srv: TestServer;
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    srv = await startTestServer({ auth: { required: true } });
    for (const role of ['viewer', 'predictor', 'deployer', 'admin'] as const) {
      secrets[role] = (await createApiKey(srv.warden.stores.metadata, `test-${role}`, role)).secret;
    }
    await srv.warden.keys.reload();
  });
  afterAll(() => srv.close());

  const push = (key?: string) =>
    fetch(`${srv.url}/api/v1/models/m/versions?alias=champion`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: modelBytes,
    });

  it('refuses a push without a key with 401 and a clear message', async () => {
    const res = await push();
    expect(res.status).toBe(401);
    const body = await res.json();
    expect(body.code).toBe('WARDEN_UNAUTHENTICATED');
    expect(body.error).toMatch(/API key/);
  });

  it('refuses an unknown key', async () => {
    expect((await push('wdn_nope_nope')).status).toBe(401);
  });

  it('refuses roles below deployer for a push with 403', async () => {
    for (const role of ['viewer', 'predictor']) {
      const res = await push(secrets[role]);
      expect(res.status).toBe(403);
      expect((await res.json()).code).toBe('WARDEN_FORBIDDEN');
    }
  });

  it('lets a deployer push and a predictor infer, but not a viewer', async () => {
    expect((await push(secrets.deployer)).status).toBe(201);
    const req = { inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: new Array(12).fill(0.5) }] };
    const asViewer = await srv.json('POST', '/v2/models/m/infer', req, { authorization: `Bearer ${secrets.viewer}` });
    expect(asViewer.status).toBe(403);
    const asPredictor = await srv.json('POST', '/v2/models/m/infer', req, { 'x-api-key': secrets.predictor! });
    expect(asPredictor.status).toBe(200);
  });

  it('only an admin deletes or manages keys; keys are stored hashed', async () => {
    expect((await srv.json('DELETE', '/api/v1/models/m/aliases/champion', undefined, { authorization: `Bearer ${secrets.deployer}` })).status).toBe(204);
    expect((await srv.json('DELETE', '/api/v1/models/m/versions/1', undefined, { authorization: `Bearer ${secrets.deployer}` })).status).toBe(403);
    expect((await srv.json('GET', '/api/v1/keys', undefined, { authorization: `Bearer ${secrets.deployer}` })).status).toBe(403);
    const created = await srv.json('POST', '/api/v1/keys', { name: 'ci', role: 'viewer' }, { authorization: `Bearer ${secrets.admin}` });
    expect(created.status).toBe(201);
    expect(created.body.secret).toMatch(/^wdn_/);
    const stored = await srv.warden.stores.metadata.listApiKeys();
    expect(stored.some((k) => k.hash === created.body.secret)).toBe(false);
    expect(JSON.stringify(stored)).not.toContain(created.body.secret);
    // The new key works at once, and stops working once revoked.
    expect((await srv.json('GET', '/api/v1/models', undefined, { authorization: `Bearer ${created.body.secret}` })).status).toBe(200);
    expect((await srv.json('DELETE', `/api/v1/keys/${created.body.id}`, undefined, { authorization: `Bearer ${secrets.admin}` })).status).toBe(204);
    expect((await srv.json('GET', '/api/v1/models', undefined, { authorization: `Bearer ${created.body.secret}` })).status).toBe(401);
    expect((await srv.json('DELETE', '/api/v1/models/m/versions/1', undefined, { authorization: `Bearer ${secrets.admin}` })).status).toBe(204);
  });

  it('keeps health and server metadata open for probes', async () => {
    expect((await srv.json('GET', '/v2/health/live')).status).toBe(200);
    expect((await srv.json('GET', '/v2')).status).toBe(200);
  });
});
