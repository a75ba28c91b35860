/**
 * A seeded storm of malformed requests against a real Warden: every answer must be a 4xx in the one
 * error shape `{ error, code: WARDEN_* }` with a message a caller can act on — never a 5xx, never a
 * hang — and the server must keep serving, logging and exporting metrics afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { errorCatalogue } from '../../src/errors.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';
import { mulberry32 as prng } from '../../src/random.ts';

const SEED = 0x5eed_2024;
const STORM_SIZE = 1_500;
const CONCURRENCY = 16;
const REQUEST_TIMEOUT_MS = 5_000;
const BODY_LIMIT = 64 * 1024;
const MAX_BATCH_ROWS = 256;

interface Expected {
  features: string[];
  input: number[][];
  output: number[];
}
const gbrBytes = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
const logregBytes = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const expected = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.expected.json'), 'utf8')) as Expected;
const FEATURES = expected.features;


/** One malformed request and what its answer must say. */
interface Case {
  kind: string;
  method: string;
  path: string;
  /** A string is sent as is; anything else is JSON-encoded. Omitted: no body. */
  body?: unknown;
  /** Content-type header; `null` sends none (the body goes as raw bytes). Default application/json. */
  contentType?: string | null;
  /** Send the body as a stream of chunks (no content-length). */
  chunked?: boolean;
  status?: number;
  codes?: string[];
  /** Text the error message must contain: the offending name, field or limit. */
  mention?: string;
}

class Gen {
  constructor(readonly rand: () => number) {}
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rand() * items.length)]!;
  }
  word(min = 3, max = 12): string {
    const letters = 'abcdefghijklmnopqrstuvwxyz0123456789';
    let s = letters[this.int(0, 25)]!;
    for (let i = this.int(min, max) - 1; i > 0; i--) s += letters[this.int(0, letters.length - 1)]!;
    return s;
  }
  row(): number[] {
    return Array.from({ length: 12 }, () => Math.round(this.rand() * 1000) / 100);
  }
  rows(n: number): number[][] {
    return Array.from({ length: n }, () => this.row());
  }
  /** A valid gbr request body with `n` rows, flat or nested. */
  request(n = this.int(1, 8)): { inputs: Record<string, unknown>[]; [k: string]: unknown } {
    const data = this.rows(n);
    return { inputs: [{ name: 'input', shape: [n, 12], datatype: 'FP32', data: this.rand() < 0.5 ? data.flat() : data }] };
  }
  instance(): Record<string, unknown> {
    return Object.fromEntries(FEATURES.map((f) => [f, Math.round(this.rand() * 100) / 100]));
  }
  inferPath(): string {
    return this.pick(['/v2/models/gbr/infer', '/v2/models/gbr/versions/1/infer', '/v2/models/gbr/versions/champion/infer', '/v2/models/gbr/versions/latest/infer']);
  }
  predictPath(): string {
    return this.pick(['/v1/models/gbr:predict', '/v1/models/gbr/versions/1:predict', '/v1/models/gbr/versions/champion:predict']);
  }
}

const nest = (depth: number, inner = '1'): string => '['.repeat(depth) + inner + ']'.repeat(depth);
const BAD_ELEMENTS: unknown[] = ['1.5', 'NaN', 'nan', 'Infinity', '-Infinity', 'inf', '', 'abc', null, true, false, {}, { v: 1 }];
const BAD_SHAPE_ENTRIES: unknown[] = [-1, -100, 1.5, 0.5, 1e20, 2 ** 53, 2 ** 60, 1e308, '1', '12', null, true, {}, [1], 'NaN'];
const BAD_DATATYPES: unknown[] = ['FP64', 'FP16', 'INT32', 'INT64', 'BYTES', 'BOOL', 'UINT8', 'fp32', 'FP 32', 'float32', '', 1, null, true, {}, ['FP32']];
const NOT_OBJECTS: unknown[] = [1, 'x', null, true, [], [1, 2]];

