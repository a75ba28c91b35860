/**
 * `POST /api/v1/models/{name}/explain` over real HTTP: the 60-tree bike GBR, the 40-tree bike GradientBoosting
 * classifier and the bike logistic regression pushed with their feature names, a reference of 2011 rows registered
 * for each, then rows explained against the reference sample. The GBR's answer must be additive to 1e-9, agree with
 * onnxruntime's answer for the row to float32 rounding, and equal TreeSHAP run directly on the same background; the
 * classifier's is in margin space (logit of the served probability); the logistic regression is explained by
 * KernelSHAP, additive to 1e-9, exact when its budget holds every coalition. Bad requests get the API's error shape.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTreeEnsemble, treeShap } from '../../src/explain/index.ts';
import { fixturesDir, repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';

const GBR = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
const GBC = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_gbc.onnx'));
const LOGREG = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
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

type Body = {
  version: number;
  method: string;
  output: string;
  space: string;
  link: string;
  features: string[];
  expected: number;
  background: { rows: number };
  kernel?: { budget: number; exact: boolean; coalitions: number; modelRows: number; runs: number };
  explanations: { shap: Record<string, number>; value: number; exact?: boolean; coalitions?: number }[];
};
const additivity = (body: Body) => Math.max(...body.explanations.map((e) => Math.abs(Object.values(e.shap).reduce((a, b) => a + b, 0) + body.expected - e.value)));
const logit = (p: number) => Math.log(p / (1 - p));

/** An ONNX graph input [N, width] → MatMul → scores [N, columns]: no trees. */
function matmul(width: number, columns: number): Uint8Array {
  const { onnx } = onnxProto;
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const matrix = (name: string, cols: number) => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: cols }] } } } });
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 15 }],
      graph: {
        name: 'two',
        node: [{ opType: 'MatMul', input: ['input', 'w'], output: ['scores'] }],
        initializer: [{ name: 'w', dataType: FLOAT, dims: [width, columns], floatData: Array.from({ length: width * columns }, (_, i) => i / (width * columns)) }],
        input: [matrix('input', width)],
        output: [matrix('scores', columns)],
      },
    }),
  ).finish();
}

