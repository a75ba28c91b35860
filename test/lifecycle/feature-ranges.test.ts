/**
 * Allowed feature ranges from training to the door. The trainer records each feature's training min and max in
 * `warden.features`; a version whose signature carries them refuses, at the door, a value outside [min, max]
 * (`temp: 70` on a feature trained on 0.02–0.96 was served as 11,091 rentals) on both request forms, and
 * monitoring counts the refused values as out of range while the served ones at the bounds stay in range. The
 * model receives float32, so the check is on float32: a value the model cannot tell from a bound is inside it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bikeRows } from '../../scripts/demo/monitoring-demo.ts';
import { allowedRange, BIKE_SHARING_CSV, BIKE_SHARING_EXCLUDE, bikeSharingDemoOptions, train, type TrainResult } from '../../src/lifecycle/index.ts';
import { decodeInstances, decodeTensor } from '../../src/quality/index.ts';
import { runWarden } from '../helpers/cli.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const TEMP = { name: 'temp', datatype: 'FP32', min: 0.02, max: 0.96 };
const HUM = { name: 'hum', datatype: 'FP32' };

describe('the door checks allowed ranges on the float32 value the model receives', () => {
  it(':predict refuses a value outside [min, max], naming the feature and the bound', () => {
    expect(() => decodeInstances([{ temp: 70, hum: 0.5 }], [TEMP, HUM], 10)).toThrow(
      expect.objectContaining({ code: 'WARDEN_INVALID_INPUT', message: 'instances[0].temp = 70 is above the allowed maximum 0.96' }),
    );
    expect(() => decodeInstances([{ temp: 0.5, hum: 0 }, { temp: -1, hum: 0 }], [TEMP, HUM], 10)).toThrow('instances[1].temp = -1 is below the allowed minimum 0.02');
  });

  it(':predict accepts a value equal to a bound in float32 (0.0199999996 for a minimum of 0.02)', () => {
    // Before: compared in float64, so a client printing float32 values at 9 digits was refused at the minimum.
    expect(Math.fround(0.0199999996)).toBe(Math.fround(0.02));
    expect(decodeInstances([{ temp: 0.0199999996, hum: 0.5 }], [TEMP, HUM], 10)).toEqual(Float32Array.of(0.02, 0.5));
    expect(() => decodeInstances([{ temp: 0.0199999, hum: 0.5 }], [TEMP, HUM], 10)).toThrow('below the allowed minimum 0.02');
  });

  it(':predict refuses a value beyond float32 range instead of passing Infinity to the model', () => {
    expect(() => decodeInstances([{ temp: 0.5, hum: 1e39 }], [TEMP, HUM], 10)).toThrow('instances[0].hum = 1e+39 overflows FP32');
  });

  it('the tensor form refuses the same values when given the features, naming row, column and feature', () => {
    const spec = { name: 'input', datatype: 'FP32', shape: [-1, 2] };
    const raw = (data: number[]) => ({ name: 'input', datatype: 'FP32', shape: [data.length / 2, 2], data });
    expect(() => decodeTensor(raw([0.5, 0.5, 70, 0.5]), spec, 10, [TEMP, HUM])).toThrow(
      expect.objectContaining({ code: 'WARDEN_INVALID_INPUT', message: 'input input: row 1, column 0 = 70 is above the allowed maximum 0.96 of feature temp' }),
    );
    expect(decodeTensor(raw([0.0199999996, 5]), spec, 10, [TEMP, HUM]).data).toEqual(Float32Array.of(0.02, 5));
    // Without features (an input they do not describe) nothing changes.
    expect(decodeTensor(raw([70, 0.5]), spec, 10).data).toEqual(Float32Array.of(70, 0.5));
  });
});

describe('a trained bike model on a real server', () => {
  let srv: TestServer;
  let model: TrainResult;
  let dir = '';
  const rows2011 = bikeRows(0).map((r) => r.values);
  const instance = (over: Record<string, number> = {}) => ({ ...rows2011[100]!, ...over });

  beforeAll(async () => {
    srv = await startTestServer({ monitoring: { tickMs: 100, idleCloseMs: 200 }, predictionLog: { flushIntervalMs: 20 } });
    dir = await mkdtemp(join(tmpdir(), 'warden-ranges-'));
    model = await train({ ...bikeSharingDemoOptions('linear'), rangeMargin: 0 });
    // The chain as a user runs it: warden train writes the model and its feature list, warden push sends them.
    const [file, features] = [join(dir, 'bike.onnx'), join(dir, 'bike.features.json')];
    const trained = await runWarden([
      'train', '--csv', BIKE_SHARING_CSV, '--target', 'cnt', '--model', 'linear', '--where', 'yr=0',
      '--exclude', BIKE_SHARING_EXCLUDE.join(','), '--out', file, '--features-out', features, '--range-margin', '0',
    ]);
    expect(trained.code, trained.stderr).toBe(0);
    expect(trained.stdout).toContain(`wrote:    ${features} (feature list for warden push --features)`);
    expect(JSON.parse(await readFile(features, 'utf8'))).toEqual(model.features);
    for (const args of [['--model', 'bikes-listed', '--features', features], ['--model', 'bikes']]) {
      const pushed = await runWarden(['push', file, '--alias', 'champion', ...args], { WARDEN_URL: srv.url });
      expect(pushed.code, pushed.stderr).toBe(0);
    }
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the trainer writes each feature\'s training min and max (--range-margin 0), and widens them by default', () => {
    const temp = model.features.find((f) => f.name === 'temp');
    expect(temp).toMatchObject({ min: 0.02, max: 0.96 });
    expect(allowedRange(0.02, 0.96, 0.1)).toEqual([0.02 - 0.094, 0.96 + 0.094]);
    // A constant column is widened by its magnitude (at least 1), so a one-value feature still admits its value.
    expect(allowedRange(5, 5, 0.1)).toEqual([4.5, 5.5]);
    expect(allowedRange(0, 0, 0.1)).toEqual([-0.1, 0.1]);
  });

  it("the default margin serves 2012's hottest hour (temp 1.0 against 2011's 0.96) and refuses temp: 70", async () => {
    const widened = await train(bikeSharingDemoOptions('linear'));
    await srv.warden.registry.push({ model: 'bikes-default', bytes: widened.onnx });
    await srv.warden.table.settled();
    expect((await srv.json('POST', '/v1/models/bikes-default:predict', { instances: [instance({ temp: 1.0 })] })).status).toBe(200);
    const res = await srv.json('POST', '/v1/models/bikes-default:predict', { instances: [instance({ temp: 70 })] });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/^instances\[0\]\.temp = 70 is above the allowed maximum 1\.05/);
  });

  it('refuses temp: 70 on :predict with 400 naming the feature and its training maximum', async () => {
    expect((await srv.json('POST', '/v1/models/bikes-listed:predict', { instances: [instance()] })).status).toBe(200);
    const res = await srv.json('POST', '/v1/models/bikes-listed:predict', { instances: [instance({ temp: 70 })] });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'WARDEN_INVALID_INPUT', error: 'instances[0].temp = 70 is above the allowed maximum 0.96' });
  });

  it('refuses temp: 70 when pushed without --features, from the ranges in the file', async () => {
    const version = await srv.json('GET', '/api/v1/models/bikes/versions/1');
    expect(version.body.signature.features.find((f: { name: string }) => f.name === 'temp')).toMatchObject({ min: 0.02, max: 0.96 });
    const res = await srv.json('POST', '/v1/models/bikes:predict', { instances: [instance({ temp: 70 })] });
    expect(res.status).toBe(400);
  });

  it('refuses temp: 70 on the OIP tensor form too', async () => {
    const names = model.features.map((f) => f.name);
    const data = names.map((n) => (n === 'temp' ? 70 : instance()[n]!));
    const res = await srv.json('POST', '/v2/models/bikes-listed/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, names.length], data }] });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('input input: row 0, column 7 = 70 is above the allowed maximum 0.96 of feature temp');
  });

  it('monitoring counts the refused value out of range, and served values at the bounds in range', async () => {
    const ref = await srv.json('PUT', '/api/v1/models/bikes-listed/versions/champion/reference', {
      rows: rows2011,
      config: { window: { kind: 'count', size: 10_000 }, columns: ['temp', 'hum'] },
    });
    expect(ref.status, JSON.stringify(ref.body)).toBe(201);
    // The 10 hours of 2011 at the training minimum of temp (0.02, logged as the float32 0.0199999996) and 20 others.
    const cold = rows2011.filter((r) => r.temp === 0.02);
    expect(cold).toHaveLength(10);
    const served = await srv.json('POST', '/v1/models/bikes-listed:predict', { instances: [...cold, ...rows2011.slice(1000, 1020)] });
    expect(served.status).toBe(200);
    expect((await srv.json('POST', '/v1/models/bikes-listed:predict', { instances: [instance({ temp: 70 })] })).status).toBe(400);
    await srv.warden.log!.flush();
    await srv.warden.log!.flush();
    expect((await srv.json('POST', '/api/v1/monitoring/flush', {})).status).toBe(200);
    const [window] = (await srv.json('GET', '/api/v1/models/bikes-listed/versions/champion/monitoring/windows')).body.windows;
    expect(window.rows).toBe(31);
    const check = window.quality.checks.find((c: { column: string; metric: string }) => c.column === 'temp' && c.metric === 'out_of_range_share');
    // Before the float32 bounds in monitoring, the 10 served hours at 0.02 counted too: 11/31.
    expect(check).toMatchObject({ value: 1 / 31, failed: true });
  });
});
