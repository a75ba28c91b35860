/**
 * The shadow thread: the candidate's own onnxruntime session on a worker thread answers exactly what the version's
 * session on the serving thread does; the model's bytes cross once; a thread that dies is started again; a closed
 * thread refuses work.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecodedTensor } from '../../src/quality/index.ts';
import { ShadowThread, type ModelTable } from '../../src/serving/index.ts';
import type { ModelVersionRecord } from '../../src/storage/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

let srv: TestServer;
let table: ModelTable;

const rows = (n: number): DecodedTensor => {
  const data = new Float32Array(n * 12);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7) % 17) / 17;
  return { name: 'input', datatype: 'FP32', dims: [n, 12], data } as DecodedTensor;
};

beforeAll(async () => {
  // The server's own shadow runs on the serving thread here: only the thread under test is a worker.
  srv = await startTestServer({ serving: { shadowThread: false } } as never);
  const onnx = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
  const res = await fetch(`${srv.url}/api/v1/models/bike/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: onnx });
  expect(res.status).toBe(201);
  expect((await srv.json('GET', '/v2/models/bike/ready')).status).toBe(200);
  table = srv.warden.table;
});
afterAll(async () => srv?.close());

describe('shadow thread', () => {
  it('answers what the serving thread\'s session does, sends the model once, and starts again after dying', async () => {
    const lv = table.peek('bike', 1)!;
    let reads = 0;
    const thread = new ShadowThread({
      readArtifact: async (record: ModelVersionRecord) => {
        reads++;
        return srv.warden.registry.readArtifact(record);
      },
      logger: pino({ level: 'silent' }),
      nice: 10,
    });
    try {
      // Warmed ahead of the first wave: the thread starts and loads the session, and the runs send no model again.
      await thread.warm(lv);
      expect(reads).toBe(1);
      for (const n of [1, 7, 256]) {
        const want = await lv.runtime.run([rows(n)], undefined);
        const got = await thread.run(lv, [rows(n)], undefined);
        expect(got.outputs).toEqual(want);
        expect(got.outputs[0]!.shape).toEqual([n, 1]);
        // The model run's own time, measured on the thread.
        expect(got.runMs).toBeGreaterThan(0);
        expect(got.runMs).toBeLessThan(5000);
      }
      expect(reads).toBe(1);
      // Runs in flight at once all come back, each with its own rows.
      const many = await Promise.all([3, 1, 4, 1, 5].map((n) => thread.run(lv, [rows(n)], undefined)));
      expect(many.map((o) => o.outputs[0]!.shape[0])).toEqual([3, 1, 4, 1, 5]);
      // A bad input fails that run only, with onnxruntime's reason.
      await expect(thread.run(lv, [{ ...rows(1), dims: [1, 11], data: new Float32Array(11) } as DecodedTensor], undefined)).rejects.toThrow(/model run failed/);
      // A thread that dies: the next run starts another and sends it the model again.
      // The private worker, reached to kill it as a crash would.
      await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      expect((await thread.run(lv, [rows(2)], undefined)).outputs[0]!.shape).toEqual([2, 1]);
      expect(reads).toBe(2);
    } finally {
      await thread.close();
    }
    await expect(thread.run(lv, [rows(1)], undefined)).rejects.toThrow(/closed/);
  }, 60_000);

  it('a warm-up that cannot load the candidate logs why and resolves; the first wave then fails its copies and logs them', async () => {
    const lv = table.peek('bike', 1)!;
    const errors: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line).msg) });
    const thread = new ShadowThread({ readArtifact: async () => Promise.reject(new Error('artifact store unreachable')), logger });
    try {
      await expect(thread.warm(lv)).resolves.toBeUndefined();
      expect(errors.join('\n')).toMatch(/could not load the candidate/);
      const job = { model: 'bike', version: 1, inputs: [rows(2)], rows: 2, rowDims: [[12]], widths: [12], requestIds: ['a', 'b'], ts: [1, 2], rowCounts: [1, 1], keys: [undefined, undefined], outputNames: undefined, stackable: true };
      const r = await thread.runWave(lv, job, undefined, false);
      expect(r).toMatchObject({ ok: 0, failed: 2 });
      expect(r.events.map((e) => [e.requestId, e.status, e.error])).toEqual([
        ['a', 'shadow', 'WARDEN_INFERENCE_FAILED: artifact store unreachable'],
        ['b', 'shadow', 'WARDEN_INFERENCE_FAILED: artifact store unreachable'],
      ]);
    } finally {
      await thread.close();
    }
  }, 60_000);
});
