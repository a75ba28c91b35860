/**
 * Delayed labels through the real server: caller keys on OIP and `:predict` requests, `POST /api/v1/labels`
 * (by request id + row and by key, duplicates, unmatched then joined, late, invalid items), the joined read per
 * model version, the counters, roles, and counters surviving a restart on the same data directory.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/security/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const modelBytes = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const FEATURES = (JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.expected.json'), 'utf8')) as { features: string[] }).features;
const DAY = 24 * 3600 * 1000;

/** Input row r of a request: twelve values, distinct per row so a joined row can be told apart. */
const inputRow = (r: number) => FEATURES.map((_, j) => (j === 3 ? r % 24 : 0.1 * ((r + j) % 10)));

async function pushModel(srv: TestServer, headers: Record<string, string> = {}): Promise<void> {
  const res = await fetch(`${srv.url}/api/v1/models/m/versions?alias=champion`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      'x-warden-features': JSON.stringify(FEATURES.map((name) => ({ name, datatype: 'FP32' }))),
      ...headers,
    },
    body: modelBytes,
  });
  expect(res.status, await res.text()).toBe(201);
}

interface InferOptions {
  requestId?: string;
  keys?: unknown;
  eventTime?: number;
  headers?: Record<string, string>;
}

/** OIP infer of `rows` rows; returns the response (status, body). */
function infer(srv: TestServer, rows: number, o: InferOptions = {}) {
  const parameters: Record<string, unknown> = {};
  if (o.keys !== undefined) parameters.keys = o.keys;
  if (o.eventTime !== undefined) parameters.event_time = o.eventTime;
  const body = {
    inputs: [{ name: 'input', shape: [rows, 12], datatype: 'FP32', data: Array.from({ length: rows }, (_, r) => inputRow(r)).flat() }],
    ...(Object.keys(parameters).length ? { parameters } : {}),
  };
  return srv.json('POST', '/v2/models/m/infer', body, { ...(o.requestId ? { 'x-request-id': o.requestId } : {}), ...o.headers });
}

/** Waits until every queued prediction is in events.db. */
const flushed = (srv: TestServer) => srv.warden.log!.flush();