describe('the explain API', () => {
  let srv: TestServer;
  const push = async (name: string, bytes: Uint8Array, withReference = true, named = true) => {
    const res = await fetch(`${srv.url}/api/v1/models/${name}/versions?alias=champion`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', ...(named ? { 'x-warden-features': JSON.stringify(FEATURES.map((f) => ({ name: f }))) } : {}) },
      body: Buffer.from(bytes),
    });
    expect(res.status, await res.text()).toBe(201);
    if (!withReference) return;
    const ref = await srv.json('PUT', `/api/v1/models/${name}/versions/1/reference`, { rows: year2011(1500) });
    expect(ref.status, JSON.stringify(ref.body)).toBe(201);
  };
  beforeAll(async () => {
    srv = await startTestServer();
    await push('gbr', GBR);
    await push('gbc', GBC);
    await push('busy', LOGREG);
    await srv.warden.table.settled();
  }, 60_000);
  afterAll(() => srv?.close());

  it('explains named rows against the reference sample: additive, the served answer, TreeSHAP on the same rows', async () => {
    const rows = probe.input.slice(0, 5).map((r) => Object.fromEntries(FEATURES.map((f, j) => [f, r[j]])));
    const res = await srv.json('POST', '/api/v1/models/gbr/explain', { instances: rows, background: 50 });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const body = res.body as Body;
    expect(body).toMatchObject({ version: 1, method: 'tree-shap-interventional', output: 'variable', space: 'output', link: 'identity', features: FEATURES, background: { rows: 50 } });
    expect(body.kernel).toBeUndefined();
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

  it('explains a GradientBoostingClassifier in margin space: the logit of the probability it serves', async () => {
    const rows = probe.input.slice(10, 14).map((r) => Object.fromEntries(FEATURES.map((f, j) => [f, r[j]])));
    const res = await srv.json('POST', '/api/v1/models/gbc/explain', { instances: rows });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const body = res.body as Body;
    expect(body).toMatchObject({ method: 'tree-shap-interventional', output: 'probabilities[1]', space: 'margin', link: 'logit', background: { rows: 100 } });
    expect(additivity(body)).toBeLessThan(1e-9);
    // Serving the classifier works: a label and both probabilities per row.
    const served = await srv.json('POST', '/v1/models/gbc:predict', { instances: rows });
    expect(served.status, JSON.stringify(served.body)).toBe(200);
    const predictions = served.body.predictions as { label: number; probabilities: number[] }[];
    predictions.forEach((p, i) => {
      expect(p.label).toBe(p.probabilities[1]! > 0.5 ? 1 : 0);
      expect(Math.abs(body.explanations[i]!.value - logit(p.probabilities[1]!))).toBeLessThan(1e-5);
    });
    const oip = await srv.json('POST', '/v2/models/gbc/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 12], data: probe.input[10] }] });
    expect(oip.status).toBe(200);
    expect((oip.body.outputs as { name: string; datatype: string; shape: number[] }[]).map((o) => [o.name, o.datatype, o.shape])).toEqual([
      ['label', 'INT64', [1]],
      ['probabilities', 'FP32', [1, 2]],
    ]);
  });

  it('explains a model without trees with KernelSHAP: exact when every coalition fits the budget, else sampled', async () => {
    const rows = probe.input.slice(20, 23).map((r) => Object.fromEntries(FEATURES.map((f, j) => [f, r[j]])));
    const exact = await srv.json('POST', '/api/v1/models/busy/explain', { instances: rows, background: 50 });
    expect(exact.status, JSON.stringify(exact.body)).toBe(200);
    const body = exact.body as Body;
    expect(body).toMatchObject({ method: 'kernel-shap', output: 'probability', space: 'output', link: 'identity', background: { rows: 50 } });
    // The reference holds 2011 only, so yr never varies: it gets exactly 0, and the 2^11 − 2 coalitions of the
    // other 11 features fit in the default budget of 2,048: exact.
    expect(body.explanations.every((e) => e.shap.yr === 0)).toBe(true);
    expect(body.kernel).toMatchObject({ budget: 2048, exact: true });
    expect(body.explanations.every((r) => r.exact === true && r.coalitions! <= 2046)).toBe(true);
    expect(body.kernel!.modelRows).toBe(body.explanations.reduce((a, r) => a + 1 + 50 + r.coalitions! * 50, 0));
    expect(additivity(body)).toBeLessThan(1e-9);
    // The value is what the version serves for the row, bit for bit (the same session, float32).
    const served = (await srv.json('POST', '/v1/models/busy:predict', { instances: rows })).body as { predictions: number[] };
    body.explanations.forEach((e, i) => expect(e.value).toBe(served.predictions[i]));
    const sampled = await srv.json('POST', '/api/v1/models/busy/explain', { instances: rows, background: 50, budget: 256 });
    expect(sampled.status).toBe(200);
    const s = sampled.body as Body;
    expect(s.kernel).toMatchObject({ budget: 256, exact: false, coalitions: 3 * 256 });
    expect(additivity(s)).toBeLessThan(1e-9);
    for (const [i, r] of s.explanations.entries()) for (const f of FEATURES) expect(Math.abs(r.shap[f]! - body.explanations[i]!.shap[f]!)).toBeLessThan(0.02);
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
    await bad('/api/v1/models/busy/explain', { instances: one, budget: 10 }, 400, 'WARDEN_BAD_REQUEST', /budget must be an integer number of coalitions in \[32, 16384\]/);
    await bad('/api/v1/models/busy/explain', { instances: one, budget: 'all' }, 400, 'WARDEN_BAD_REQUEST', /budget must be an integer/);
    // A model that is no tree ensemble and has two output columns: neither method applies.
    await push('two', matmul(12, 2), false);
    const tensor = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 12], data: probe.input[0] }] };
    await bad('/api/v1/models/two/explain', tensor, 400, 'WARDEN_BAD_REQUEST', /its graph has MatMul, no TreeEnsembleRegressor.*KernelSHAP needs one 2-D FP32 input and one output column: it has 2 output columns \(scores\[0\], scores\[1\]\)/);
    await push('wide', matmul(200, 1), false, false);
    const wide = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 200], data: new Array(200).fill(0.5) }] };
    await bad('/api/v1/models/wide/explain', wide, 400, 'WARDEN_BAD_REQUEST', /its input has 200 columns, more than the 128 KernelSHAP explains/);
    // A version with no reference has no background.
    await push('noref', GBR, false);
    await bad('/api/v1/models/noref/explain', { instances: one }, 400, 'WARDEN_BAD_REQUEST', /noref v1 has no reference: register one/);
  });
});
