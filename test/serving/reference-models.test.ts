/**
 * Served predictions against independent references, end to end over HTTP:
 * - the scikit-learn reference models in test/fixtures/models, whose `.expected.json` holds what scikit-learn
 *   1.2.1 itself predicted (`estimator.predict` / `predict_proba[:, 1]`) for 64 probe rows;
 * - the built-in trainer's demo models, whose `TrainResult.predict` computes the graph in float32.
 * Closeness is |served − expected| ≤ 1e-5·|expected| (relative 1e-5, no absolute slack needed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BIKE_SHARING_CSV, bikeSharingDemoOptions, train, type TrainerKind, type TrainResult } from '../../src/lifecycle/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const RELATIVE = 1e-5;

interface Expected {
  features: string[];
  input: number[][];
  output: number[];
}

const reference = ['bike_gbr', 'bike_busy_logreg'].map((name) => ({
  name,
  model: name.replaceAll('_', '-'),
  bytes: readFileSync(path.join(fixturesDir, 'models', `${name}.onnx`)),
  expected: JSON.parse(readFileSync(path.join(fixturesDir, 'models', `${name}.expected.json`), 'utf8')) as Expected,
}));

/** Fails on the first element where `actual` is not within `RELATIVE` of `expected`, naming it. */
function expectClose(actual: readonly number[], expected: ArrayLike<number>, what: string): void {
  expect(actual, what).toHaveLength(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= RELATIVE * Math.abs(e))) expect.fail(`${what}[${i}]: served ${a}, expected ${e} (relative ${RELATIVE})`);
    if (e !== 0) worst = Math.max(worst, Math.abs(a - e) / Math.abs(e));
  }
  expect(worst).toBeLessThanOrEqual(RELATIVE);
}

/** 200 rows of the bike-sharing CSV spread over both years (every 87th row), as objects keyed by column. */
function bikeRows(count: number): Record<string, number>[] {
  const [header, ...lines] = readFileSync(BIKE_SHARING_CSV, 'utf8').trim().split(/\r?\n/);
  const columns = header!.split(',');
  const step = Math.floor(lines.length / count);
  const out: Record<string, number>[] = [];
  for (let r = 0; out.length < count; r += step) {
    const cells = lines[r]!.split(',');
    out.push(Object.fromEntries(columns.map((c, j) => [c, Number(cells[j])])));
  }
  return out;
}

describe('serving matches references over HTTP', () => {
  let srv: TestServer;
  const trained = {} as Record<TrainerKind, TrainResult>;

  beforeAll(async () => {
    srv = await startTestServer();
    for (const ref of reference) {
      // The expected.json column order is the input's, so the same model also serves the named-feature form.
      await srv.warden.registry.push({
        model: ref.model,
        bytes: ref.bytes,
        aliases: ['champion'],
        features: ref.expected.features.map((name) => ({ name })),
      });
    }
    for (const kind of ['linear', 'logistic'] as const) {
      trained[kind] = await train(bikeSharingDemoOptions(kind));
      await srv.warden.registry.push({ model: `demo-${kind}`, bytes: trained[kind].onnx, aliases: ['champion'] });
    }
    await srv.warden.table.settled();
  });
  afterAll(() => srv?.close());

  describe.each(reference)('$name.onnx against scikit-learn', ({ model, expected }) => {
    it('the 64 probe rows in one batch: outputs match .expected.json', async () => {
      expect(expected.input).toHaveLength(64);
      const res = await srv.json('POST', `/v2/models/${model}/infer`, {
        inputs: [{ name: 'input', shape: [64, 12], datatype: 'FP32', data: expected.input }],
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.outputs).toHaveLength(1);
      expect(res.body.outputs[0].shape).toEqual([64, 1]);
      expectClose(res.body.outputs[0].data, expected.output, `${model} batch`);
    });

    it('each probe row alone, through the versioned path: same outputs', async () => {
      const served: number[] = [];
      for (const row of expected.input) {
        const res = await srv.json('POST', `/v2/models/${model}/versions/1/infer`, {
          inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: row }],
        });
        expect(res.status).toBe(200);
        served.push(res.body.outputs[0].data[0]);
      }
      expectClose(served, expected.output, `${model} single rows`);
    });

    it('the named-feature form (:predict with instances) gives the same outputs', async () => {
      const instances = expected.input.map((row) => Object.fromEntries(expected.features.map((f, j) => [f, row[j]!])));
      const res = await srv.json('POST', `/v1/models/${model}:predict`, { instances });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expectClose(res.body.predictions, expected.output, `${model} :predict`);
    });
  });

  describe.each(['linear', 'logistic'] as const)('trained %s demo model against TrainResult.predict', (kind) => {
    const rows = bikeRows(200);

    it('serves 200 bike-sharing rows through /v2 infer and :predict with the trainer’s own predictions', async () => {
      const result = trained[kind];
      const features = result.features.map((f) => f.name);
      expect(features).not.toContain('cnt');
      const matrix = rows.map((row) => features.map((f) => row[f]!));
      const want = result.predict(matrix);
      expect(want).toHaveLength(200);

      const model = `demo-${kind}`;
      const oip = await srv.json('POST', `/v2/models/${model}/infer`, {
        inputs: [{ name: result.inputName, shape: [200, features.length], datatype: 'FP32', data: matrix }],
      });
      expect(oip.status, JSON.stringify(oip.body)).toBe(200);
      expect(oip.body.outputs[0]).toMatchObject({ name: result.outputName, shape: [200, 1] });
      expectClose(oip.body.outputs[0].data, want, `${model} /v2 infer`);

      const instances = rows.map((row) => Object.fromEntries(features.map((f) => [f, row[f]!])));
      const predict = await srv.json('POST', `/v1/models/${model}:predict`, { instances });
      expect(predict.status, JSON.stringify(predict.body)).toBe(200);
      expect(predict.body).toMatchObject({ model_name: model, model_version: '1' });
      expect(predict.headers.get('x-model-version')).toBe('1');
      expectClose(predict.body.predictions, want, `${model} :predict`);

      // The named features reach the graph in the trainer's column order: reordering an instance's keys changes nothing.
      const reversed = rows.slice(0, 5).map((row) => Object.fromEntries([...features].reverse().map((f) => [f, row[f]!])));
      const again = await srv.json('POST', `/v1/models/${model}:predict`, { instances: reversed });
      expectClose(again.body.predictions, want.slice(0, 5), `${model} :predict reordered keys`);
      if (kind === 'logistic') for (const p of predict.body.predictions) expect(p > 0 && p < 1).toBe(true);
    });
  });
});
