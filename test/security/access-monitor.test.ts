/**
 * Unusual access, replayed: each pattern against a key's own past (spike, sweep, refused burst, new address) is
 * detected and ends after the hold, steady traffic raises nothing, and on a real server with auth on the alerts fire
 * as WardenRefusedBurst, WardenKeyTrafficSpike and WardenKeyInputSweep with the key (or address) and a runbook.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessMonitor, createApiKey, inputFingerprint } from '../../src/security/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const MIN = 60_000;

function clocked(config: ConstructorParameters<typeof AccessMonitor>[0] = {}) {
  let t = Date.UTC(2026, 11, 1);
  const m = new AccessMonitor({ learnMs: 10 * MIN, ...config }, () => t);
  return { m, at: () => t, advance: (ms: number) => (t += ms) };
}

/** `perMinute` requests a minute for `minutes`, each input from `input(i)`. */
function replay(c: ReturnType<typeof clocked>, key: string, perMinute: number, minutes: number, input: (i: number) => string, address = '10.0.0.1', refused = false) {
  let i = 0;
  for (let mi = 0; mi < minutes; mi++) {
    for (let r = 0; r < perMinute; r++) {
      c.m.observe(key, address, refused, inputFingerprint(input(i++)));
      c.advance(Math.floor(MIN / perMinute));
    }
    c.advance(MIN - Math.floor(MIN / perMinute) * perMinute);
  }
}

const patterns = (m: AccessMonitor) => m.active().map((a) => `${a.subject} ${a.pattern}`).sort();

describe('access monitor (replayed patterns)', () => {
  it('steady traffic raises nothing', () => {
    const c = clocked();
    replay(c, 'key:steady', 40, 90, (i) => `{"instances":[{"hr":${i % 24}}]}`);
    expect(patterns(c.m)).toEqual([]);
  });

  it('a spike against the key\'s own baseline, not against a fixed number', () => {
    const c = clocked({ spikeMinPerMinute: 100 });
    replay(c, 'key:busy', 200, 30, (i) => `{"x":${i % 50}}`);
    replay(c, 'key:quiet', 20, 30, (i) => `{"x":${i % 50}}`);
    expect(patterns(c.m)).toEqual([]);
    // 150 a minute: a spike for the quiet key (7.5× its mean), ordinary for the busy one.
    replay(c, 'key:quiet', 150, 1, (i) => `{"x":${i % 50}}`);
    replay(c, 'key:busy', 150, 1, (i) => `{"x":${i % 50}}`);
    expect(patterns(c.m)).toEqual(['key:quiet spike']);
    // Detected as the minute's count passes the threshold (every 16th request past spikeMinPerMinute).
    expect(c.m.active()[0]!.detail).toMatch(/^1[0-4]\d requests in the last minute against a mean of 20\.0 a minute over the hour before$/);
    // It ends after the hold.
    c.advance(11 * MIN);
    expect(patterns(c.m)).toEqual([]);
  });

  it('a sweep: many distinct inputs at an ordinary rate', () => {
    const c = clocked({ sweepMinDistinct: 100 });
    replay(c, 'key:app', 40, 30, (i) => `{"user":${i % 5}}`);
    expect(patterns(c.m)).toEqual([]);
    replay(c, 'key:app', 40, 5, (i) => `{"user":${1000 + i}, "probe": ${i * 7}}`);
    expect(patterns(c.m)).toEqual(['key:app sweep']);
    const d = c.m.active()[0]!;
    // Detected once the estimate passes sweepMinDistinct (checked every 16 new bits): at most the 200 sent.
    expect(d.value).toBeGreaterThanOrEqual(100);
    expect(d.value).toBeLessThan(210);
    expect(d.detail).toMatch(/distinct inputs in the last 5 minutes against a mean of 5 per 5 minutes/);
  });

  it('a burst of refused requests, by key or by address; a new address once learning is over', () => {
    const c = clocked();
    replay(c, 'address:203.0.113.9', 19, 1, () => '', '203.0.113.9', true);
    expect(patterns(c.m)).toEqual([]);
    replay(c, 'address:203.0.113.9', 25, 1, () => '', '203.0.113.9', true);
    replay(c, 'key:k1', 30, 1, () => '{}', '10.0.0.1', true);
    expect(patterns(c.m)).toEqual(['address:203.0.113.9 refused', 'key:k1 refused']);
    c.advance(11 * MIN);
    // Within the learning period a second address is learned; after it, a third is reported.
    const d = clocked();
    d.m.observe('key:k2', '10.0.0.1', false, 1);
    d.advance(MIN);
    d.m.observe('key:k2', '10.0.0.2', false, 1);
    expect(patterns(d.m)).toEqual([]);
    d.advance(10 * MIN);
    d.m.observe('key:k2', '10.0.0.2', false, 1);
    d.m.observe('key:k2', '198.51.100.4', false, 1);
    expect(patterns(d.m)).toEqual(['key:k2 new-address']);
    expect(d.m.active()[0]!.detail).toBe('first use from 198.51.100.4 (known: 10.0.0.1, 10.0.0.2)');
  });

  it('bounds what it holds: past maxSubjects the least recently seen are forgotten', () => {
    const c = clocked({ maxSubjects: 100 });
    for (let i = 0; i < 1000; i++) c.m.observe(`address:10.1.${i >> 8}.${i & 255}`, undefined, true);
    replay(c, 'address:10.9.9.9', 30, 1, () => '', '10.9.9.9', true);
    expect(patterns(c.m)).toEqual(['address:10.9.9.9 refused']);
    expect((c.m as unknown as { subjects: Map<string, unknown> }).subjects.size).toBe(100);
  });
});