/** Each generator builds one case of its kind; the storm takes kinds in turn so every one is well covered. */
const generators: Record<string, (g: Gen) => Case> = {
  'unknown model': (g) => {
    const name = `nope-${g.word()}`;
    const [method, p] = g.pick([
      ['POST', `/v2/models/${name}/infer`],
      ['POST', `/v2/models/${name}/versions/1/infer`],
      ['GET', `/v2/models/${name}`],
      ['GET', `/v2/models/${name}/ready`],
      ['GET', `/v2/models/${name}/versions/2/ready`],
      ['POST', `/v1/models/${name}:predict`],
    ] as const);
    return { kind: 'unknown model', method, path: p, ...(method === 'POST' ? { body: p.includes(':predict') ? { instances: [g.instance()] } : g.request() } : {}), status: 404, codes: ['WARDEN_MODEL_NOT_FOUND'], mention: name };
  },
  'unknown version or alias': (g) => {
    const ref = g.pick([String(g.int(2, 999_999_999)), `alias-${g.word()}`, 'canary', 'LATEST', 'Champion', '0', '007', '1.0', '-1', '99999999999999999999']);
    const [method, p] = g.pick([
      ['POST', `/v2/models/gbr/versions/${ref}/infer`],
      ['GET', `/v2/models/gbr/versions/${ref}`],
      ['GET', `/v2/models/gbr/versions/${ref}/ready`],
      ['POST', `/v1/models/gbr/versions/${ref}:predict`],
    ] as const);
    return { kind: 'unknown version or alias', method, path: p, ...(method === 'POST' ? { body: p.endsWith(':predict') ? { instances: [g.instance()] } : g.request() } : {}), status: 404, codes: ['WARDEN_VERSION_NOT_FOUND'], mention: ref };
  },
  'wrong input name': (g) => {
    const body = g.request();
    const name = g.pick([`in_${g.word()}`, 'Input', 'input ', 'inputs', 'x', 'features']);
    body.inputs[0]!.name = name;
    return { kind: 'wrong input name', method: 'POST', path: g.inferPath(), body, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: name };
  },
  'input name not a string': (g) => {
    const body = g.request();
    const name = g.pick([1, null, true, {}, ['input'], undefined]);
    if (name === undefined) delete body.inputs[0]!.name;
    else body.inputs[0]!.name = name;
    return { kind: 'input name not a string', method: 'POST', path: g.inferPath(), body, status: 400, codes: ['WARDEN_BAD_REQUEST'], mention: 'name' };
  },
  'wrong or missing datatype': (g) => {
    const body = g.request();
    const dt = g.pick([...BAD_DATATYPES, undefined]);
    if (dt === undefined) delete body.inputs[0]!.datatype;
    else body.inputs[0]!.datatype = dt;
    return { kind: 'wrong or missing datatype', method: 'POST', path: g.inferPath(), body, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'datatype' };
  },
  'wrong rank': (g) => {
    const n = g.int(1, 4);
    const shape = g.pick([[12 * n], [n, 12, 1], [1, n, 12], [n, 3, 4], [n, 2, 2, 3], []]);
    const count = shape.reduce((a, b) => a * b, 1);
    const data = g.rows(n).flat().slice(0, count);
    return { kind: 'wrong rank', method: 'POST', path: g.inferPath(), body: { inputs: [{ name: 'input', shape, datatype: 'FP32', data }] }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'rank' };
  },
  'wrong dimension': (g) => {
    const n = g.int(1, 4);
    const k = g.pick([1, 2, 11, 13, 24, 100]);
    const data = Array.from({ length: n * k }, () => g.rand());
    return { kind: 'wrong dimension', method: 'POST', path: g.inferPath(), body: { inputs: [{ name: 'input', shape: [n, k], datatype: 'FP32', data }] }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'dimension 1' };
  },
  'shape and data length differ': (g) => {
    const n = g.int(1, 6);
    const flat = g.rows(n).flat();
    const delta = g.pick([-1, 1, -12, 12, g.int(2, 11), -g.int(2, 11)]);
    const data = delta > 0 ? [...flat, ...Array.from({ length: delta }, () => 0.5)] : flat.slice(0, Math.max(0, flat.length + delta));
    return { kind: 'shape and data length differ', method: 'POST', path: g.inferPath(), body: { inputs: [{ name: 'input', shape: [n, 12], datatype: 'FP32', data }] }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'elements' };
  },
  'nested data does not match the shape': (g) => {
    const n = g.int(2, 6);
    const rows = g.rows(n);
    const transposed = Array.from({ length: 12 }, (_, j) => rows.map((r) => r[j]!));
    const halves = rows.flat().reduce<number[][]>((acc, v, i) => (i % 6 === 0 ? acc.push([v]) : acc.at(-1)!.push(v), acc), []);
    const ragged = rows.map((r, i) => (i === 0 ? r.slice(0, 11) : r));
    const data = g.pick([transposed, halves, ragged, [rows], rows.map((r) => r.map((v) => [v]))]);
    return { kind: 'nested data does not match the shape', method: 'POST', path: g.inferPath(), body: { inputs: [{ name: 'input', shape: [n, 12], datatype: 'FP32', data }] }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'shape' };
  },
  'bad shape entry': (g) => {
    const body = g.request(1);
    const entry = g.pick(BAD_SHAPE_ENTRIES);
    body.inputs[0]!.shape = g.pick([[entry, 12], [1, entry], g.pick([entry, '1,12', { 0: 1, 1: 12 }])]);
    return { kind: 'bad shape entry', method: 'POST', path: g.inferPath(), body, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'shape' };
  },
  'zero rows': (g) => ({ kind: 'zero rows', method: 'POST', path: g.inferPath(), body: { inputs: [{ name: 'input', shape: [0, 12], datatype: 'FP32', data: [] }] }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'no rows' }),
  'non-number in FP32 data': (g) => {
    const body = g.request();
    const data = body.inputs[0]!.data as unknown[];
    const bad = g.pick(BAD_ELEMENTS);
    if (Array.isArray(data[0])) (data[g.int(0, data.length - 1)] as unknown[])[g.int(0, 11)] = bad;
    else data[g.int(0, data.length - 1)] = bad;
    return { kind: 'non-number in FP32 data', method: 'POST', path: g.inferPath(), body, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'element' };
  },
  'FP32 overflow': (g) => {
    const body = g.request();
    const flat = (body.inputs[0]!.data as unknown[]).flat() as number[];
    flat[g.int(0, flat.length - 1)] = g.pick([1e39, -1e39, 3.5e38, -5e38, 1e300, -1.7976931348623157e308]);
    body.inputs[0]!.data = flat;
    return { kind: 'FP32 overflow', method: 'POST', path: g.inferPath(), body, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'FP32' };
  },
  'NaN-like JSON tokens': (g) => {
    const token = g.pick(['NaN', 'Infinity', '-Infinity', 'nan', 'inf', 'undefined', '1e400', '-1e400', '0x10', '01', '+1', '.5']);
    const row = g.row().map(String);
    row[g.int(0, 11)] = token;
    const text = `{"inputs":[{"name":"input","shape":[1,12],"datatype":"FP32","data":[${row.join(',')}]}]}`;
    // 1e400 parses to Infinity (a valid JSON number) and is refused as not finite; the others are not JSON.
    return { kind: 'NaN-like JSON tokens', method: 'POST', path: g.inferPath(), body: text, status: 400, codes: /^-?1e400$/.test(token) ? ['WARDEN_INVALID_INPUT'] : ['WARDEN_BAD_REQUEST'] };
  },
  'arrays nested too deep': (g) => {
    const depth = g.pick([33, 34, 100, 1_000, g.int(5_000, 30_000)]);
    const body = JSON.stringify(g.request(1));
    const where = g.pick(['data', 'shape', 'datatype', 'id', 'outputs', 'name', 'input parameters']);
    let text: string;
    if (where === 'data') text = body.replace(/"data":\[.*?\]\]?/, `"data":${nest(depth)}`);
    else if (where === 'shape') text = body.replace('"shape":[1,12]', `"shape":${nest(depth, '1,12')}`);
    else if (where === 'datatype') text = body.replace('"datatype":"FP32"', `"datatype":${nest(depth, '"FP32"')}`);
    else if (where === 'name') text = body.replace('"name":"input"', `"name":${nest(depth, '"input"')}`);
    else if (where === 'id') text = `{"id":${nest(depth)},${body.slice(1)}`;
    else if (where === 'outputs') text = `{"outputs":${nest(depth)},${body.slice(1)}`;
    // Deep per-input parameters on an otherwise refused request: the error event must still reach the log.
    else text = body.replace('"name":"input"', `"name":"nope","parameters":{"p":${nest(depth)}}`);
    return { kind: 'arrays nested too deep', method: 'POST', path: g.inferPath(), body: text, status: 400, codes: ['WARDEN_INVALID_INPUT', 'WARDEN_BAD_REQUEST'] };
  },
  'inputs not an array': (g) => {
    const inputs = g.pick([{}, 'input', 1, null, true, { name: 'input', shape: [1, 12], datatype: 'FP32', data: g.row() }, undefined]);
    return { kind: 'inputs not an array', method: 'POST', path: g.inferPath(), body: inputs === undefined ? { id: 'x' } : { inputs }, status: 400, codes: ['WARDEN_BAD_REQUEST'], mention: 'inputs' };
  },
  'empty inputs': (g) => ({ kind: 'empty inputs', method: 'POST', path: g.inferPath(), body: { inputs: [] }, status: 400, codes: ['WARDEN_BAD_REQUEST'], mention: 'inputs' }),
  'input entry not an object': (g) => {
    const body = g.request();
    body.inputs[g.int(0, 0)] = g.pick(NOT_OBJECTS) as Record<string, unknown>;
    return { kind: 'input entry not an object', method: 'POST', path: g.inferPath(), body, status: 400, codes: ['WARDEN_BAD_REQUEST'], mention: 'inputs[0]' };
  },
  'duplicated inputs': (g) => {
    const body = g.request();
    body.inputs.push(...Array.from({ length: g.int(1, 3) }, () => ({ ...body.inputs[0] })));
    return { kind: 'duplicated inputs', method: 'POST', path: g.inferPath(), body, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'input' };
  },
  'body not an object': (g) => ({
    kind: 'body not an object',
    method: 'POST',
    path: g.pick([g.inferPath(), g.predictPath()]),
    body: g.pick(['[]', '[{"inputs":[]}]', '1', '"inputs"', 'null', 'true', '-0.5']),
    status: 400,
    codes: ['WARDEN_BAD_REQUEST'],
    mention: 'JSON object',
  }),
  'malformed JSON': (g) => {
    const junk = Array.from({ length: g.int(1, 40) }, () => String.fromCharCode(g.int(32, 126))).join('');
    const text = g.pick([
      '{',
      '}',
      '{"inputs": [}',
      "{'inputs': []}",
      '{inputs: []}',
      '{"inputs": [1,]}',
      '{"inputs": []}{"inputs": []}',
      '{"inputs": [] "id": "x"}',
      '{"inputs": "\u0001"}'.replace('\\u0001', '\u0001'),
      `{${junk}`,
      `x${junk}`,
    ]);
    return { kind: 'malformed JSON', method: 'POST', path: g.pick([g.inferPath(), g.predictPath()]), body: text, status: 400, codes: ['WARDEN_BAD_REQUEST'], mention: 'JSON' };
  },
  'truncated JSON': (g) => {
    const text = JSON.stringify(g.rand() < 0.7 ? g.request() : { instances: [g.instance(), g.instance()] });
    const cut = g.int(1, text.length - 1);
    return { kind: 'truncated JSON', method: 'POST', path: text.includes('instances') ? g.predictPath() : g.inferPath(), body: text.slice(0, cut), status: 400, codes: ['WARDEN_BAD_REQUEST'], mention: 'JSON' };
  },
  'empty body': (g) => ({ kind: 'empty body', method: 'POST', path: g.pick([g.inferPath(), g.predictPath()]), body: '', status: 400, codes: ['WARDEN_BAD_REQUEST'], mention: 'empty' }),
  'wrong content-type': (g) => {
    const contentType = g.pick([
      'text/plain',
      'text/html',
      'application/xml',
      'multipart/form-data; boundary=x',
      'image/png',
      'application/x-www-form-urlencoded',
      'application/octet-stream',
      'application/jsonx',
      null,
    ]);
    const path = g.pick([g.inferPath(), g.predictPath()]);
    // Form encoding is parsed as JSON (what `curl -d` means), so a non-JSON form body is a JSON syntax error.
    if (contentType === 'application/x-www-form-urlencoded') {
      const body = g.pick(['a=1&b=2', 'inputs=[]', JSON.stringify(g.request()).slice(0, 20)]);
      return { kind: 'wrong content-type', method: 'POST', path, body, contentType, status: 400, codes: ['WARDEN_BAD_REQUEST'], mention: 'JSON' };
    }
    const body = JSON.stringify(path.endsWith(':predict') ? { instances: [g.instance()] } : g.request());
    return { kind: 'wrong content-type', method: 'POST', path, body, contentType, status: 415, codes: ['WARDEN_UNSUPPORTED_MEDIA_TYPE'], mention: 'content-type' };
  },
  'body over the limit': (g) => {
    const size = g.pick([BODY_LIMIT + 1, BODY_LIMIT + g.int(2, 4096), 2 * BODY_LIMIT, g.int(3, 12) * BODY_LIMIT]);
    const head = '{"id":"';
    const tail = '","inputs":[{"name":"input","shape":[1,12],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12]}]}';
    const text = head + 'x'.repeat(size - head.length - tail.length) + tail;
    return { kind: 'body over the limit', method: 'POST', path: g.pick([g.inferPath(), g.predictPath()]), body: text, chunked: g.rand() < 0.3, status: 413, codes: ['WARDEN_BODY_TOO_LARGE'], mention: String(BODY_LIMIT) };
  },
  'more rows than serving.maxBatchRows': (g) => {
    const form = g.int(0, 2);
    if (form === 0) {
      const n = g.int(MAX_BATCH_ROWS + 1, MAX_BATCH_ROWS + 400);
      return { kind: 'more rows than serving.maxBatchRows', method: 'POST', path: g.inferPath(), body: { inputs: [{ name: 'input', shape: [n, 12], datatype: 'FP32', data: new Array(n * 12).fill(0) }] }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'maxBatchRows' };
    }
    if (form === 1) {
      const n = g.pick([1_000_000, 2 ** 31, Number.MAX_SAFE_INTEGER]);
      return { kind: 'more rows than serving.maxBatchRows', method: 'POST', path: g.inferPath(), body: { inputs: [{ name: 'input', shape: [n, 12], datatype: 'FP32', data: g.row() }] }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'maxBatchRows' };
    }
    const instances = Array.from({ length: MAX_BATCH_ROWS + g.int(1, 50) }, () => Object.fromEntries(FEATURES.map((f) => [f, 0])));
    return { kind: 'more rows than serving.maxBatchRows', method: 'POST', path: g.predictPath(), body: { instances }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'maxBatchRows' };
  },
  'bad outputs': (g) => {
    const body = g.request();
    const unknown = `out_${g.word()}`;
    const outputs = g.pick<unknown>([{}, 'variable', 1, null, true, [1], [{}], [{ name: 1 }], [null], ['variable'], [{ name: unknown }], [{ name: 'variable' }, { name: unknown }]]);
    body.outputs = outputs;
    const isUnknown = Array.isArray(outputs) && outputs.some((o) => (o as { name?: unknown })?.name === unknown);
    return { kind: 'bad outputs', method: 'POST', path: g.inferPath(), body, status: 400, codes: isUnknown ? ['WARDEN_INVALID_INPUT'] : ['WARDEN_BAD_REQUEST'], mention: isUnknown ? unknown : 'outputs' };
  },
  'bad id type': (g) => {
    const body = g.request();
    body.id = g.pick([1, 1.5, -7, true, false, null, {}, { id: 'x' }, [], ['x']]);
    return { kind: 'bad id type', method: 'POST', path: g.inferPath(), body, status: 400, codes: ['WARDEN_BAD_REQUEST'], mention: '"id"' };
  },
  'bad parameters type': (g) => {
    const body = g.request();
    body.parameters = g.pick([1, 'x', [], [{ a: 1 }], true, null]);
    return { kind: 'bad parameters type', method: 'POST', path: g.inferPath(), body, status: 400, codes: ['WARDEN_BAD_REQUEST'], mention: 'parameters' };
  },
  ':predict missing feature': (g) => {
    const instances = Array.from({ length: g.int(1, 5) }, () => g.instance());
    const missing = g.pick(FEATURES);
    delete instances[g.int(0, instances.length - 1)]![missing];
    return { kind: ':predict missing feature', method: 'POST', path: g.predictPath(), body: { instances }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: missing };
  },
  ':predict extra feature': (g) => {
    const instances = Array.from({ length: g.int(1, 5) }, () => g.instance());
    const extra = g.pick([`extra_${g.word()}`, 'cnt', 'Temp', 'instant']);
    instances[g.int(0, instances.length - 1)]![extra] = 1;
    return { kind: ':predict extra feature', method: 'POST', path: g.predictPath(), body: { instances }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: extra };
  },
  ':predict non-numeric feature': (g) => {
    const instances = Array.from({ length: g.int(1, 5) }, () => g.instance());
    const feature = g.pick(FEATURES);
    instances[g.int(0, instances.length - 1)]![feature] = g.pick(BAD_ELEMENTS.concat([[1], [], 'NaN']));
    return { kind: ':predict non-numeric feature', method: 'POST', path: g.predictPath(), body: { instances }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: feature };
  },
  ':predict non-finite feature': (g) => {
    const feature = g.pick(FEATURES);
    const text = JSON.stringify({ instances: [g.instance()] }).replace(new RegExp(`"${feature}":[^,}]+`), `"${feature}":${g.pick(['1e400', '-1e999'])}`);
    return { kind: ':predict non-finite feature', method: 'POST', path: g.predictPath(), body: text, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: feature };
  },
  ':predict non-object instance': (g) => {
    const instances: unknown[] = Array.from({ length: g.int(1, 4) }, () => g.instance());
    const at = g.int(0, instances.length - 1);
    instances[at] = g.pick(NOT_OBJECTS);
    return { kind: ':predict non-object instance', method: 'POST', path: g.predictPath(), body: { instances }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: `instances[${at}]` };
  },
  ':predict bad instances': (g) => {
    const instances = g.pick<unknown>([[], {}, 'x', 1, null, g.instance(), undefined]);
    return { kind: ':predict bad instances', method: 'POST', path: g.predictPath(), body: instances === undefined ? { inputs: [] } : { instances }, status: 400, codes: ['WARDEN_INVALID_INPUT'], mention: 'instances' };
  },
  ':predict on a model without named features': (g) => ({
    kind: ':predict on a model without named features',
    method: 'POST',
    path: g.pick(['/v1/models/busy:predict', '/v1/models/busy/versions/1:predict']),
    body: { instances: [g.instance()] },
    status: 400,
    codes: ['WARDEN_INVALID_INPUT'],
    mention: 'named features',
  }),
  'unknown route': (g) => {
    const w = g.word();
    const [method, p] = g.pick([
      ['POST', `/v3/models/gbr/infer`],
      ['POST', `/v2/models/gbr/infer/${w}`],
      ['POST', `/v2/models/gbr/${w}`],
      ['GET', `/v2/models/gbr/infer`],
      ['PUT', `/v2/models/gbr/infer`],
      ['DELETE', `/v2/models/gbr/infer`],
      ['PATCH', `/v2/models/gbr`],
      ['DELETE', `/v2/health/live`],
      ['GET', `/v2/models`],
      ['GET', `/v2/health`],
      ['GET', `/v2/${w}`],
      ['POST', `/v1/models/gbr:${w}`],
      ['POST', `/v1/models/gbr`],
      ['POST', `/v1/models/gbr/versions/1`],
      ['GET', `/v1/models/gbr:predict`],
      ['GET', `/${w}`],
      ['OPTIONS', `/v2/models/gbr/infer`],
    ] as const);
    return { kind: 'unknown route', method, path: p, ...(method === 'GET' || method === 'OPTIONS' ? {} : { body: g.request() }), status: 404, codes: ['WARDEN_NOT_FOUND'] };
  },
};

