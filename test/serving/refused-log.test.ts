/**
 * Refused requests are logged, but not whole when they are large: a bounded excerpt of their inputs is kept, so a
 * caller sending megabytes of garbage cannot grow events.db by megabytes (40 refused 7.7 MB bodies added 322 MB).
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFUSED_EXCERPT_CHARS, REFUSED_INPUTS_MAX_CHARS } from '../../src/serving/inference.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const modelBytes = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));

function storeBytes(dataDir: string): number {
  let total = 0;
  for (const f of ['events.db', 'events.db-wal']) {
    try {
      total += statSync(path.join(dataDir, f)).size;
    } catch {
      /* no WAL yet */
    }
  }
  return total;
}

describe('refused requests in the prediction log', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 } });
    await srv.warden.registry.push({ model: 'm', bytes: modelBytes });
    await srv.warden.table.settled();
  });
  afterAll(() => srv.close());

  it('keeps a small refused request whole (monitoring profiles it) and a large one as a bounded excerpt', async () => {
    const small = { inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: [1, 2, 3] }] };
    expect((await srv.json('POST', '/v2/models/m/infer', small, { 'x-request-id': 'small-1' })).status).toBe(400);

    const before = storeBytes(srv.dataDir);
    // About 2.4 MB each: a wrong shape for 400,000 numbers.
    const big = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: Array.from({ length: 400_000 }, (_, i) => i / 7) }] });
    expect(big.length).toBeGreaterThan(2_000_000);
    for (let i = 0; i < 8; i++) {
      const res = await srv.json('POST', '/v2/models/m/infer', big, { 'x-request-id': `big-${i}` });
      expect(res.status).toBe(400);
    }
    await srv.warden.log!.flush();
    const added = storeBytes(srv.dataDir) - before;
    // 8 × 2.4 MB were refused; what was stored is a few KiB each (pages and WAL frames included).
    expect(added).toBeLessThan(1024 * 1024);

    const stored = await srv.json('GET', '/api/v1/predictions?model=m&status=error&limit=100');
    const byId = new Map<string, { inputs: unknown; error: string }>(stored.body.events.map((e: { requestId: string }) => [e.requestId, e]));
    expect(byId.get('small-1')!.inputs).toEqual(small.inputs);
    const excerpt = byId.get('big-3')!.inputs as string;
    expect(typeof excerpt).toBe('string');
    expect(excerpt).toMatch(new RegExp(`^\\[excerpt: refused request over ${REFUSED_INPUTS_MAX_CHARS} characters of JSON .* the first ${REFUSED_EXCERPT_CHARS} of its body's ${big.length} characters follow\\]`));
    // The excerpt is the start of the body as sent.
    const start = excerpt.slice(excerpt.indexOf('] ') + 2);
    expect(start.length).toBe(REFUSED_EXCERPT_CHARS);
    expect(big.startsWith(start)).toBe(true);
    expect(byId.get('big-3')!.error).toMatch(/^WARDEN_INVALID_INPUT/);
  });

  it('keeps an excerpt of a value nested too deep, without overflowing the stack', async () => {
    const deep = `{"inputs":${'['.repeat(5000)}1${']'.repeat(5000)}}`;
    expect((await srv.json('POST', '/v2/models/m/infer', deep, { 'x-request-id': 'deep-1' })).status).toBe(400);
    await srv.warden.log!.flush();
    const stored = await srv.json('GET', '/api/v1/predictions?requestId=deep-1');
    expect(stored.body.events[0].inputs).toMatch(/^\[excerpt: .* nested deeper than 64 levels; the first 4096 of its body's 10012 characters follow\] \{"inputs":\[\[\[\[/);
  });
});