describe('access alerts on a real server', () => {
  let srv: TestServer;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    srv = await startTestServer({ auth: { required: true }, alerting: { evaluationIntervalMs: 100 }, accessAlerts: { spikeMinPerMinute: 40, sweepMinDistinct: 30, refusedPerMinute: 5 } });
    for (const name of ['steady', 'sweeper']) keys[name] = (await createApiKey(srv.warden.stores.metadata, name, 'predictor')).secret;
    const admin = (await createApiKey(srv.warden.stores.metadata, 'admin', 'admin')).secret;
    keys.admin = admin;
    await srv.warden.keys.reload();
    const { writeOnnx } = await import('../../src/lifecycle/trainer/onnx-writer.ts');
    const model = writeOnnx({ kind: 'linear', featureCount: 2, weights: Float32Array.from([1, 1]), bias: 0, metadata: {} });
    const res = await fetch(`${srv.url}/api/v1/models/m/versions?alias=champion`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/octet-stream', 'x-warden-features': '[{"name":"a"},{"name":"b"}]' }, body: new Uint8Array(model) });
    expect(res.status).toBe(201);
    await srv.warden.table.settled();
  }, 30_000);
  afterAll(() => srv?.close());

  const firing = async (): Promise<{ labels: Record<string, string>; annotations?: Record<string, string> }[]> => {
    for (let i = 0; i < 50; i++) {
      await srv.json('POST', '/api/v1/alerts/evaluate', {}, { authorization: `Bearer ${keys.admin}` });
      const a = (await srv.json('GET', '/api/v1/alerts?status=firing', undefined, { authorization: `Bearer ${keys.admin}` })).body.alerts;
      if (a.length) return a;
      await new Promise((r) => setTimeout(r, 50));
    }
    return [];
  };

  it('a refused burst from an address, a key sweeping distinct inputs (also a spike), each with its runbook', async () => {
    for (let i = 0; i < 6; i++) expect((await srv.json('POST', '/v1/models/m:predict', { instances: [{ a: 1, b: 2 }] }, { authorization: 'Bearer wdn_bad_guess' })).status).toBe(401);
    for (let i = 0; i < 45; i++) {
      const r = await srv.json('POST', '/v1/models/m:predict', { instances: [{ a: i, b: i * 3 }] }, { authorization: `Bearer ${keys.sweeper}` });
      expect(r.status).toBe(200);
    }
    for (let i = 0; i < 10; i++) await srv.json('POST', '/v1/models/m:predict', { instances: [{ a: 1, b: 2 }] }, { authorization: `Bearer ${keys.steady}` });
    let alerts = await firing();
    for (let i = 0; i < 20 && alerts.length < 3; i++) alerts = await firing();
    const names = alerts.map((a) => `${a.labels.alertname} ${a.labels.key ?? a.labels.address}`).sort();
    const sweeperId = keys.sweeper!.split('_')[1];
    expect(names).toEqual([`WardenKeyInputSweep ${sweeperId}`, `WardenKeyTrafficSpike ${sweeperId}`, 'WardenRefusedBurst 127.0.0.1']);
    expect(alerts.every((a) => /security-anomaly\.md/.test(JSON.stringify(a)))).toBe(true);
  });
});
