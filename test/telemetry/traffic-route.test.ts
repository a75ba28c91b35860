import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturesDir, startTestServer, withCrashingRuntime, type TestServer } from '../helpers/server.ts';

const good = (rows: number) => ({ inputs: [{ name: 'input', shape: [rows, 12], datatype: 'FP32', data: new Array(rows * 12).fill(0.25) }] });

describe('GET /api/v1/deployments/{name}/traffic', () => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startTestServer({ slo: { costPerCpuHour: 2 } });
    await srv.warden.registry.push({ model: 'busy', bytes: readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx')) });
    await srv.warden.table.settled();
  });
  afterAll(() => srv.close());

  it('counts ok, 4xx and 5xx requests, rows and error codes', async () => {
    for (let i = 0; i < 7; i++) expect((await srv.json('POST', '/v2/models/busy/infer', good(3))).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await srv.json('POST', '/v2/models/busy/infer', { inputs: [] })).status).toBe(400);
    await withCrashingRuntime(srv, 'busy', 1, async () => {
      expect((await srv.json('POST', '/v2/models/busy/infer', good(1))).status).toBe(500);
    });
    const r = await srv.json('GET', '/api/v1/deployments/busy/traffic');
    expect(r.status).toBe(200);
    const t = r.body.totals;
    expect(t).toMatchObject({ requests: 10, ok: 7, clientErrors: 2, serverErrors: 1, shadow: 0, rows: 21 });
    expect(t.availability).toBeCloseTo(7 / 8);
    expect(t.errorRate).toBeCloseTo(3 / 10);
    expect(t.errors[0]).toEqual({ code: 'WARDEN_BAD_REQUEST', count: 2 });
    expect(r.body.stepMs).toBe(60_000);
    expect(r.body.costPerCpuHour).toBe(2);
    expect(r.body.versions).toEqual([{ version: 1, requests: 10 }]);
    expect(r.body.points.reduce((s: number, p: { requests: number }) => s + p.requests, 0)).toBe(10);
    console.log(JSON.stringify(r.body, null, 1).slice(0, 1500));
  });
});
