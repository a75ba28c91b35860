/**
 * Warden against the Open Inference Protocol v2 REST specification (kserve/open-inference-protocol,
 * test/fixtures/open-inference-protocol): every endpoint of open_inference_rest.yaml, with and without `/versions/{v}`,
 * answered over real HTTP, with status codes as inference_rest.md states them and every request and
 * response body validated against the OpenAPI document's component schemas.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import onnxProto from 'onnx-proto';
import { parse as parseYaml } from 'yaml';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const specDir = path.join(fixturesDir, 'open-inference-protocol');
const modelsDir = path.join(fixturesDir, 'models');

interface Expected {
  features: string[];
  input: number[][];
  output: number[];
}
const gbrBytes = readFileSync(path.join(modelsDir, 'bike_gbr.onnx'));
const logregBytes = readFileSync(path.join(modelsDir, 'bike_busy_logreg.onnx'));
const gbr = JSON.parse(readFileSync(path.join(modelsDir, 'bike_gbr.expected.json'), 'utf8')) as Expected;

/**
 * The OpenAPI 3.0 document added whole under an $id, so its own `#/components/schemas/x` refs resolve;
 * the component schemas are plain JSON Schema (OpenAPI extras such as `x-examples` are ignored: strict off).
 */
const SPEC_ID = 'https://warden.test/open_inference_rest.yaml';
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addSchema(parseYaml(readFileSync(path.join(specDir, 'open_inference_rest.yaml'), 'utf8')) as object, SPEC_ID);
const schema = (name: string): ValidateFunction => {
  const validate = ajv.getSchema(`${SPEC_ID}#/components/schemas/${name}`);
  if (!validate) throw new Error(`no schema ${name} in the OIP document`);
  return validate;
};
const schemas = {
  metadataServer: schema('metadata_server_response'),
  metadataServerError: schema('metadata_server_error_response'),
  metadataModel: schema('metadata_model_response'),
  metadataModelError: schema('metadata_model_error_response'),
  inferenceRequest: schema('inference_request'),
  inferenceResponse: schema('inference_response'),
  inferenceError: schema('inference_error_response'),
};

/** Asserts `body` matches a spec schema, printing ajv's errors when it does not. */
function expectValid(validate: ValidateFunction, body: unknown): void {
  const ok = validate(body);
  expect(ok ? [] : ajv.errorsText(validate.errors, { separator: '\n' }).split('\n'), JSON.stringify(body)?.slice(0, 400)).toEqual([]);
}

/** inference_rest.md, "Platforms": the platform names a model metadata response may carry. */
const SPEC_PLATFORMS = [
  'tensorrt_plan',
  'tensorflow_graphdef',
  'tensorflow_savedmodel',
  'onnx_onnxv1',
  'pytorch_torchscript',
  'mxnet_mxnet',
  'caffe2_netdef',
];

/**
 * A model with two outputs, for `outputs` selection: `row_sum` = input·1 ([N,1]) and `doubled` = 2·input
 * ([N,12]). Written with onnx-proto (IR 8, opset 15), like the built-in trainer's graphs.
 */
function twoOutputModel(): Uint8Array {
  const { onnx } = onnxProto;
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const matrix = (name: string, columns: number): onnxProto.onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: columns }] } } },
  });
  const proto = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 15 }],
    producerName: 'warden-test',
    graph: {
      name: 'two_outputs',
      node: [
        { opType: 'MatMul', input: ['input', 'ones'], output: ['row_sum'], name: 'sum' },
        { opType: 'Mul', input: ['input', 'two'], output: ['doubled'], name: 'double' },
      ],
      initializer: [
        { name: 'ones', dataType: FLOAT, dims: [12, 1], floatData: new Array(12).fill(1) },
        { name: 'two', dataType: FLOAT, dims: [1], floatData: [2] },
      ],
      input: [matrix('input', 12)],
      output: [matrix('row_sum', 1), matrix('doubled', 12)],
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}

