/**
 * `parameters.explain` on inference over real HTTP: `POST /v2/models/{name}/infer` answers with the Shapley values of
 * its rows in `parameters.explanation` (the response still valid against the OIP OpenAPI document), `:predict` in
 * `explanation`; both by the version that answered (an A/B experiment between a regressor and a classifier explains
 * each request by its own arm), bounded to MAX_EXPLAINED_ROWS rows, refused clearly when malformed, and counted in
 * warden_explanations_total / warden_explained_rows_total beside warden_inference_requests_total.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_EXPLAINED_ROWS } from '../../src/explain/index.ts';
import { fixturesDir, repoRoot, startTestServer, type TestServer } from '../helpers/server.ts';

const models = path.join(fixturesDir, 'models');
const probe = JSON.parse(readFileSync(path.join(models, 'bike_gbr.expected.json'), 'utf8')) as { features: string[]; input: number[][] };
const FEATURES = probe.features;

const SPEC_ID = 'https://warden.test/open_inference_rest.yaml';
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addSchema(parseYaml(readFileSync(path.join(fixturesDir, 'open-inference-protocol', 'open_inference_rest.yaml'), 'utf8')) as object, SPEC_ID);
const inferenceResponse = ajv.getSchema(`${SPEC_ID}#/components/schemas/inference_response`)!;

function year2011(n: number): Record<string, number>[] {
  const lines = readFileSync(path.join(repoRoot, 'data', 'bike-sharing', 'hour.csv'), 'utf8').trim().split('\n');
  const header = lines[0]!.split(',');
  return lines.slice(1, 1 + n).map((l) => {
    const cells = l.split(',');
    return Object.fromEntries(FEATURES.map((f) => [f, Number(cells[header.indexOf(f)])]));
  });
}

interface Explanation {
  method: string;
  output: string;
  space: string;
  link: string;
  features: string[];
  expected: number;
  background: { rows: number; source: string };
  kernel?: { budget: number; exact: boolean };
  explanations: { shap: Record<string, number>; value: number }[];
}
const additivity = (e: Explanation) => Math.max(...e.explanations.map((r) => Math.abs(Object.values(r.shap).reduce((a, b) => a + b, 0) + e.expected - r.value)));
const instance = (i: number) => Object.fromEntries(FEATURES.map((f, j) => [f, probe.input[i % probe.input.length]![j]]));
const tensor = (rows: number[][]) => ({ name: 'input', datatype: 'FP32', shape: [rows.length, 12], data: rows.flat() });

/** The value of a series in the /metrics text, 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inner = line.slice(name.length + 1, line.indexOf('}'));
    if (want.every((w) => inner.split(',').includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

describe('parameters.explain on inference', () => {
  let srv: TestServer;
  const push = async (name: string, file: string, alias = true) => {
    const res = await fetch(`${srv.url}/api/v1/models/${name}/versions${alias ? '?alias=champion' : ''}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'x-warden-features': JSON.stringify(FEATURES.map((f) => ({ name: f }))) },
      body: readFileSync(path.join(models, file)),
    });
    expect(res.status, await res.text()).toBe(201);
    return ((await srv.json('GET', `/api/v1/models/${name}/versions`)).body.versions as { version: number }[]).length;
  };
  const reference = async (name: string, version: number) => {
    const ref = await srv.json('PUT', `/api/v1/models/${name}/versions/${version}/reference`, { rows: year2011(1500) });
    expect(ref.status, JSON.stringify(ref.body)).toBe(201);
  };
  beforeAll(async () => {
    srv = await startTestServer();
    await push('gbr', 'bike_gbr.onnx');
    await reference('gbr', 1);
    await push('busy', 'bike_busy_logreg.onnx');
    await reference('busy', 1);
    // An A/B experiment between two versions of one deployment: the GBR (stable) and the classifier (candidate).
    await push('mix', 'bike_gbr.onnx');
    await reference('mix', 1);
    expect(await push('mix', 'bike_busy_gbc.onnx', false)).toBe(2);
    await reference('mix', 2);
    await srv.warden.table.settled();
  }, 60_000);
  afterAll(() => srv?.close());

  it('OIP infer: the answer plus parameters.explanation, additive, of the served output, valid OIP', async () => {
    const rows = probe.input.slice(0, 3);
    const res = await srv.json('POST', '/v2/models/gbr/infer', { inputs: [tensor(rows)], parameters: { explain: true } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(inferenceResponse(res.body), ajv.errorsText(inferenceResponse.errors)).toBe(true);
    const out = res.body.outputs[0] as { name: string; data: number[] };
    expect(out.name).toBe('variable');
    const e = res.body.parameters.explanation as Explanation;
    expect(e).toMatchObject({ method: 'tree-shap-interventional', output: 'variable', space: 'output', link: 'identity', features: FEATURES, background: { rows: 100, source: 'reference sample of v1' } });
    expect(e).not.toHaveProperty('model');
    expect(e.explanations).toHaveLength(3);
    expect(additivity(e)).toBeLessThan(1e-9);
    e.explanations.forEach((r, i) => expect(Math.abs(r.value - out.data[i]!)).toBeLessThan(1e-3));
    // Without the parameter (or with false) nothing is explained.
    for (const parameters of [undefined, { explain: false }]) {
      const plain = await srv.json('POST', '/v2/models/gbr/infer', { inputs: [tensor(rows)], ...(parameters ? { parameters } : {}) });
      expect(plain.status).toBe(200);
      expect(plain.body.parameters).toBeUndefined();
    }
  });

  it(':predict: the predictions plus explanation, with the background and budget asked for (KernelSHAP)', async () => {
    const instances = [instance(4), instance(30)];
    const res = await srv.json('POST', '/v1/models/busy:predict', { instances, parameters: { explain: { background: 20, budget: 128 } } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const e = res.body.explanation as Explanation;
    expect(e).toMatchObject({ method: 'kernel-shap', output: 'probability', space: 'output', background: { rows: 20 }, kernel: { budget: 128, exact: false } });
    expect(additivity(e)).toBeLessThan(1e-9);
    // KernelSHAP's value is the session's own answer for the row: the prediction served, exactly.
    e.explanations.forEach((r, i) => expect(r.value).toBe(res.body.predictions[i]));
  });

  it('explains each request by the version that answered it, during an A/B experiment', async () => {
    const deploy = await srv.json('POST', '/api/v1/deployments/mix/deploy', { version: 2, strategy: 'ab', force: true, inheritMonitoring: false, spec: { experiment: { weight: 50, metrics: ['conversion'], mde: 0.5 } } });
    expect(deploy.status, JSON.stringify(deploy.body)).toBe(200);
    const seen = new Map<string, number>();
    for (let u = 0; u < 24; u++) {
      const res = await srv.json('POST', '/v1/models/mix:predict', { instances: [instance(u)], parameters: { assignment_key: `user-${u}`, explain: true } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const version = res.body.model_version as string;
      expect(res.headers.get('x-model-version')).toBe(version);
      seen.set(version, (seen.get(version) ?? 0) + 1);
      const e = res.body.explanation as Explanation;
      expect(e.background.source).toBe(`reference sample of v${version}`);
      if (version === '1') {
        expect(e).toMatchObject({ output: 'variable', space: 'output' });
        expect(Math.abs(e.explanations[0]!.value - (res.body.predictions[0] as number))).toBeLessThan(1e-3);
      } else {
        const p = (res.body.predictions[0] as { probabilities: number[] }).probabilities[1]!;
        expect(e).toMatchObject({ output: 'probabilities[1]', space: 'margin', link: 'logit' });
        expect(Math.abs(e.explanations[0]!.value - Math.log(p / (1 - p)))).toBeLessThan(1e-5);
      }
      expect(additivity(e)).toBeLessThan(1e-9);
    }
    // 24 keys split by hash: both arms answered (and were explained).
    expect([...seen.keys()].sort()).toEqual(['1', '2']);
  });

  it(`refuses more than ${MAX_EXPLAINED_ROWS} rows and malformed parameters.explain, before the model runs`, async () => {
    const bad = async (p: string, body: unknown, msg: RegExp) => {
      const res = await srv.json('POST', p, body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body).toMatchObject({ code: 'WARDEN_BAD_REQUEST' });
      expect(res.body.error as string).toMatch(msg);
    };
    const many = Array.from({ length: MAX_EXPLAINED_ROWS + 1 }, (_, i) => probe.input[i % 64]!);
    await bad('/v2/models/gbr/infer', { inputs: [tensor(many)], parameters: { explain: true } }, /parameters.explain: the request has 101 rows and at most 100 are explained per request; send fewer rows/);
    await bad('/v1/models/gbr:predict', { instances: many.map((_, i) => instance(i)), parameters: { explain: true } }, /the request has 101 rows and at most 100/);
    // The same rows without explain are served.
    expect((await srv.json('POST', '/v2/models/gbr/infer', { inputs: [tensor(many)] })).status).toBe(200);
    const one = { inputs: [tensor(probe.input.slice(0, 1))] };
    await bad('/v2/models/gbr/infer', { ...one, parameters: { explain: 'yes' } }, /parameters.explain must be true, false or \{"background": rows, "budget": coalitions\}/);
    await bad('/v2/models/gbr/infer', { ...one, parameters: { explain: { rows: 3 } } }, /unknown field parameters.explain.rows/);
    await bad('/v2/models/gbr/infer', { ...one, parameters: { explain: { background: 1.5 } } }, /parameters.explain.background must be an integer/);
    await bad('/v2/models/gbr/infer', { ...one, parameters: { explain: { background: 5000 } } }, /parameters.explain: background must be an integer number of rows in \[1, 1000\]/);
    await bad('/v2/models/gbr/infer', { ...one, parameters: { explain: { budget: 1e6 } } }, /budget must be an integer number of coalitions in \[32, 16384\]/);
    // A version without a reference cannot be explained: the request fails and says how to fix it.
    await push('noref', 'bike_gbr.onnx');
    await srv.warden.table.settled();
    await bad('/v2/models/noref/infer', { ...one, parameters: { explain: true } }, /noref v1 has no reference: register one/);
    expect((await srv.json('POST', '/v2/models/noref/infer', one)).status).toBe(200);
  });

  it('counts explained requests and rows per model, version and protocol, beside the requests', async () => {
    const before = (await (await fetch(`${srv.url}/metrics`)).text()) as string;
    const labels = { model: 'gbr', version: '1', protocol: 'oip' };
    expect(before).toContain('warden_explanations_total{model="gbr",version="1",protocol="oip"}');
    const explained = sample(before, 'warden_explanations_total', labels);
    const rows = sample(before, 'warden_explained_rows_total', labels);
    const requests = sample(before, 'warden_inference_requests_total', { ...labels, outcome: 'ok' });
    for (const n of [2, 3]) expect((await srv.json('POST', '/v2/models/gbr/infer', { inputs: [tensor(probe.input.slice(0, n))], parameters: { explain: true } })).status).toBe(200);
    expect((await srv.json('POST', '/v2/models/gbr/infer', { inputs: [tensor(probe.input.slice(0, 4))] })).status).toBe(200);
    expect((await srv.json('POST', '/api/v1/models/gbr/explain', { inputs: [tensor(probe.input.slice(0, 1))] })).status).toBe(200);
    const after = await (await fetch(`${srv.url}/metrics`)).text();
    expect(sample(after, 'warden_explanations_total', labels) - explained).toBe(2);
    expect(sample(after, 'warden_explained_rows_total', labels) - rows).toBe(5);
    expect(sample(after, 'warden_inference_requests_total', { ...labels, outcome: 'ok' }) - requests).toBe(3);
    expect(sample(after, 'warden_explanations_total', { model: 'gbr', version: '1', protocol: 'api' })).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'warden_explanations_total', { model: 'busy', version: '1', protocol: 'predict' })).toBe(1);
  });

  it('reads the background from the reference monitoring holds in memory, not from the store per request', async () => {
    // The stored row goes behind monitoring's back (the store's own call, not the API): explanations that read the
    // store per request would now fail for want of a reference; the in-memory one keeps answering.
    await srv.warden.stores.metadata.deleteReference('gbr', 1);
    for (let i = 0; i < 3; i++) {
      const r = await srv.json('POST', '/v1/models/gbr:predict', { instances: [instance(i)], parameters: { explain: true } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.explanation.background).toEqual({ rows: 100, source: 'reference sample of v1' });
    }
  });
});
