/**
 * Sensitive inputs on a real server: `temp` redacted and `user_id` hashed for one deployment. After served and refused
 * requests, the values sent are nowhere in the event store's files (as text or as float32 bytes), the server's logs
 * (at trace level), the exported spans or a training-set export; the log holds NaN and a keyed hash instead, equal
 * for equal values; the other features and another deployment are logged as sent.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeOnnx } from '../../src/lifecycle/trainer/onnx-writer.ts';
import { parseConfig } from '../../src/config.ts';
import { Privacy, scrubValues } from '../../src/security/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// Exact in float32, and unlikely anywhere else in the files.
const TEMP = 0.7890625;
const USER = 8765431;
const BAD_TEMP = 55.25;
// The same kind of values for a deployment without rules: the search below must find these (it can fail).
const PLAIN_TEMP = 0.6015625;
const PLAIN_USER = 7654321;
const HASH_KEY = 'test-hash-key-0123456789';

/** The value as little-endian float32 and float64 bytes (with its text, the ways a store file may hold a number). */
function binary(v: number): Buffer[] {
  const b4 = Buffer.alloc(4);
  b4.writeFloatLE(v);
  const b8 = Buffer.alloc(8);
  b8.writeDoubleLE(v);
  return [b4, b8];
}
const holds = (bytes: Buffer, v: number) => binary(v).some((b) => bytes.includes(b)) || bytes.includes(Buffer.from(String(v)));

