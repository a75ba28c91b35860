/**
 * Rate limits over real HTTP on loopback and a real SQLite store: token buckets per key and per deployment, set by
 * config and by the API, common to servers on one store, 429 with Retry-After before the body is read.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { createApiKey, RateLimiter } from '../../src/security/index.ts';
import { freshPgSchema, pgTestUrl } from '../helpers/postgres.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const modelBytes = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const inferBody = { inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: new Array(12).fill(0.5) }] };
const bearer = (s: string) => ({ authorization: `Bearer ${s}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pushModels(srv: TestServer, key: string | undefined, names: string[]): Promise<void> {
  for (const m of names) {
    const res = await fetch(`${srv.url}/api/v1/models/${m}/versions?alias=champion`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...(key ? bearer(key) : {}) },
      body: modelBytes,
    });
    expect(res.status).toBe(201);
  }
}

const refusedCount = async (srv: TestServer, scope: string): Promise<number> => {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const m = new RegExp(`^warden_rate_limited_total\\{scope="${scope}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};

describe('rate limits (auth on)', () => {
  let srv: TestServer;
  let admin: string;
  let app: { id: string; secret: string };

  beforeAll(async () => {
    srv = await startTestServer({
      auth: { required: true, keyRefreshMs: 300 },
      // A slow refill, so a test's requests cannot earn a token back while it runs.
      rateLimits: { key: { rate: 0.01, burst: 3 } },
    });
    admin = (await createApiKey(srv.warden.stores.metadata, 'admin', 'admin')).secret;
    const made = await createApiKey(srv.warden.stores.metadata, 'app', 'predictor');
    app = { id: made.record.id, secret: made.secret };
    await srv.warden.keys.reload();
    // The admin key gets a generous limit of its own by the API, so setting up is not throttled.
    const adminId = (await srv.warden.stores.metadata.listApiKeys()).find((k) => k.name === 'admin')!.id;
    await srv.warden.stores.metadata.saveRateLimit({ scope: 'key', name: adminId, rate: 1000, burst: 1000, updatedAt: 1, updatedBy: 'test' });
    await srv.warden.rateLimits.reload();
    await pushModels(srv, admin, ['bike', 'taxi']);
  });
  afterAll(() => srv?.close());

  it('refuses a key past its burst with 429, the error shape, an integer Retry-After ≥ 1, and counts it', async () => {
    const before = await refusedCount(srv, 'key');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await srv.json('POST', '/v2/models/bike/infer', inferBody, bearer(app.secret))).status);
    expect(statuses).toEqual([200, 200, 200]);
    const res = await srv.json('POST', '/v2/models/bike/infer', inferBody, bearer(app.secret));
    expect(res.status).toBe(429);
    expect(res.body).toEqual({ code: 'WARDEN_RATE_LIMITED', error: expect.stringMatching(new RegExp(`^key ${app.id} is over its rate limit of 0.01/s \\(burst 3\\); retry after \\d+ s$`)) });
    const retry = res.headers.get('retry-after')!;
    expect(retry).toMatch(/^\d+$/);
    expect(Number(retry)).toBeGreaterThanOrEqual(1);
    // One token at 0.01/s takes 100 s.
    expect(Number(retry)).toBeGreaterThan(90);
    expect(Number(retry)).toBeLessThanOrEqual(100);
    // The key's bucket covers every route it calls.
    expect((await srv.json('GET', '/v2/models/bike', undefined, bearer(app.secret))).status).toBe(429);
    expect(await refusedCount(srv, 'key')).toBe(before + 2);
    // A refused request with a body is answered before the body is read: the connection is closed.
    expect(res.headers.get('connection')).toBe('close');
  });

  it('sets, lists and deletes limits by the API; a deployment limit counts inference by every caller', async () => {
    const put = await srv.json('PUT', '/api/v1/rate-limits/deployment/taxi', { rate: 0.01, burst: 2 }, bearer(admin));
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ scope: 'deployment', name: 'taxi', rate: 0.01, burst: 2, updatedBy: expect.stringContaining('admin') });
    const other = await createApiKey(srv.warden.stores.metadata, 'other', 'predictor');
    const lifted = await srv.json('PUT', `/api/v1/rate-limits/key/${other.record.id}`, { rate: 1000 }, bearer(admin));
    expect(lifted.body.burst).toBe(1000);
    const before = await refusedCount(srv, 'deployment');
    const a = await srv.json('POST', '/v2/models/taxi/infer', inferBody, bearer(admin));
    const b = await srv.json('POST', '/v1/models/taxi:predict', { instances: [new Array(12).fill(0.5)] }, bearer(other.secret));
    expect([a.status, b.status]).not.toContain(429);
    const c = await srv.json('POST', '/v2/models/taxi/versions/1/infer', inferBody, bearer(other.secret));
    expect(c.status).toBe(429);
    expect(c.body.error).toMatch(/^deployment taxi is over its rate limit of 0.01\/s \(burst 2\)/);
    expect(await refusedCount(srv, 'deployment')).toBe(before + 1);
    // Other deployments and non-inference routes are not counted against it.
    expect((await srv.json('POST', '/v2/models/bike/infer', inferBody, bearer(other.secret))).status).toBe(200);
    expect((await srv.json('GET', '/v2/models/taxi', undefined, bearer(other.secret))).status).toBe(200);

    const listed = await srv.json('GET', '/api/v1/rate-limits', undefined, bearer(admin));
    expect(listed.status).toBe(200);
    expect(listed.body.perReplica).toBe(1);
    expect(listed.body.defaults.key).toMatchObject({ rate: 0.01, burst: 3, source: 'default' });
    expect(listed.body.limits).toContainEqual(expect.objectContaining({ scope: 'deployment', name: 'taxi', rate: 0.01, burst: 2, source: 'api' }));

    expect((await srv.json('DELETE', '/api/v1/rate-limits/deployment/taxi', undefined, bearer(admin))).status).toBe(204);
    expect((await srv.json('DELETE', '/api/v1/rate-limits/deployment/taxi', undefined, bearer(admin))).status).toBe(404);
    expect((await srv.json('POST', '/v2/models/taxi/infer', inferBody, bearer(other.secret))).status).toBe(200);
  });

  it('answers bad limits with 4xx naming the problem, never a crash', async () => {
    const put = (p: string, body: unknown) => srv.json('PUT', `/api/v1/rate-limits/${p}`, body, bearer(admin));
    for (const body of [{}, { rate: -1 }, { rate: 0 }, { rate: 'fast' }, { rate: 1, burst: 0.5 }, { rate: 2e6 }, [], 'x', null]) {
      const res = await put('deployment/bike', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code).toBe('WARDEN_BAD_REQUEST');
    }
    expect((await put('model/bike', { rate: 1 })).status).toBe(400);
    expect((await put('deployment/nope', { rate: 1 })).body.code).toBe('WARDEN_MODEL_NOT_FOUND');
    expect((await put('key/nope', { rate: 1 })).status).toBe(404);
    expect((await srv.json('PUT', '/api/v1/rate-limits/key/x', { rate: 1 }, bearer(app.secret))).status).toBe(403);
  });

  it('applies a limit set on one server to another on the same store within auth.keyRefreshMs', async () => {
    const other = await startTestServer({ auth: { required: true, keyRefreshMs: 300 }, storage: { dataDir: srv.dataDir } });
    try {
      const k = await createApiKey(srv.warden.stores.metadata, 'two-servers', 'predictor');
      expect((await srv.json('PUT', `/api/v1/rate-limits/key/${k.record.id}`, { rate: 0.01, burst: 1 }, bearer(admin))).status).toBe(200);
      await sleep(450);
      expect((await other.json('POST', '/v2/models/bike/infer', inferBody, bearer(k.secret))).status).toBe(200);
      // Per replica: the other server's bucket is its own.
      expect((await other.json('POST', '/v2/models/bike/infer', inferBody, bearer(k.secret))).status).toBe(429);
      expect((await srv.json('POST', '/v2/models/bike/infer', inferBody, bearer(k.secret))).status).toBe(200);
    } finally {
      await other.warden.close();
    }
  });
});

describe('rate limits (auth off, per replica divisor)', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer({ rateLimits: { perReplica: 2, deployment: { rate: 0.01, burst: 4 } } });
    await pushModels(srv, undefined, ['bike']);
  });
  afterAll(() => srv?.close());

  it('limits keyless inference per deployment, dividing the burst by rateLimits.perReplica', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await srv.json('POST', '/v2/models/bike/infer', inferBody)).status);
    expect(statuses).toEqual([200, 200, 429]);
    const listed = await srv.json('GET', '/api/v1/rate-limits');
    expect(listed.body.defaults.deployment).toMatchObject({ rate: 0.01, burst: 4, size: 2 });
    // Not inference: not counted.
    expect((await srv.json('GET', '/v2/models/bike')).status).toBe(200);
  });
});

describe.skipIf(!pgTestUrl())('two replicas on PostgreSQL: the change feed carries revocations and limits', () => {
  let schema: Awaited<ReturnType<typeof freshPgSchema>>;
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    schema = await freshPgSchema();
    // A key reload interval far beyond the test: only the change feed can bring the changes over.
    const config = { auth: { required: true, keyRefreshMs: 600_000 }, storage: { url: schema.url }, cluster: { syncIntervalMs: 100 } };
    a = await startTestServer(config);
    b = await startTestServer(config);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await schema?.drop();
  });

  const within = async (ms: number, check: () => Promise<boolean>): Promise<number> => {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) {
      if (await check()) return Date.now() - t0;
      await sleep(20);
    }
    return Infinity;
  };

  it('a limit set and a key revoked on one replica apply on the other within cluster.syncIntervalMs and a reload', async () => {
    const admin = (await createApiKey(a.warden.stores.metadata, 'admin', 'admin')).secret;
    const k = await createApiKey(a.warden.stores.metadata, 'app', 'viewer');
    await a.warden.keys.reload();
    expect((await b.json('GET', '/api/v1/models', undefined, bearer(k.secret))).status).toBe(200);
    expect((await a.json('PUT', `/api/v1/rate-limits/key/${k.record.id}`, { rate: 0.01, burst: 1 }, bearer(admin))).status).toBe(200);
    const limited = await within(2000, async () => {
      const first = (await b.json('GET', '/api/v1/models', undefined, bearer(k.secret))).status;
      return first === 429 || (await b.json('GET', '/api/v1/models', undefined, bearer(k.secret))).status === 429;
    });
    expect(limited).toBeLessThan(1000);
    expect((await a.json('DELETE', `/api/v1/keys/${k.record.id}`, undefined, bearer(admin))).status).toBe(204);
    expect(await within(2000, async () => (await b.json('GET', '/api/v1/models', undefined, bearer(k.secret))).status === 401)).toBeLessThan(1000);
  });
});

describe('RateLimiter', () => {
  const store = { listRateLimits: async () => [] } as never;
  const limiter = (over: object = {}) =>
    new RateLimiter({ store, config: parseConfig({ rateLimits: { maxBuckets: 16, key: { rate: 10, burst: 5 }, ...over } }).rateLimits });

  it('refills at the rate up to the burst, and says how long to wait', () => {
    const l = limiter();
    for (let i = 0; i < 5; i++) expect(l.takeKey('a', 1000)).toBe(0);
    expect(l.takeKey('a', 1000)).toBe(1);
    expect(l.takeKey('a', 1100)).toBe(0); // 100 ms at 10/s: one token
    expect(l.takeKey('a', 1100)).toBe(1);
    expect(l.takeKey('a', 100_000)).toBe(0);
    for (let i = 0; i < 4; i++) expect(l.takeKey('a', 100_000)).toBe(0);
    expect(l.takeKey('a', 100_000)).toBe(1);
  });

  it('holds at most maxBuckets per scope, dropping refilled buckets first', () => {
    const l = limiter();
    for (let i = 0; i < 1000; i++) l.takeKey(`k${i}`, 1000 + i);
    expect(l.bucketCount().key).toBeLessThanOrEqual(16);
    // A busy key is not dropped while refilled ones remain.
    const m = limiter();
    for (let i = 0; i < 10; i++) m.takeKey(`idle${i}`, 0);
    for (let i = 0; i < 5; i++) m.takeKey('hot', 200);
    for (let i = 0; i < 10; i++) m.takeKey(`new${i}`, 200);
    expect(m.bucketCount().key).toBe(11);
    expect(m.takeKey('hot', 200)).toBeGreaterThan(0);
  });

  it('does not limit what has no limit', () => {
    const l = new RateLimiter({ store, config: parseConfig({}).rateLimits });
    expect(l.active).toBe(false);
    for (let i = 0; i < 100; i++) expect(l.takeKey('a', 0) + l.takeDeployment('d', 0)).toBe(0);
    expect(l.bucketCount()).toEqual({ key: 0, deployment: 0 });
  });
});
