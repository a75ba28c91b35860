import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

// Newest-first pages of the prediction log: what a dashboard needs for "the latest failures" on a big log.
let srv: TestServer;
const row = (i: number) => [1, 0, 1, i % 24, 0, 3, 1, 1, 0.5, 0.5, 0.5, 0.1];

beforeAll(async () => {
  srv = await startTestServer();
  const onnx = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
  expect((await fetch(`${srv.url}/api/v1/models/bike/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: onnx })).status).toBe(201);
  for (let i = 0; i < 30; i++) {
    // Every third request is refused (11 columns instead of 12), the others are served.
    const data = i % 3 === 0 ? row(i).slice(1) : row(i);
    await srv.json('POST', '/v2/models/bike/infer', { id: `r${i}`, inputs: [{ name: 'input', shape: [1, data.length], datatype: 'FP32', data }] }, { 'x-request-id': `req-${String(i).padStart(2, '0')}` });
  }
  await srv.json('POST', '/api/v1/monitoring/flush');
});
afterAll(async () => srv?.close());

describe('GET /api/v1/predictions order=newest', () => {
  it('pages the newest failures first with before=<nextCursor>, to the end', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: { status: number; body: { events: { seq: number; requestId: string; status: string }[]; nextCursor: string | null } } = await srv.json('GET', `/api/v1/predictions?model=bike&status=error&order=newest&limit=4${cursor ? `&before=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      const seqs = r.body.events.map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
      for (const e of r.body.events) {
        expect(e.status).toBe('error');
        seen.push(e.requestId);
      }
      cursor = r.body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    const expected = Array.from({ length: 10 }, (_, k) => `req-${String(27 - 3 * k).padStart(2, '0')}`);
    expect(seen).toEqual(expected);
  });

  it('oldest first stays the default; status=shadow is accepted; mixed cursors are refused', async () => {
    const r = await srv.json('GET', '/api/v1/predictions?model=bike&limit=2');
    expect(r.body.events.map((e: { requestId: string }) => e.requestId)).toEqual(['req-00', 'req-01']);
    expect((await srv.json('GET', '/api/v1/predictions?model=bike&status=shadow')).body.events).toEqual([]);
    const bad = await srv.json('GET', '/api/v1/predictions?order=newest&after=3');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/before=/);
    expect((await srv.json('GET', '/api/v1/predictions?before=3')).status).toBe(400);
    expect((await srv.json('GET', '/api/v1/predictions?order=sideways')).body).toMatchObject({ code: 'WARDEN_BAD_REQUEST' });
  });
});