const postLabels = (srv: TestServer, labels: unknown[], extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  srv.json('POST', '/api/v1/labels', { labels, ...extra }, headers);

async function labelled(srv: TestServer, query = ''): Promise<any[]> {
  const res = await srv.json('GET', `/api/v1/models/m/versions/1/labels${query}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.rows;
}

describe('labels API (auth off)', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer();
    await pushModel(srv);
  });
  afterAll(() => srv.close());

  it('labels a prediction by request id and returns the joined row with its inputs and outputs', async () => {
    const pred = await infer(srv, 1, { requestId: 'rid-1' });
    expect(pred.status).toBe(200);
    await flushed(srv);
    const res = await postLabels(srv, [{ requestId: 'rid-1', value: 1, source: 'human' }]);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ accepted: 1, duplicates: 0, unmatched: 0, late: 0, invalid: 0, errors: [] });
    const rows = (await labelled(srv)).filter((r) => r.requestId === 'rid-1');
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row).toMatchObject({ requestId: 'rid-1', row: 0, label: 1, source: 'human', late: false });
    expect(row.outputs.probability[0]).toBeCloseTo(pred.body.outputs[0].data[0], 6);
    expect(row.inputs.input).toHaveLength(12);
    expect(row.inputs.input[3]).toBe(0);
    // Aliases resolve to the version they point at.
    const viaAlias = await srv.json('GET', '/api/v1/models/m/versions/champion/labels');
    expect(viaAlias.body.version).toBe(1);
    expect(viaAlias.body.rows.map((r: any) => r.id)).toContain(row.id);
  });

  it('labels by caller key, on OIP and on :predict requests', async () => {
    expect((await infer(srv, 2, { keys: ['order-1', 'order-2'] })).status).toBe(200);
    const p = await srv.json('POST', '/v1/models/m:predict', {
      instances: [Object.fromEntries(FEATURES.map((f, j) => [f, inputRow(5)[j]]))],
      parameters: { keys: ['order-p'] },
    });
    expect(p.status, JSON.stringify(p.body)).toBe(200);
    await flushed(srv);
    const logged = await srv.json('GET', `/api/v1/predictions?requestId=${p.body.id}`);
    expect(logged.body.events[0].keys).toEqual(['order-p']);
    const res = await postLabels(srv, [
      { key: 'order-2', value: 0 },
      { key: 'order-p', value: true, source: 'model' },
    ]);
    expect(res.body).toMatchObject({ accepted: 2, unmatched: 0, invalid: 0 });
    const rows = await labelled(srv);
    const o2 = rows.find((r) => r.key === 'order-2');
    expect(o2).toMatchObject({ row: 1, label: 0 });
    expect(o2.inputs.input[3]).toBe(1);
    expect(rows.find((r) => r.key === 'order-p')).toMatchObject({ requestId: p.body.id, row: 0, label: true, source: 'model' });
  });

  it('labels rows of a multi-row request by index, and refuses a row beyond the request', async () => {
    const pred = await infer(srv, 3, { requestId: 'rid-multi' });
    await flushed(srv);
    const res = await postLabels(srv, [
      { requestId: 'rid-multi', row: 2, value: 'c' },
      { requestId: 'rid-multi', row: 0, value: 'a' },
      { requestId: 'rid-multi', row: 3, value: 'x' },
      { requestId: 'rid-multi', row: 1, value: 'b' },
    ]);
    expect(res.body).toMatchObject({ accepted: 3, invalid: 1, errors: [{ index: 2, error: expect.stringMatching(/row 3 is out of range.*3 rows/) }] });
    const rows = (await labelled(srv)).filter((r) => r.requestId === 'rid-multi').sort((a, b) => a.row - b.row);
    expect(rows.map((r) => r.label)).toEqual(['a', 'b', 'c']);
    for (const r of rows) {
      expect(r.outputs.probability[0]).toBeCloseTo(pred.body.outputs[0].data[r.row], 6);
      expect(r.inputs.input[3]).toBe(r.row);
    }
  });

  it('keeps the latest value of a row labelled twice and counts the duplicate', async () => {
    await infer(srv, 1, { requestId: 'rid-dup' });
    await flushed(srv);
    const now = Date.now();
    await postLabels(srv, [{ requestId: 'rid-dup', value: 1, ts: now - 2000 }]);
    const second = await postLabels(srv, [{ requestId: 'rid-dup', value: 2, ts: now - 1000 }]);
    expect(second.body).toMatchObject({ accepted: 1, duplicates: 1 });
    // An older correction arriving last does not replace the newer value; it is still counted.
    const stale = await postLabels(srv, [{ requestId: 'rid-dup', value: 0, ts: now - 5000 }]);
    expect(stale.body).toMatchObject({ accepted: 1, duplicates: 1 });
    const rows = (await labelled(srv)).filter((r) => r.requestId === 'rid-dup');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ label: 2, labelTs: now - 1000 });
  });

  it('keeps a label sent before its prediction as unmatched and joins it once the prediction arrives', async () => {
    const before = await srv.json('GET', '/api/v1/labels/stats');
    const res = await postLabels(srv, [
      { key: 'later-key', value: 7 },
      { requestId: 'rid-later', value: 8 },
    ]);
    expect(res.body).toMatchObject({ accepted: 2, unmatched: 2 });
    const waiting = await srv.json('GET', '/api/v1/labels/stats');
    expect(waiting.body.unmatched).toBe(before.body.unmatched + 2);
    expect((await labelled(srv)).filter((r) => r.key === 'later-key' || r.requestId === 'rid-later')).toEqual([]);

    await infer(srv, 1, { keys: ['later-key'] });
    await infer(srv, 1, { requestId: 'rid-later' });
    await flushed(srv);
    const rows = await labelled(srv);
    expect(rows.find((r) => r.key === 'later-key')).toMatchObject({ row: 0, label: 7 });
    expect(rows.find((r) => r.requestId === 'rid-later')).toMatchObject({ row: 0, label: 8 });
    const after = await srv.json('GET', '/api/v1/labels/stats?model=m&version=1');
    expect(after.body.unmatched).toBe(0);
    expect((await srv.json('GET', '/api/v1/labels/stats')).body.unmatched).toBe(before.body.unmatched);
  });

  it('counts a label more than 7 days after its prediction (parameters.event_time) as late', async () => {
    const old = Date.now() - 8 * DAY;
    expect((await infer(srv, 2, { requestId: 'rid-old', eventTime: old })).status).toBe(200);
    await flushed(srv);
    const res = await postLabels(srv, [
      { requestId: 'rid-old', row: 0, value: 1 },
      { requestId: 'rid-old', row: 1, value: 1, ts: old + DAY },
    ]);
    expect(res.body).toMatchObject({ accepted: 2, late: 1 });
    const rows = (await labelled(srv, `?since=${old}&until=${old + 1}`)).sort((a, b) => a.row - b.row);
    expect(rows.map((r) => [r.requestId, r.late])).toEqual([
      ['rid-old', true],
      ['rid-old', false],
    ]);
    // The threshold is a parameter of the call.
    await infer(srv, 1, { requestId: 'rid-old-2', eventTime: old });
    await flushed(srv);
    expect((await postLabels(srv, [{ requestId: 'rid-old-2', value: 1 }], { lateAfterMs: 30 * DAY })).body.late).toBe(0);
    expect((await postLabels(srv, [], { lateAfterMs: -1 })).status).toBe(400);
  });

  it('reports every invalid label with its index and stores the valid ones of the batch', async () => {
    await infer(srv, 1, { requestId: 'rid-inv' });
    await flushed(srv);
    const labels = [
      { requestId: 'rid-inv', value: 1 },
      { value: 1 },
      { requestId: 'rid-inv', key: 'k', value: 1 },
      { requestId: 'rid-inv', value: null },
      { requestId: 'rid-inv', value: [1] },
      { requestId: 'rid-inv', row: 1.5, value: 1 },
      { requestId: 'rid-inv', value: 1, source: 'oracle' },
      { requestId: 'rid-inv', value: 1, ts: '2024-01-01' },
      42,
    ];
    const res = await postLabels(srv, labels);
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(1);
    expect(res.body.invalid).toBe(8);
    expect(res.body.errors.map((e: any) => e.index)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(res.body.errors[0].error).toMatch(/requestId .*or key/);
    expect(res.body.errors[2].error).toMatch(/value is missing/);
    expect(res.body.errors[5].error).toMatch(/source must be one of human, system, model/);
  });

  it('refuses more than 10,000 labels in one call with 413, and takes 10,000', async () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `bulk-${i}`, value: i % 2 }));
    const over = await postLabels(srv, many(10_001));
    expect(over.status).toBe(413);
    expect(over.body.code).toBe('WARDEN_TOO_MANY_LABELS');
    expect(over.body.error).toMatch(/at most 10000 per call/);
    const started = Date.now();
    const full = await postLabels(srv, many(10_000));
    expect(full.status).toBe(200);
    expect(full.body).toMatchObject({ accepted: 10_000, unmatched: 10_000, invalid: 0 });
    // One call is one synchronous transaction on the serving thread: it has to stay short.
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('answers 400 for a malformed body', async () => {
    for (const body of [{}, { labels: 'x' }, [], 'labels']) {
      const res = await srv.json('POST', '/api/v1/labels', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect((await srv.json('GET', '/api/v1/models/m/versions/1/labels?limit=0')).status).toBe(400);
    expect((await srv.json('GET', '/api/v1/models/m/versions/nope/labels')).status).toBe(404);
  });

  it('pages the joined rows with after and nextCursor', async () => {
    const all = await labelled(srv, '?limit=1000');
    expect(all.length).toBeGreaterThan(4);
    const first = await srv.json('GET', '/api/v1/models/m/versions/1/labels?limit=3');
    const next = await srv.json('GET', `/api/v1/models/m/versions/1/labels?limit=1000&after=${first.body.nextCursor}`);
    expect([...first.body.rows, ...next.body.rows].map((r: any) => r.id)).toEqual(all.map((r) => r.id));
    const end = await srv.json('GET', `/api/v1/models/m/versions/1/labels?after=${all.at(-1).id}`);
    expect(end.body).toMatchObject({ rows: [], nextCursor: String(all.at(-1).id) });
  });

  it('refuses malformed parameters.keys with 400 and logs no keys', async () => {
    const cases: [number, unknown, RegExp][] = [
      [1, 'k', /array of strings/],
      [2, ['only-one'], /1 key for 2 rows/],
      [1, [''], /keys\[0\] must be a non-empty string/],
      [1, ['x'.repeat(257)], /at most 256 characters/],
      [1, [7], /keys\[0\]/],
      [2, ['same', 'same'], /repeats "same"/],
    ];
    for (const [rows, keys, message] of cases) {
      const res = await infer(srv, rows, { keys });
      expect(res.status, JSON.stringify(keys)).toBe(400);
      expect(res.body.code).toBe('WARDEN_BAD_REQUEST');
      expect(res.body.error).toMatch(message);
    }
    const p = await srv.json('POST', '/v1/models/m:predict', {
      instances: [Object.fromEntries(FEATURES.map((f) => [f, 0.5]))],
      parameters: { keys: ['a', 'b'] },
    });
    expect(p.status).toBe(400);
    expect(p.body.error).toMatch(/2 keys for 1 row/);
    // A 256-character key is fine.
    expect((await infer(srv, 1, { keys: ['k'.repeat(256)] })).status).toBe(200);
  });
});

describe('labels API roles (auth on)', () => {
  let srv: TestServer;
  const secrets: Record<string, string> = {};
  beforeAll(async () => {
    srv = await startTestServer({ auth: { required: true } });
    for (const role of ['viewer', 'predictor', 'deployer'] as const) secrets[role] = (await createApiKey(srv.warden.stores.metadata, role, role)).secret;
    await srv.warden.keys.reload();
    await pushModel(srv, { authorization: `Bearer ${secrets.deployer}` });
  });
  afterAll(() => srv.close());

  const as = (role: string): Record<string, string> => ({ authorization: `Bearer ${secrets[role]}` });

  it('takes labels from predictor and above; viewers read', async () => {
    const label = [{ key: 'auth-key', value: 1 }];
    expect((await postLabels(srv, label)).status).toBe(401);
    expect((await postLabels(srv, label, {}, as('viewer'))).status).toBe(403);
    expect((await postLabels(srv, label, {}, as('predictor'))).status).toBe(200);
    expect((await postLabels(srv, label, {}, as('deployer'))).body.duplicates).toBe(1);
    expect((await srv.json('GET', '/api/v1/labels/stats')).status).toBe(401);
    expect((await srv.json('GET', '/api/v1/labels/stats', undefined, as('viewer'))).body).toMatchObject({ total: 1, unmatched: 1, duplicates: 1 });
    expect((await srv.json('GET', '/api/v1/models/m/versions/1/labels')).status).toBe(401);
    expect((await srv.json('GET', '/api/v1/models/m/versions/1/labels', undefined, as('viewer'))).status).toBe(200);
  });
});

describe('label counters across a restart', () => {
  it('keeps labels and their counters when the server is closed and started again on the same data directory', async () => {
    const first = await startTestServer();
    const dataDir = first.dataDir;
    try {
      await pushModel(first);
      await infer(first, 2, { requestId: 'persist', keys: ['p0', 'p1'] });
      await first.warden.log!.flush();
      await postLabels(first, [
        { requestId: 'persist', row: 0, value: 1, source: 'human' },
        { key: 'p1', value: 0 },
        { key: 'p1', value: 1 },
        { key: 'not-yet', value: 1 },
      ]);
      const before = (await first.json('GET', '/api/v1/labels/stats')).body;
      expect(before).toMatchObject({ total: 3, matched: 2, unmatched: 1, duplicates: 1, bySource: { human: 1, system: 2, model: 0 } });
      // Close without removing the data directory (TestServer.close would).
      await first.warden.close();

      const second = await startTestServer({ storage: { dataDir } });
      try {
        expect((await second.json('GET', '/api/v1/labels/stats')).body).toEqual(before);
        expect((await second.json('GET', '/api/v1/labels/stats?model=m&version=1')).body).toMatchObject({ total: 2, matched: 2, unmatched: 0, duplicates: 1 });
        const rows = (await second.json('GET', '/api/v1/models/m/versions/1/labels')).body.rows;
        expect(rows.map((r: any) => [r.row, r.label])).toEqual([
          [0, 1],
          [1, 1],
        ]);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
