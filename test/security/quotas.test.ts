/**
 * Request quotas: two counters on one real SQLite store stand for two replicas (each counts in memory and adds its
 * counts to the store at each flush); a key's and a deployment's totals per UTC day and month hold over both, within
 * what one flush interval lets through, and a new day or month starts from zero. Then on a real server: 429
 * WARDEN_QUOTA_EXCEEDED with Retry-After until midnight, quotas set and removed by API, bad bodies refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { writeOnnx } from '../../src/lifecycle/trainer/onnx-writer.ts';
import { checkQuota, QuotaCounter, type QuotasConfig } from '../../src/security/index.ts';
import { openStores, type Stores } from '../../src/storage/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const DAY = 86_400_000;
// 2026-04-30 23:00 UTC: an hour before both a new day and a new month.
const T0 = Date.UTC(2026, 3, 30, 23, 0);

describe('quota counters over two replicas sharing a store', () => {
  let dir: string;
  let stores: Stores;
  let now = T0;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-quota-'));
    stores = openStores(dir);
    now = T0;
  });
  afterEach(async () => {
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const config = (over: Partial<QuotasConfig> = {}): QuotasConfig => ({ ...parseConfig({}).quotas, ...over });
  const replica = (c: QuotasConfig) => new QuotaCounter({ store: stores.metadata, config: c, now: () => now });

  it('holds a key\'s daily total over both replicas: each sees the other\'s counts after a flush', async () => {
    const c = config({ keys: { k1: { perDay: 10 } } });
    const [a, b] = [replica(c), replica(c)];
    const admitted = (r: QuotaCounter, n: number) => Array.from({ length: n }, () => r.admit('k1', 'bike', now)).filter((x) => x === undefined).length;
    expect(admitted(a, 4)).toBe(4);
    expect(admitted(b, 3)).toBe(3);
    await a.flush();
    await b.flush();
    // 7 used over the fleet: 3 more anywhere, then refused everywhere.
    expect(admitted(a, 2)).toBe(2);
    await a.flush();
    await b.flush();
    expect(admitted(b, 5)).toBe(1);
    // Until replica a reads b's last count it would admit one more (the bound: what one flush interval lets through).
    await b.flush();
    await a.flush();
    expect(a.admit('k1', 'bike', now)).toMatchObject({ scope: 'key', name: 'k1', period: 'day', limit: 10, wait: 3600 });
    expect(b.lastRefusal?.wait).toBe(3600);
    // Another key has no quota and is never counted.
    expect(a.admit('k2', 'bike', now)).toBeUndefined();
    expect((await stores.metadata.quotaUsage(0)).map((u) => [u.scope, u.name, u.count])).toEqual([['key', 'k1', 10]]);
    // The next UTC day starts from zero.
    now = T0 + 3_600_000;
    expect(admitted(a, 3)).toBe(3);
  });

  it('counts a request against the key and the deployment together, and neither when one refuses', async () => {
    const c = config({ keys: { k1: { perDay: 100 } }, deployments: { bike: { perDay: 2 } } });
    const a = replica(c);
    expect(a.admit('k1', 'bike', now)).toBeUndefined();
    expect(a.admit('k1', 'bike', now)).toBeUndefined();
    expect(a.admit('k1', 'bike', now)).toMatchObject({ scope: 'deployment', name: 'bike' });
    expect(a.admit('k1', 'taxi', now)).toBeUndefined();
    await a.flush();
    expect(a.list().quotas.map((q) => [q.scope, q.name, q.used.day])).toEqual([['deployment', 'bike', 2], ['key', 'k1', 3]]);
  });

  it('a monthly quota spans the days of the month and starts again on the 1st; the API\'s replaces the config\'s', async () => {
    const c = config({ deployment: { perMonth: 5 } });
    const a = replica(c);
    await stores.metadata.addQuotaUsage([{ scope: 'deployment', name: 'bike', day: Date.UTC(2026, 3, 2), count: 4 }]);
    await a.flush();
    expect(a.admit(undefined, 'bike', now)).toBeUndefined();
    const refused = a.admit(undefined, 'bike', now);
    expect(refused).toMatchObject({ period: 'month', limit: 5, wait: 3600 });
    await stores.metadata.saveQuota({ scope: 'deployment', name: 'bike', perMonth: 50, updatedAt: 1, updatedBy: 'ana' });
    await a.reload();
    expect(a.admit(undefined, 'bike', now)).toBeUndefined();
    expect(a.list().quotas).toEqual([expect.objectContaining({ scope: 'deployment', name: 'bike', perMonth: 50, source: 'api', updatedBy: 'ana' })]);
    now = Date.UTC(2026, 4, 1, 0, 1);
    await a.flush();
    expect(a.list().quotas[0]!.used).toEqual({ day: 0, month: 0 });
    // The counts of April were written into April.
    expect((await stores.metadata.quotaUsage(0)).map((u) => [new Date(u.day).toISOString().slice(0, 10), u.count])).toEqual([['2026-04-02', 4], ['2026-04-30', 2]]);
  });

  it('keeps counts a failed write could not store, still counted against the quota, and writes them at the next flush', async () => {
    const c = config({ keys: { k1: { perDay: 3 } } });
    let fail = true;
    const store = {
      listQuotas: () => stores.metadata.listQuotas(),
      quotaUsage: (s: number) => stores.metadata.quotaUsage(s),
      pruneQuotaUsage: (b: number) => stores.metadata.pruneQuotaUsage(b),
      addQuotaUsage: async (rows: Parameters<Stores['metadata']['addQuotaUsage']>[0]) => {
        if (fail) throw new Error('store down');
        return stores.metadata.addQuotaUsage(rows);
      },
    };
    const a = new QuotaCounter({ store, config: c, now: () => now });
    expect(a.admit('k1', undefined, now)).toBeUndefined();
    expect(a.admit('k1', undefined, now)).toBeUndefined();
    await expect(a.flush()).rejects.toThrow('store down');
    expect(a.admit('k1', undefined, now)).toBeUndefined();
    expect(a.admit('k1', undefined, now)).toMatchObject({ scope: 'key' });
    fail = false;
    await a.flush();
    expect((await stores.metadata.quotaUsage(0)).map((u) => u.count)).toEqual([3]);
  });

  it('refuses a quota that is not a whole number of requests, with what to send', () => {
    expect(() => checkQuota({ perDay: 0 })).toThrow('"perDay" must be a whole number of requests from 1 to 1e12, not 0');
    expect(() => checkQuota({ perMonth: 2.5 })).toThrow('"perMonth" must be a whole number');
    expect(() => checkQuota({})).toThrow('give "perDay", "perMonth" or both');
    expect(() => checkQuota({ perDay: 1, rate: 3 })).toThrow('unknown field "rate"');
    expect(() => parseConfig({ quotas: { key: {} } })).toThrow(/perDay, perMonth or both/);
    expect(() => parseConfig({ quotas: { deployments: { bike: { perDay: -1 } } } })).toThrow();
  });
});

describe('quotas on a real server', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer({ quotas: { flushMs: 60_000, deployments: { bike: { perDay: 3 } } } });
    const model = writeOnnx({ kind: 'linear', featureCount: 2, weights: Float32Array.from([1, 2]), bias: 0, metadata: {} });
    for (const name of ['bike', 'taxi']) {
      const res = await fetch(`${srv.url}/api/v1/models/${name}/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'x-warden-features': JSON.stringify([{ name: 'a' }, { name: 'b' }]) }, body: new Uint8Array(model) });
      expect(res.status).toBe(201);
    }
    await srv.warden.table.settled();
  }, 60_000);
  afterAll(async () => srv?.close());
  const predict = (name: string) => srv.json('POST', `/v1/models/${name}:predict`, { instances: [{ a: 1, b: 2 }] });

  it('answers 429 WARDEN_QUOTA_EXCEEDED past the quota, with Retry-After until the next UTC day', async () => {
    for (let i = 0; i < 3; i++) expect((await predict('bike')).status).toBe(200);
    const r = await predict('bike');
    expect(r.status).toBe(429);
    expect(r.body.code).toBe('WARDEN_QUOTA_EXCEEDED');
    expect(r.body.error).toContain('deployment bike has used its quota of 3 inference requests this UTC day');
    const untilMidnight = (DAY - (Date.now() % DAY)) / 1000;
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(untilMidnight - 5);
    expect(Number(r.headers.get('retry-after'))).toBeLessThanOrEqual(Math.ceil(untilMidnight) + 1);
    expect((await predict('taxi')).status).toBe(200);
    const list = await srv.json('GET', '/api/v1/quotas');
    expect(list.body.quotas).toEqual([expect.objectContaining({ scope: 'deployment', name: 'bike', perDay: 3, source: 'config', used: { day: 3, month: 3 } })]);
    expect(await (await fetch(`${srv.url}/metrics`)).text()).toContain('warden_quota_refused_total{scope="deployment"} 1');
  });

  it('a quota set by the API raises it at once; removed, the config\'s applies again; bad input is refused', async () => {
    const set = await srv.json('PUT', '/api/v1/quotas/deployment/bike', { perDay: 5 });
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    expect((await predict('bike')).status).toBe(200);
    expect((await srv.json('PUT', '/api/v1/quotas/deployment/nope', { perDay: 5 })).status).toBe(404);
    expect((await srv.json('PUT', '/api/v1/quotas/key/nokey', { perDay: 5 })).status).toBe(404);
    const badScope = await srv.json('PUT', '/api/v1/quotas/team/x', { perDay: 5 });
    expect([badScope.status, badScope.body.error]).toEqual([400, expect.stringContaining('quota scope "team" is unknown')]);
    const badBody = await srv.json('PUT', '/api/v1/quotas/deployment/bike', { perDay: -2 });
    expect([badBody.status, badBody.body.error]).toEqual([400, expect.stringContaining('"perDay" must be a whole number')]);
    expect((await srv.json('DELETE', '/api/v1/quotas/deployment/bike')).status).toBe(204);
    expect((await predict('bike')).status).toBe(429);
    expect((await srv.json('DELETE', '/api/v1/quotas/deployment/bike')).status).toBe(404);
  });
});
