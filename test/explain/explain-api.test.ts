/**
 * `POST /api/v1/models/{name}/explain` over real HTTP: the 60-tree bike GBR pushed with its feature names, a
 * reference of 2011 rows registered, then rows explained against the reference sample. The answer must be additive
 * to 1e-9, agree with onnxruntime's answer for the row to float32 rounding, and equal TreeSHAP run directly on the
 * same background; bad requests get the API's error shape.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTreeEnsemble, treeShap } from '../../src/explain/index.ts';
import { fixturesDir, repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';

const GBR = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
const probe = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.expected.json'), 'utf8')) as { features: string[]; input: number[][] };
const FEATURES = probe.features;

function year2011(n: number): Record<string, number>[] {
  const lines = readFileSync(path.join(repoRoot, 'data', 'bike-sharing', 'hour.csv'), 'utf8').trim().split('\n');
  const header = lines[0]!.split(',');
  return lines.slice(1, 1 + n).map((l) => {
    const cells = l.split(',');
    return Object.fromEntries(FEATURES.map((f) => [f, Number(cells[header.indexOf(f)])]));
  });
}

describe('the explain API', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer();
    const push = await fetch(`${srv.url}/api/v1/models/gbr/versions?alias=champion`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'x-warden-features': JSON.stringify(FEATURES.map((name) => ({ name }))) },
      body: GBR,
    });
    expect(push.status, await push.text()).toBe(201);
    const ref = await srv.json('PUT', '/api/v1/models/gbr/versions/1/reference', { rows: year2011(1500) });
    expect(ref.status, JSON.stringify(ref.body)).toBe(201);
    await srv.warden.table.settled();
  }, 60_000);
  afterAll(() => srv?.close());

  it('explains named rows against the reference sample: additive, the served answer, TreeSHAP on the same rows', async () => {
    const rows = probe.input.slice(0, 5).map((r) => Object.fromEntries(FEATURES.map((f, j) => [f, r[j]])));
    const res = await srv.json('POST', '/api/v1/models/gbr/explain', { instances: rows, background: 50 });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const body = res.body as { version: number; method: string; output: string; features: string[]; expected: number; background: { rows: number }; explanations: { shap: Record<string, number>; value: number }[] };
    expect(body).toMatchObject({ version: 1, method: 'tree-shap-interventional', output: 'variable', features: FEATURES, background: { rows: 50 } });
    const served = (await srv.json('POST', '/v1/models/gbr:predict', { instances: rows })).body as { predictions: number[] };
    body.explanations.forEach((e, i) => {
      const sum = FEATURES.reduce((a, f) => a + e.shap[f]!, 0);
      expect(Math.abs(sum + body.expected - e.value)).toBeLessThan(1e-9);
      expect(Math.abs(e.value - served.predictions[i]!)).toBeLessThan(1e-3);
    });
    // The same numbers as TreeSHAP on the background the server says it used: its reference sample's first 50 rows.
    const refRecord = (await srv.warden.stores.metadata.getReference('gbr', 1))!;
    const cols = (refRecord.schema as { columns: { name: string }[] }).columns.map((c) => c.name);
    const bg = (refRecord.profile as { sample: (number | string)[][] }).sample.slice(0, 50).map((cells) => Float32Array.from(FEATURES.map((f) => Number(cells[cols.indexOf(f)]))));
    const direct = treeShap(readTreeEnsemble(GBR), Float32Array.from(probe.input[2]!), bg);
    FEATURES.forEach((f, j) => expect(body.explanations[2]!.shap[f]).toBeCloseTo(direct.shap[j]!, 12));
  });

  it('takes an OIP tensor too, defaults to 100 background rows, and the stable version', async () => {
    const res = await srv.json('POST', '/api/v1/models/gbr/explain', { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 12], data: probe.input.slice(0, 2).flat() }] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ version: 1, background: { rows: 100 } });
    expect((res.body as { explanations: unknown[] }).explanations).toHaveLength(2);
  });

  it('refuses what it cannot explain, in the API error shape', async () => {
    const bad = async (p: string, body: unknown, status: number, code: string, msg: RegExp) => {
      const res = await srv.json('POST', p, body);
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      expect(res.body).toMatchObject({ code });
      expect((res.body as { error: string }).error).toMatch(msg);
    };
    const one = [Object.fromEntries(FEATURES.map((f, j) => [f, probe.input[0]![j]]))];
    await bad('/api/v1/models/ghost/explain', { instances: one }, 404, 'WARDEN_MODEL_NOT_FOUND', /ghost/);
    await bad('/api/v1/models/gbr/explain', { instances: one, inputs: [] }, 400, 'WARDEN_BAD_REQUEST', /either instances/);
    await bad('/api/v1/models/gbr/explain', { instances: one, colour: 1 }, 400, 'WARDEN_BAD_REQUEST', /unknown field colour/);
    await bad('/api/v1/models/gbr/explain', { instances: one, background: 5000 }, 400, 'WARDEN_BAD_REQUEST', /background.*1000/);
    await bad('/api/v1/models/gbr/explain', { instances: [{ ...one[0], hr: 'noon' }] }, 400, 'WARDEN_INVALID_INPUT', /hr/);
    await bad('/api/v1/models/gbr/explain', { instances: Array.from({ length: 101 }, () => one[0]) }, 400, 'WARDEN_INVALID_INPUT', /101 instances exceed/);
    await bad('/api/v1/models/gbr/explain', { instances: one, version: 7 }, 404, 'WARDEN_VERSION_NOT_FOUND', /7/);
    // A model that is no tree ensemble.
    const logreg = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
    const push = await fetch(`${srv.url}/api/v1/models/busy/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: logreg });
    expect(push.status).toBe(201);
    const tensor = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 12], data: probe.input[0] }] };
    await bad('/api/v1/models/busy/explain', tensor, 400, 'WARDEN_BAD_REQUEST', /TreeSHAP needs a single-output ONNX tree ensemble .*: its graph has .*no TreeEnsembleRegressor/);
  });
});