interface Answer {
  status: number;
  contentType: string;
  text: string;
  requestId: string | null;
}

async function send(url: string, c: Case, requestId: string): Promise<Answer> {
  const headers: Record<string, string> = { 'x-request-id': requestId };
  let body: BodyInit | undefined;
  if (c.body !== undefined) {
    const text = typeof c.body === 'string' ? c.body : JSON.stringify(c.body);
    const bytes = new TextEncoder().encode(text);
    if (c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/json';
    body = c.chunked
      ? new ReadableStream({
          start(controller) {
            for (let i = 0; i < bytes.length; i += 16 * 1024) controller.enqueue(bytes.subarray(i, i + 16 * 1024));
            controller.close();
          },
        })
      : bytes;
  }
  const res = await fetch(url + c.path, {
    method: c.method,
    headers,
    ...(body === undefined ? {} : { body }),
    ...(c.chunked ? { duplex: 'half' } : {}),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  } as RequestInit);
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text(), requestId: res.headers.get('x-request-id') };
}

/** Every way `answer` falls short of the contract for `c`; empty when it holds. */
function problems(c: Case, a: Answer): string[] {
  const out: string[] = [];
  if (a.status < 400 || a.status > 499) out.push(`status ${a.status} is not 4xx`);
  if (c.status !== undefined && a.status !== c.status) out.push(`status ${a.status}, expected ${c.status}`);
  if (!a.contentType.startsWith('application/json')) out.push(`content-type ${a.contentType}`);
  let body: { error?: unknown; code?: unknown } = {};
  try {
    body = JSON.parse(a.text);
  } catch {
    out.push('body is not JSON');
  }
  if (typeof body.error !== 'string' || body.error.trim().length < 8) out.push('error is not an informative string');
  if (typeof body.code !== 'string' || !/^WARDEN_[A-Z_]+$/.test(body.code)) out.push(`code ${String(body.code)} is not a WARDEN_ code`);
  else {
    const entry = errorCatalogue[body.code as keyof typeof errorCatalogue];
    if (!entry) out.push(`code ${body.code} is not in the catalogue`);
    else if (entry.status !== a.status) out.push(`code ${body.code} has status ${entry.status} in the catalogue, answered ${a.status}`);
    if (c.codes && !c.codes.includes(body.code)) out.push(`code ${body.code}, expected ${c.codes.join(' or ')}`);
  }
  if (c.mention !== undefined && typeof body.error === 'string' && !body.error.includes(c.mention)) out.push(`error does not mention ${JSON.stringify(c.mention)}`);
  return out;
}

