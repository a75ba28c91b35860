/**
 * Bounding a refused request's log entry costs next to nothing on the event loop, even for a body of 700,000 keys:
 * the excerpt is cut from the body's text, and the size check stops at its budget. Walking the value used to add
 * about 2 s per such request (found by review).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturesDir, startTestServer } from '../helpers/server.ts';

const logreg = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const wide = `{"instances":{${Array.from({ length: 700_000 }, (_, i) => `"k${i}":0`).join(',')}}}`; // 8.29 MB: under the default 8 MiB body limit

async function timeRefused(logEnabled: boolean): Promise<{ status: number; ms: number }> {
  const srv = await startTestServer({ predictionLog: { enabled: logEnabled } });
  try {
    await srv.warden.registry.push({ model: 'm', bytes: logreg, features: Array.from({ length: 12 }, (_, i) => ({ name: `f${i}`, datatype: 'FP32' })) });
    await srv.warden.table.settled();
    const t0 = performance.now();
    const p = fetch(`${srv.url}/v1/models/m:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: wide });
    const res = await p;
    await res.text();
    return { status: res.status, ms: Math.round(performance.now() - t0) };
  } finally {
    await srv.close();
  }
}

describe('cost of logging a refused wide body', () => {
  it('refused {"instances": {700k keys}}: with the prediction log on vs off', async () => {
    const off = await timeRefused(false);
    const on = await timeRefused(true);
    expect(on.status).toBe(400);
    expect(on.ms).toBeLessThan(off.ms * 1.5);
  });
});
