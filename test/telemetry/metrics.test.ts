import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const promtool = spawnSync('promtool', ['--version']).status === 0;

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').at(-1));
  }
  return undefined;
}

describe('GET /metrics', () => {
  let srv: TestServer;
  let text: string;

  beforeAll(async () => {
    srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 } });
    await srv.warden.registry.push({
      model: 'busy',
      bytes: readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx')),
      aliases: ['champion'],
    });
    await srv.warden.table.settled();
    const good = { inputs: [{ name: 'input', shape: [2, 12], datatype: 'FP32', data: new Array(24).fill(0.25) }] };
    for (let i = 0; i < 5; i++) expect((await srv.json('POST', '/v2/models/busy/infer', good)).status).toBe(200);
    expect((await srv.json('POST', '/v2/models/busy/infer', { inputs: [] })).status).toBe(400);
    expect((await srv.json('POST', '/v2/models/nope-1/infer', good)).status).toBe(404);
    expect((await srv.json('POST', '/v2/models/nope-2/infer', good)).status).toBe(404);
    await srv.warden.log!.flush();
    const res = await fetch(`${srv.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    text = await res.text();
  });
  afterAll(() => srv.close());

  it('counts requests, rows and errors by model, version and outcome', () => {
    expect(sample(text, 'warden_inference_requests_total', { model: 'busy', version: '1', outcome: 'ok' })).toBe(5);
    expect(sample(text, 'warden_inference_rows_total', { model: 'busy', version: '1' })).toBe(10);
    expect(sample(text, 'warden_inference_requests_total', { model: 'busy', outcome: 'client_error' })).toBe(1);
    expect(sample(text, 'warden_inference_errors_total', { model: 'busy', code: 'WARDEN_BAD_REQUEST' })).toBe(1);
    // Unknown model names fold into one label value, so callers cannot grow cardinality.
    expect(sample(text, 'warden_inference_errors_total', { model: '_unknown', code: 'WARDEN_MODEL_NOT_FOUND' })).toBe(2);
    expect(text).not.toContain('nope-1');
  });

  it('exposes a latency histogram, model load time and prediction log state', () => {
    expect(sample(text, 'warden_inference_duration_seconds_count', { model: 'busy', outcome: 'ok' })).toBe(5);
    expect(sample(text, 'warden_inference_duration_seconds_bucket', { model: 'busy', outcome: 'ok', le: '+Inf' })).toBe(5);
    expect(sample(text, 'warden_model_load_duration_seconds_count', { model: 'busy', version: '1' })).toBe(1);
    expect(sample(text, 'warden_prediction_log_written_total', {})).toBe(8);
    expect(sample(text, 'warden_prediction_log_queue_depth', {})).toBe(0);
    expect(text).toContain('warden_prediction_log_dropped_total');
    expect(text).toContain('process_cpu_seconds_total');
  });

  it.skipIf(!promtool)('passes promtool check metrics', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'warden-metrics-'));
    const file = path.join(dir, 'metrics.txt');
    writeFileSync(file, text);
    const r = spawnSync('promtool', ['check', 'metrics'], { input: readFileSync(file) });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });
});