const rows = (n: number): number[][] => gbr.input.slice(0, n);
const flatRequest = (data: number[][], extra: Record<string, unknown> = {}) => ({
  ...extra,
  inputs: [{ name: 'input', shape: [data.length, 12], datatype: 'FP32', data: data.flat() }],
});
const nestedRequest = (data: number[][], extra: Record<string, unknown> = {}) => ({
  ...extra,
  inputs: [{ name: 'input', shape: [data.length, 12], datatype: 'FP32', data }],
});

describe('Open Inference Protocol v2 REST (open_inference_rest.yaml)', () => {
  let srv: TestServer;

  /** POSTs an inference request after checking it is a valid `inference_request` itself. */
  const infer = (urlPath: string, body: unknown, headers: Record<string, string> = {}) => {
    expectValid(schemas.inferenceRequest, body);
    return srv.json('POST', urlPath, body, headers);
  };

  beforeAll(async () => {
    srv = await startTestServer();
    // `bike`: v1 = the regressor (champion), v2 = the classifier, so versioned paths pick visibly different models.
    await srv.warden.registry.push({ model: 'bike', bytes: gbrBytes, aliases: ['champion'] });
    await srv.warden.registry.push({ model: 'bike', bytes: logregBytes, aliases: ['challenger'] });
    await srv.warden.registry.push({ model: 'two', bytes: twoOutputModel(), aliases: ['champion'] });
    await srv.warden.table.settled();
  });
  afterAll(() => srv?.close());

  it('covers every path of the OpenAPI document', () => {
    const doc = parseYaml(readFileSync(path.join(specDir, 'open_inference_rest.yaml'), 'utf8')) as { paths: Record<string, unknown> };
    // Each is exercised below; this fails if the spec grows an endpoint the suite does not know about.
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/v2/',
        '/v2/health/live',
        '/v2/health/ready',
        '/v2/models/${MODEL_NAME}/versions/${MODEL_VERSION}',
        '/v2/models/${MODEL_NAME}/versions/${MODEL_VERSION}/infer',
        '/v2/models/${MODEL_NAME}/versions/${MODEL_VERSION}/ready',
      ].sort(),
    );
  });

  describe('health', () => {
    it('server live answers 200 {"live": true}', async () => {
      const res = await srv.json('GET', '/v2/health/live');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ live: true });
      expect(res.headers.get('x-request-id')).toBeTruthy();
    });

    it('server ready answers 200 with ready: true once every model is loaded', async () => {
      const res = await srv.json('GET', '/v2/health/ready');
      expect(res.status).toBe(200);
      expect(res.body.ready).toBe(true);
    });

    it.each([
      ['/v2/models/bike/ready', '1'],
      ['/v2/models/bike/versions/1/ready', '1'],
      ['/v2/models/bike/versions/2/ready', '2'],
      ['/v2/models/bike/versions/challenger/ready', '2'],
      ['/v2/models/two/ready', '1'],
    ])('model ready %s answers 200 {"name", "ready": true}', async (urlPath, version) => {
      const res = await srv.json('GET', urlPath);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ name: urlPath.split('/')[3], ready: true, version });
    });

    it.each(['/v2/models/nope/ready', '/v2/models/nope/versions/1/ready', '/v2/models/bike/versions/9/ready', '/v2/models/bike/versions/nope/ready'])(
      'model ready for an unknown model or version %s is a 404 with an error body',
      async (urlPath) => {
        const res = await srv.json('GET', urlPath);
        expect(res.status).toBe(404);
        expectValid(schemas.metadataModelError, res.body);
      },
    );
  });

  describe('server metadata', () => {
    it.each(['/v2', '/v2/'])('GET %s answers a metadata_server_response', async (urlPath) => {
      const res = await srv.json('GET', urlPath);
      expect(res.status).toBe(200);
      expectValid(schemas.metadataServer, res.body);
      expect(res.body.name).toBe('warden');
      expect(res.body.version).toMatch(/^\d+\.\d+\.\d+/);
    });
  });

  describe('model metadata', () => {
    it.each([
      ['/v2/models/bike', 'variable'],
      ['/v2/models/bike/versions/1', 'variable'],
      ['/v2/models/bike/versions/champion', 'variable'],
      ['/v2/models/bike/versions/2', 'probability'],
      ['/v2/models/bike/versions/latest', 'probability'],
    ])('GET %s answers a metadata_model_response', async (urlPath, output) => {
      const res = await srv.json('GET', urlPath);
      expect(res.status).toBe(200);
      expectValid(schemas.metadataModel, res.body);
      expect(res.body.name).toBe('bike');
      expect(res.body.versions).toEqual(['1', '2']);
      expect(SPEC_PLATFORMS).toContain(res.body.platform);
      expect(res.body.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 12] }]);
      expect(res.body.outputs).toEqual([{ name: output, datatype: 'FP32', shape: [-1, 1] }]);
    });

    it('lists every output of a multi-output model', async () => {
      const res = await srv.json('GET', '/v2/models/two');
      expectValid(schemas.metadataModel, res.body);
      expect(res.body.outputs).toEqual([
        { name: 'row_sum', datatype: 'FP32', shape: [-1, 1] },
        { name: 'doubled', datatype: 'FP32', shape: [-1, 12] },
      ]);
    });

    it.each(['/v2/models/nope', '/v2/models/nope/versions/1', '/v2/models/bike/versions/3', '/v2/models/bike/versions/nope'])(
      'GET %s for an unknown model or version is a 404 metadata_model_error_response',
      async (urlPath) => {
        const res = await srv.json('GET', urlPath);
        expect(res.status).toBe(404);
        expectValid(schemas.metadataModelError, res.body);
        expect(res.body.code).toMatch(/^WARDEN_(MODEL|VERSION)_NOT_FOUND$/);
      },
    );
  });

  describe('inference', () => {
    it.each([
      ['/v2/models/bike/infer', '1', 'variable'],
      ['/v2/models/bike/versions/1/infer', '1', 'variable'],
      ['/v2/models/bike/versions/champion/infer', '1', 'variable'],
      ['/v2/models/bike/versions/2/infer', '2', 'probability'],
      ['/v2/models/bike/versions/challenger/infer', '2', 'probability'],
    ])('POST %s answers an inference_response from version %s', async (urlPath, version, output) => {
      const res = await infer(urlPath, flatRequest(rows(1)));
      expect(res.status).toBe(200);
      expectValid(schemas.inferenceResponse, res.body);
      expect(res.body.model_name).toBe('bike');
      expect(res.body.model_version).toBe(version);
      expect(res.headers.get('x-model-version')).toBe(version);
      expect(res.headers.get('x-request-id')).toBeTruthy();
      expect(res.body.outputs).toHaveLength(1);
      expect(res.body.outputs[0]).toMatchObject({ name: output, datatype: 'FP32', shape: [1, 1] });
      expect(res.body.outputs[0].data).toHaveLength(1);
    });

    it('echoes the request id in the body and a sent x-request-id in the header', async () => {
      const res = await infer('/v2/models/bike/infer', flatRequest(rows(2), { id: 'req-42' }), { 'x-request-id': 'trace-abc-123' });
      expect(res.status).toBe(200);
      expectValid(schemas.inferenceResponse, res.body);
      expect(res.body.id).toBe('req-42');
      expect(res.headers.get('x-request-id')).toBe('trace-abc-123');
    });

    it('without a request id, answers with the x-request-id as id', async () => {
      const sent = await infer('/v2/models/bike/infer', flatRequest(rows(1)), { 'x-request-id': 'only-header-7' });
      expect(sent.body.id).toBe('only-header-7');
      const made = await infer('/v2/models/bike/infer', flatRequest(rows(1)));
      expect(made.body.id).toBe(made.headers.get('x-request-id'));
    });

    it('runs a 64-row batch, flat and nested row-major, with the same answer', async () => {
      const data = rows(64);
      const flat = await infer('/v2/models/bike/infer', flatRequest(data));
      const nested = await infer('/v2/models/bike/infer', nestedRequest(data));
      for (const res of [flat, nested]) {
        expect(res.status).toBe(200);
        expectValid(schemas.inferenceResponse, res.body);
        expect(res.body.outputs[0].shape).toEqual([64, 1]);
        expect(res.body.outputs[0].data).toHaveLength(64);
      }
      expect(nested.body.outputs).toEqual(flat.body.outputs);
      // Each row of the batch equals that row sent alone: batching does not mix rows.
      for (const r of [0, 17, 63]) {
        const one = await infer('/v2/models/bike/infer', flatRequest([data[r]!]));
        expect(one.body.outputs[0].data[0]).toBe(flat.body.outputs[0].data[r]);
      }
    });

    it('selects outputs with `outputs`, and returns all of them without it', async () => {
      const data = rows(3);
      const all = await infer('/v2/models/two/infer', flatRequest(data));
      expect(all.status).toBe(200);
      expectValid(schemas.inferenceResponse, all.body);
      expect(all.body.outputs.map((o: { name: string }) => o.name)).toEqual(['row_sum', 'doubled']);

      const doubled = await infer('/v2/models/two/versions/1/infer', flatRequest(data, { outputs: [{ name: 'doubled' }] }));
      expect(doubled.status).toBe(200);
      expectValid(schemas.inferenceResponse, doubled.body);
      expect(doubled.body.outputs).toHaveLength(1);
      expect(doubled.body.outputs[0]).toMatchObject({ name: 'doubled', datatype: 'FP32', shape: [3, 12] });
      expect(doubled.body.outputs[0].data).toEqual(data.flat().map((v) => Math.fround(v) * 2));

      const sum = await infer('/v2/models/two/infer', nestedRequest(data, { outputs: [{ name: 'row_sum' }] }));
      expect(sum.body.outputs.map((o: { name: string }) => o.name)).toEqual(['row_sum']);
      const want = data.map((r) => r.reduce((a, v) => a + Math.fround(v), 0));
      sum.body.outputs[0].data.forEach((v: number, i: number) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want[i]!))));
    });

    it('accepts request and per-input parameters (spec: zero or more key/value pairs)', async () => {
      const body = flatRequest(rows(1), { parameters: { note: 'x', n: 1, flag: true } });
      (body.inputs[0] as Record<string, unknown>).parameters = { binary_data: false };
      const res = await infer('/v2/models/bike/infer', body);
      expect(res.status).toBe(200);
      expectValid(schemas.inferenceResponse, res.body);
    });

    it.each([
      ['unknown model', '/v2/models/nope/infer', flatRequest(rows(1)), 404],
      ['unknown model, versioned', '/v2/models/nope/versions/1/infer', flatRequest(rows(1)), 404],
      ['unknown version', '/v2/models/bike/versions/7/infer', flatRequest(rows(1)), 404],
      ['unknown alias', '/v2/models/bike/versions/canary/infer', flatRequest(rows(1)), 404],
      ['unknown input name', '/v2/models/bike/infer', { inputs: [{ name: 'x', shape: [1, 12], datatype: 'FP32', data: rows(1).flat() }] }, 400],
      ['wrong datatype', '/v2/models/bike/infer', { inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP64', data: rows(1).flat() }] }, 400],
      ['shape/data mismatch', '/v2/models/bike/infer', { inputs: [{ name: 'input', shape: [2, 12], datatype: 'FP32', data: rows(1).flat() }] }, 400],
      ['unknown output', '/v2/models/two/infer', flatRequest(rows(1), { outputs: [{ name: 'nope' }] }), 400],
      ['no inputs', '/v2/models/bike/infer', { inputs: [] }, 400],
    ])('%s: answers %i with an inference_error_response', async (_what, urlPath, body, status) => {
      const res = await infer(urlPath, body);
      expect(res.status).toBe(status);
      expectValid(schemas.inferenceError, res.body);
      expect(res.body.error.length).toBeGreaterThan(10);
      expect(res.body.code).toMatch(/^WARDEN_/);
      expect(res.headers.get('x-request-id')).toBeTruthy();
    });

    it('answers a body that is not an inference_request with a 400 inference_error_response', async () => {
      const body = { inputs: [{ name: 'input', shape: [1, 12], data: rows(1).flat() }] };
      expect(schemas.inferenceRequest(body)).toBe(false);
      const res = await srv.json('POST', '/v2/models/bike/infer', body);
      expect(res.status).toBe(400);
      expectValid(schemas.inferenceError, res.body);
    });
  });
});