describe('sensitive inputs: redaction and keyed hashing', () => {
  let srv: TestServer;
  let logs = '';
  let spans = '';
  let otlp: Server;

  beforeAll(async () => {
    otlp = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        spans += Buffer.concat(chunks).toString('utf8');
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => otlp.listen(0, '127.0.0.1', r));
    const sink = new Writable({
      write(chunk, _enc, done) {
        logs += String(chunk);
        done();
      },
    });
    srv = await startTestServer(
      {
        logLevel: 'trace',
        predictionLog: { flushIntervalMs: 20 },
        tracing: { enabled: true, otlpEndpoint: `http://127.0.0.1:${(otlp.address() as AddressInfo).port}/v1/traces`, scheduledDelayMs: 20 },
        privacy: { hashKey: HASH_KEY, deployments: { users: { redact: ['temp'], hash: ['user_id'] } } },
      },
      { logger: pino({ level: 'trace' }, sink) },
    );
    const features = JSON.stringify([{ name: 'hr' }, { name: 'temp', max: 1 }, { name: 'user_id' }]);
    for (const name of ['users', 'plain']) {
      const model = writeOnnx({ kind: 'linear', featureCount: 3, weights: Float32Array.from([1, 2, 0]), bias: 0, metadata: {} });
      const res = await fetch(`${srv.url}/api/v1/models/${name}/versions?alias=champion`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'x-warden-features': features }, body: new Uint8Array(model) });
      expect(res.status, await res.text()).toBe(201);
    }
    await srv.warden.table.settled();
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
    await new Promise<void>((r) => otlp?.close(() => r()));
  });

  it('serves with the values sent, and logs a missing value and a keyed hash in their place', async () => {
    const instances = [{ hr: 3, temp: TEMP, user_id: USER }, { hr: 4, temp: TEMP, user_id: USER }, { hr: 5, temp: 0.5, user_id: 42 }];
    const res = await srv.json('POST', '/v1/models/users:predict', { instances, parameters: { keys: ['a', 'b', 'c'] } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    // The model got the real temperature: 1·hr + 2·temp.
    expect(res.body.predictions[0]).toBeCloseTo(3 + 2 * TEMP, 5);
    const oip = await srv.json('POST', '/v2/models/users/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3], data: [6, TEMP, USER] }] });
    expect(oip.status, JSON.stringify(oip.body)).toBe(200);
    const plain = await srv.json('POST', '/v1/models/plain:predict', { instances: [{ hr: 1, temp: PLAIN_TEMP, user_id: PLAIN_USER }] });
    expect(plain.status).toBe(200);
    const refused = await srv.json('POST', '/v1/models/users:predict', { instances: [{ hr: 1, temp: BAD_TEMP, user_id: USER }] });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('instances[0].temp = [redacted] is above the allowed maximum 1');
    await srv.json('POST', '/api/v1/monitoring/flush', {});
    await srv.warden.log?.drain();

    const events = await srv.warden.stores.events.queryPredictions({ model: 'users', limit: 10 });
    const ok = events.filter((e) => e.status === 'ok');
    expect(ok).toHaveLength(2);
    const byRows = ok.map((e) => e.inputs as { data: number[] | Float32Array; shape: number[] }[]);
    const predictRows = Array.from(byRows.find((t) => t[0]!.shape[0] === 3)![0]!.data);
    const hash = new Privacy({ hashKey: HASH_KEY, deployments: { users: { redact: [], hash: ['user_id'] } } }).hash(USER);
    expect(predictRows.slice(0, 3)).toEqual([3, null, hash]);
    // Equal values hash equal (joins and counts still work); other values differently.
    expect(predictRows[5]).toBe(hash);
    expect(predictRows[8]).not.toBe(hash);
    expect(Array.from(byRows.find((t) => t[0]!.shape[0] === 1)![0]!.data)).toEqual([6, null, hash]);
    const error = events.find((e) => e.status === 'error')!;
    expect(error.inputs).toEqual([{ hr: 1, temp: '[redacted]', user_id: new Privacy({ hashKey: HASH_KEY, deployments: {} }).hash(USER) }]);
    expect(error.error).toContain('temp = [redacted] is above');
    const plainEvent = (await srv.warden.stores.events.queryPredictions({ model: 'plain', limit: 1 }))[0]!;
    expect(Array.from((plainEvent.inputs as { data: Float32Array }[])[0]!.data)).toEqual([1, PLAIN_TEMP, PLAIN_USER]);
  });

  it('the values sent are in no store file, log line, span or export', async () => {
    // Spans are exported every 20 ms.
    await new Promise((r) => setTimeout(r, 300));
    expect(spans.length).toBeGreaterThan(0);
    expect(logs.length).toBeGreaterThan(0);
    const labels = await srv.json('POST', '/api/v1/labels', { labels: [{ key: 'a', value: 1 }, { key: 'b', value: 0 }, { key: 'c', value: 1 }] });
    expect(labels.status, JSON.stringify(labels.body)).toBeLessThan(300);
    const exported = await fetch(`${srv.url}/api/v1/datasets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'users', sources: ['human', 'system', 'model'] }) });
    const exportText = await exported.text();
    expect(exported.status, exportText).toBe(200);
    // The training set has the three labelled rows, user_id as its keyed hash, temp empty.
    const hash = new Privacy({ hashKey: HASH_KEY, deployments: {} }).hash(USER);
    expect(exportText.split('\n').filter((l) => l.includes(String(hash)))).toHaveLength(2);
    const files = readdirSync(srv.dataDir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name));
    expect(files.some((f) => /events/.test(f))).toBe(true);
    for (const text of [String(TEMP), String(USER), String(BAD_TEMP)]) {
      expect(logs, `log lines hold ${text}`).not.toContain(text);
      expect(spans, `spans hold ${text}`).not.toContain(text);
      expect(exportText).not.toContain(text);
    }
    const all = files.map((f) => readFileSync(f));
    expect(all.some((b) => holds(b, PLAIN_TEMP)) && all.some((b) => holds(b, PLAIN_USER))).toBe(true);
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const v of [TEMP, USER, BAD_TEMP]) {
        expect(holds(bytes, v), `${f} holds ${v} as text or a binary number`).toBe(false);
      }
    }
  });

  it('GET /api/v1/privacy shows the rules, names a feature the model does not have, and never the key', async () => {
    const res = await srv.json('GET', '/api/v1/privacy');
    expect(res.body).toEqual({ deployments: [{ deployment: 'users', redact: ['temp'], hash: ['user_id'], unknown: [] }], hashKeySet: true });
    expect(JSON.stringify(res.body)).not.toContain(HASH_KEY);
    const p = new Privacy({ hashKey: HASH_KEY, deployments: { users: { redact: ['tmp'], hash: [] } } });
    expect(p.describe(() => ({ inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 1] }], outputs: [], features: [{ name: 'temp', datatype: 'FP32' }] }))[0]!.unknown).toEqual(['tmp']);
  });

  it('refuses config it cannot honour, and scrubs the values a message quotes', () => {
    expect(() => parseConfig({ privacy: { deployments: { d: { hash: ['email'] } } } })).toThrow(/hash rules need privacy.hashKey/);
    expect(() => parseConfig({ privacy: { hashKey: 'short', deployments: {} } })).toThrow(/at least 16 characters/);
    expect(() => parseConfig({ privacy: { hashKey: HASH_KEY, deployments: { d: { redact: ['a'], hash: ['a'] } } } })).toThrow(/a is both redacted and hashed/);
    expect(scrubValues('instances[1].email is string "ana@example.com"; it needs a number')).toBe('instances[1].email is [redacted]; it needs a number');
    expect(scrubValues('input input: element 4 = 1e9 is outside INT32 range [-2147483648, 2147483647]')).toBe('input input: element 4 = [redacted] is outside INT32 range [-2147483648, 2147483647]');
    expect(scrubValues('feature x of view v for entity user_id="u-17" is missing')).toBe('feature x of view v for entity user_id=[redacted] is missing');
  });
});
