/**
 * A shadow rollout under concurrent traffic on a real server: the candidate answers the copies in waves, each wave is
 * one row of the prediction log, and the API still lists one event per copy: under its own request id, with the rows
 * of the stacked outputs that belong to it (equal to the candidate answering that request alone), found by request
 * id inside its wave.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { bikeInstance, until } from '../helpers/rollouts.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const N = 60;
/** Request i's instances: every fifth request has two rows, so the copies of a wave stack unevenly. */
const instancesOf = (i: number) => (i % 5 === 0 ? [bikeInstance(2 * i), bikeInstance(2 * i + 1)] : [bikeInstance(2 * i)]);

describe('shadow waves over HTTP', () => {
  let srv: TestServer;

  beforeAll(async () => {
    // With the shadow thread: the copies cross to it and back, and are logged as waves all the same.
    srv = await startTestServer({ predictionLog: { flushIntervalMs: 50 }, serving: { shadowThread: true } } as never);
    for (const seed of [1, 2]) {
      const res = await fetch(`${srv.url}/api/v1/models/bike/versions`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.from((await train({ ...bikeSharingDemoOptions('linear'), seed })).onnx),
      });
      expect(res.status).toBe(201);
    }
    await srv.warden.table.settled();
    expect((await srv.json('POST', '/api/v1/deployments/bike/deploy', { version: 1 })).status).toBe(200);
    expect((await srv.json('POST', '/api/v1/deployments/bike/deploy', { version: 2, strategy: 'shadow' })).status).toBe(200);
  }, 120_000);

  afterAll(async () => srv?.close());

  it('logs the copies of one run as one row and lists each copy, with its own rows, by request id', async () => {
    const answers = await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const r = await srv.json('POST', '/v1/models/bike:predict', { instances: instancesOf(i) }, { 'x-request-id': `wave-${i}` });
        expect(r.status).toBe(200);
        expect(r.body.model_version).toBe('1');
        return r.body.predictions as number[];
      }),
    );
    expect(answers.every((a, i) => a.length === instancesOf(i).length)).toBe(true);
    const shadows = await until(async () => {
      const page = (await srv.json('GET', '/api/v1/predictions?model=bike&status=shadow&limit=1000')).body.events as { requestId: string; seq: number; version: number; outputs: { shape: number[]; data: number[] }[] }[];
      return page.length >= N ? page : undefined;
    }, 20_000, 'every shadow copy logged');
    expect(shadows).toHaveLength(N);
    expect(new Set(shadows.map((s) => s.requestId))).toEqual(new Set(Array.from({ length: N }, (_, i) => `wave-${i}`)));
    // Fewer rows than copies: the waves were logged whole.
    await srv.warden.log?.flush();
    const db = new Database(path.join(srv.dataDir, 'events.db'), { readonly: true });
    try {
      const rows = db.prepare(`SELECT COUNT(*) AS n, SUM(COALESCE(copies, 1)) AS copies FROM predictions WHERE status = 'shadow'`).get() as { n: number; copies: number };
      expect(rows.copies).toBe(N);
      expect(rows.n).toBeLessThan(N);
    } finally {
      db.close();
    }
    expect(new Set(shadows.map((s) => s.seq)).size).toBeLessThan(N);
    for (const i of [0, 1, 5, 17, N - 1]) {
      const id = `wave-${i}`;
      const copy = shadows.find((s) => s.requestId === id)!;
      expect(copy.version).toBe(2);
      // The copy's rows of the stacked outputs are v2's answer to this request alone.
      const direct = await srv.json('POST', '/v1/models/bike/versions/2:predict', { instances: instancesOf(i) });
      expect(direct.status, JSON.stringify(direct.body)).toBe(200);
      expect(copy.outputs[0]!.shape[0]).toBe(instancesOf(i).length);
      const want = (direct.body.predictions as (number | number[])[]).flat();
      copy.outputs[0]!.data.forEach((v, k) => expect(v).toBeCloseTo(want[k]!, 4));
      // By request id: the stable answer and the shadow copy, whichever copy of its wave it was.
      const byId = (await srv.json('GET', `/api/v1/predictions?requestId=${id}`)).body.events as { status: string; requestId: string }[];
      expect(byId.map((e) => e.status).sort()).toEqual(['ok', 'shadow']);
      expect(byId.every((e) => e.requestId === id)).toBe(true);
    }
  }, 60_000);
});