describe('malformed request storm', () => {
  let srv: TestServer;
  let cases: Case[] = [];
  const valid = { inputs: [{ name: 'input', shape: [2, 12], datatype: 'FP32', data: expected.input.slice(0, 2) }] };

  beforeAll(async () => {
    srv = await startTestServer({ server: { bodyLimitBytes: BODY_LIMIT }, serving: { maxBatchRows: MAX_BATCH_ROWS } });
    await srv.warden.registry.push({ model: 'gbr', bytes: gbrBytes, aliases: ['champion'], features: FEATURES.map((name) => ({ name })) });
    await srv.warden.registry.push({ model: 'busy', bytes: logregBytes, aliases: ['champion'] });
    await srv.warden.table.settled();
  });
  afterAll(() => srv?.close());

  it(`answers ${STORM_SIZE} seeded malformed requests with 4xx WARDEN_* errors, never 5xx or a hang`, async () => {
    const g = new Gen(prng(SEED));
    const kinds = Object.keys(generators);
    cases = Array.from({ length: STORM_SIZE }, (_, i) => generators[kinds[i % kinds.length]!]!(g));
    const failures: string[] = [];
    const seenKinds = new Map<string, number>();
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < cases.length; i = next++) {
        const c = cases[i]!;
        const requestId = `storm-${i}`;
        seenKinds.set(c.kind, (seenKinds.get(c.kind) ?? 0) + 1);
        const where = `#${i} ${c.kind}: ${c.method} ${c.path.slice(0, 80)} ${typeof c.body === 'string' ? c.body.slice(0, 80) : (JSON.stringify(c.body) ?? '').slice(0, 80)}`;
        try {
          const a = await send(srv.url, c, requestId);
          statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
          const found = problems(c, a);
          if (a.requestId !== requestId) found.push(`x-request-id ${a.requestId}, expected ${requestId}`);
          if (found.length) failures.push(`${where} → ${found.join('; ')} (${a.status} ${a.text.slice(0, 200)})`);
        } catch (e) {
          failures.push(`${where} → no answer: ${(e as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    expect(failures.slice(0, 15), `${failures.length} of ${cases.length} answers broke the contract`).toEqual([]);
    expect(seenKinds.size).toBe(kinds.length);
    for (const n of seenKinds.values()) expect(n).toBeGreaterThanOrEqual(Math.floor(STORM_SIZE / kinds.length));
    expect([...statuses.keys()].every((s) => s >= 400 && s < 500)).toBe(true);
    expect([...statuses.keys()].sort()).toEqual(expect.arrayContaining([400, 404, 413, 415]));
  });

  it('keeps serving, logging and exporting metrics after the storm', async () => {
    expect((await srv.json('GET', '/v2/health/live')).status).toBe(200);
    expect((await srv.json('GET', '/v2/health/ready')).status).toBe(200);

    const ok = await srv.json('POST', '/v2/models/gbr/infer', valid, { 'x-request-id': 'after-storm-infer' });
    expect(ok.status).toBe(200);
    ok.body.outputs[0].data.forEach((v: number, i: number) => expect(Math.abs(v - expected.output[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(expected.output[i]!)));
    const instance = Object.fromEntries(FEATURES.map((f, j) => [f, expected.input[0]![j]!]));
    const predicted = await srv.json('POST', '/v1/models/gbr:predict', { instances: [instance] }, { 'x-request-id': 'after-storm-predict' });
    expect(predicted.status).toBe(200);
    expect(predicted.body.predictions[0]).toBe(ok.body.outputs[0].data[0]);

    // A valid request with deeply nested per-input parameters succeeds, and neither it nor the storm's deep
    // values keep the prediction log from writing (they are logged as a note instead of the raw value).
    const deep = JSON.stringify(valid).replace('"name":"input"', `"name":"input","parameters":{"p":${nest(20_000)}}`);
    const deepRes = await fetch(`${srv.url}/v2/models/gbr/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'after-storm-deep' }, body: deep });
    expect(deepRes.status).toBe(200);

    const log = srv.warden.log!;
    await log.flush();
    const stats = log.snapshot();
    expect(stats.dropped).toBe(0);
    expect(stats.depth).toBe(0);
    expect(stats.written).toBe(stats.enqueued);
    expect(stats.written).toBeGreaterThan(STORM_SIZE / 2);

    // Refused requests that reached the model are logged as errors, the deeply nested ones with a note.
    const refused = cases.findIndex((c) => c.kind === 'wrong input name');
    const refusedDeep = cases.findIndex((c) => typeof c.body === 'string' && c.body.includes('"name":"nope","parameters":{"p":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['));
    expect(refused).toBeGreaterThanOrEqual(0);
    expect(refusedDeep).toBeGreaterThanOrEqual(0);
    for (const [id, status] of [
      ['after-storm-infer', 'ok'],
      ['after-storm-predict', 'ok'],
      ['after-storm-deep', 'ok'],
      [`storm-${refused}`, 'error'],
      [`storm-${refusedDeep}`, 'error'],
    ] as const) {
      const found = await srv.json('GET', `/api/v1/predictions?requestId=${id}`);
      expect(found.status).toBe(200);
      expect(found.body.events, id).toHaveLength(1);
      expect(found.body.events[0].status).toBe(status);
    }
    // Served requests are logged as their decoded tensors (so the deep parameters never reach the log);
    // refused ones as sent, with a note in place of values nested too deep to store.
    const deepEvent = (await srv.json('GET', '/api/v1/predictions?requestId=after-storm-deep')).body.events[0];
    expect(deepEvent.inputs[0].name).toBe('input');
    expect(deepEvent.inputs[0].data.length).toBe(deepEvent.inputs[0].shape[0] * 12);
    const refusedEvent = (await srv.json('GET', `/api/v1/predictions?requestId=storm-${refusedDeep}`)).body.events[0];
    expect(JSON.stringify(refusedEvent.inputs)).toMatch(/^"\[excerpt: refused request over .* nested deeper than 64 levels/);

    const metrics = await fetch(`${srv.url}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toContain('warden_inference_errors_total');
    expect(text).toMatch(/warden_inference_requests_total\{[^}]*model="gbr"[^}]*outcome="ok"/);
    // Hundreds of invented model names must not become label values: they fold into `_unknown`.
    const models = new Set([...text.matchAll(/model="([^"]*)"/g)].map((m) => m[1]));
    expect([...models].sort()).toEqual(['_unknown', 'busy', 'gbr'].filter((m) => models.has(m)));
    expect(models.has('_unknown')).toBe(true);
  });

  // Fastify raises these before routing (bad percent-encoding, over-long path parameter); the
  // `frameworkErrors` option sends them through the same error handler as everything else.
  it('answers framework-level URL errors in the WARDEN_ error shape', async () => {
    for (const p of ['/v2/models/%E0%A4%A/infer', `/v2/models/${'a'.repeat(300)}/infer`, `/v1/models/${'b'.repeat(300)}:predict`]) {
      const a = await send(srv.url, { kind: 'framework', method: 'POST', path: p, body: valid }, 'framework-1');
      expect(problems({ kind: 'framework', method: 'POST', path: p }, a), p).toEqual([]);
    }
  });
});
