/**
 * Dynamic batching (src/serving/batcher.ts).
 * - Unit: a fake runner whose runs stay pending until the test settles them, so the order of
 *   arrivals and completions is exact: what runs alone, what is merged, what each caller gets back.
 * - Integration: 64 concurrent single-row requests over real HTTP to bike_gbr.onnx; every response
 *   must equal what scikit-learn 1.2.1 predicted for that row (`estimator.predict`, in
 *   bike_gbr.expected.json) to 1e-5 relative, with fewer onnxruntime runs than requests.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DecodedTensor, TensorData } from '../../src/quality/index.ts';
import { Batcher, type BatchRunner } from '../../src/serving/batcher.ts';
import type { OutputTensor } from '../../src/serving/index.ts';
import type { TensorSpec } from '../../src/storage/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

interface Call {
  inputs: readonly DecodedTensor[];
  outputNames: readonly string[] | undefined;
  /** Settles the run with what the toy model computes from its inputs. */
  finish(): void;
  resolve(out: OutputTensor[]): void;
  reject(e: unknown): void;
}

/**
 * The toy model: input `x` [n, 2] → `sum` [n, 1] (x0 + x1) and `pair` [n, 2] (x0 · 10, x1 · 10).
 * Outputs come back in the order asked for (all, in signature order, when none are named), as
 * onnxruntime's session does.
 */
function toyModel(inputs: readonly DecodedTensor[], outputNames?: readonly string[]): OutputTensor[] {
  const x = inputs.find((t) => t.name === 'x')!;
  const n = x.dims[0]!;
  const data = Array.from(x.data as Float32Array);
  const all: OutputTensor[] = [
    { name: 'sum', datatype: 'FP32', shape: [n, 1], data: Array.from({ length: n }, (_, i) => data[2 * i]! + data[2 * i + 1]!) },
    { name: 'pair', datatype: 'FP32', shape: [n, 2], data: data.map((v) => v * 10) },
  ];
  return outputNames?.length ? outputNames.map((name) => all.find((o) => o.name === name)!) : all;
}

/** A runner whose every run waits for the test to settle it. */
class FakeRunner implements BatchRunner {
  readonly calls: Call[] = [];

  run(inputs: readonly DecodedTensor[], outputNames?: readonly string[]): Promise<OutputTensor[]> {
    return new Promise((resolve, reject) => {
      this.calls.push({ inputs, outputNames, finish: () => resolve(toyModel(inputs, outputNames)), resolve, reject });
    });
  }
}

/** A request for `x` with these rows (each [a, b]). */
function rowsOf(...rows: [number, number][]): DecodedTensor[] {
  return [{ name: 'x', datatype: 'FP32', dims: [rows.length, 2], data: Float32Array.from(rows.flat()) }];
}

/** Lets queued continuations (promise callbacks, the batcher's drain) run. */
const settle = () => new Promise<void>((r) => setImmediate(r));

describe('Batcher with a controlled runner', () => {
  it('runs a lone request at once, alone, with its own tensors and output names', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, 100);
    const inputs = rowsOf([1, 2]);
    const pending = batcher.run(inputs, ['sum']);
    expect(runner.calls).toHaveLength(1);
    expect(runner.calls[0]!.inputs).toBe(inputs);
    expect(runner.calls[0]!.outputNames).toEqual(['sum']);
    runner.calls[0]!.finish();
    expect(await pending).toEqual([{ name: 'sum', datatype: 'FP32', shape: [1, 1], data: [3] }]);

    // Idle again: the next request also runs at once.
    const next = batcher.run(rowsOf([5, 5]));
    expect(runner.calls).toHaveLength(2);
    runner.calls[1]!.finish();
    expect((await next)[0]!.data).toEqual([10]);
  });

  it('merges requests that arrive during a run into one run, and gives each caller exactly its rows', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, 100);
    const first = batcher.run(rowsOf([0, 0]));
    const b = batcher.run(rowsOf([1, 2]));
    const c = batcher.run(rowsOf([3, 4], [5, 6]));
    const d = batcher.run(rowsOf([7, 8]));
    await settle();
    expect(runner.calls, 'nothing more runs while the first is in flight').toHaveLength(1);

    runner.calls[0]!.finish();
    await first;
    await settle();
    expect(runner.calls, 'the three waiting requests run as one').toHaveLength(2);
    const merged = runner.calls[1]!;
    expect(merged.inputs).toHaveLength(1);
    expect(merged.inputs[0]!.name).toBe('x');
    expect(merged.inputs[0]!.datatype).toBe('FP32');
    expect(merged.inputs[0]!.dims).toEqual([4, 2]);
    expect(merged.inputs[0]!.data).toBeInstanceOf(Float32Array);
    expect(Array.from(merged.inputs[0]!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    merged.finish();
    expect(await b).toEqual([
      { name: 'sum', datatype: 'FP32', shape: [1, 1], data: [3] },
      { name: 'pair', datatype: 'FP32', shape: [1, 2], data: [10, 20] },
    ]);
    expect(await c).toEqual([
      { name: 'sum', datatype: 'FP32', shape: [2, 1], data: [7, 11] },
      { name: 'pair', datatype: 'FP32', shape: [2, 2], data: [30, 40, 50, 60] },
    ]);
    expect(await d).toEqual([
      { name: 'sum', datatype: 'FP32', shape: [1, 1], data: [15] },
      { name: 'pair', datatype: 'FP32', shape: [1, 2], data: [70, 80] },
    ]);
    await settle();
    expect(runner.calls).toHaveLength(2);

    // After a merged run (concurrent traffic comes in waves) the next request waits until the end of the
    // event loop's I/O phase for the rest of its wave: the two below run as one batch, no lone run first.
    const e = batcher.run(rowsOf([1, 1]));
    const f = batcher.run(rowsOf([2, 2]));
    expect(runner.calls).toHaveLength(2);
    await settle();
    expect(runner.calls).toHaveLength(3);
    expect(runner.calls[2]!.inputs[0]!.dims).toEqual([2, 2]);
    runner.calls[2]!.finish();
    await Promise.all([e, f]);
    await settle();
    // A request that waited and found no company runs alone; after that, traffic is idle and runs at once.
    const g = batcher.run(rowsOf([3, 3]));
    await settle();
    expect(runner.calls).toHaveLength(4);
    expect(runner.calls[3]!.inputs[0]!.dims).toEqual([1, 2]);
    runner.calls[3]!.finish();
    await g;
    await settle();
    void batcher.run(rowsOf([1, 1]));
    expect(runner.calls).toHaveLength(5);
  });

  it('gives each member of a merged run only the outputs it asked for, in the order it asked', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, 100);
    const first = batcher.run(rowsOf([0, 0]));
    const onlyPair = batcher.run(rowsOf([1, 2]), ['pair']);
    const onlySum = batcher.run(rowsOf([3, 4]), ['sum']);
    const reversed = batcher.run(rowsOf([5, 6]), ['pair', 'sum']);
    const everything = batcher.run(rowsOf([7, 8]));
    runner.calls[0]!.finish();
    await first;
    await settle();
    expect(runner.calls).toHaveLength(2);
    runner.calls[1]!.finish();

    expect(await onlyPair).toEqual([{ name: 'pair', datatype: 'FP32', shape: [1, 2], data: [10, 20] }]);
    expect(await onlySum).toEqual([{ name: 'sum', datatype: 'FP32', shape: [1, 1], data: [7] }]);
    // Alone, the runtime answers in the order asked; a merged run must not change that.
    expect((await reversed).map((o) => o.name)).toEqual(['pair', 'sum']);
    expect((await reversed).map((o) => o.data)).toEqual([[50, 60], [11]]);
    expect((await everything).map((o) => o.name)).toEqual(['sum', 'pair']);
  });

  it('runs a single waiting request alone, with its own tensors and output names', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, 100);
    const first = batcher.run(rowsOf([0, 0]));
    const inputs = rowsOf([2, 3]);
    const waiting = batcher.run(inputs, ['sum']);
    runner.calls[0]!.finish();
    await first;
    await settle();
    expect(runner.calls).toHaveLength(2);
    expect(runner.calls[1]!.inputs).toBe(inputs);
    expect(runner.calls[1]!.outputNames).toEqual(['sum']);
    runner.calls[1]!.finish();
    expect((await waiting)[0]!.data).toEqual([5]);
  });

  it('respects maxRows: a request that would overflow the waiting batch runs directly', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, 4);
    const first = batcher.run(rowsOf([0, 0]));
    const three = batcher.run(rowsOf([1, 1], [2, 2], [3, 3]));
    expect(runner.calls).toHaveLength(1);
    const overflowInputs = rowsOf([4, 4], [5, 5]);
    const overflow = batcher.run(overflowInputs);
    expect(runner.calls, '3 waiting + 2 > 4: runs now, beside the in-flight run').toHaveLength(2);
    expect(runner.calls[1]!.inputs).toBe(overflowInputs);
    const one = batcher.run(rowsOf([6, 6]));
    expect(runner.calls, '3 waiting + 1 = 4: waits').toHaveLength(2);

    runner.calls[1]!.finish();
    expect((await overflow)[0]!.data).toEqual([8, 10]);
    runner.calls[0]!.finish();
    await first;
    await settle();
    expect(runner.calls).toHaveLength(3);
    expect(runner.calls[2]!.inputs[0]!.dims).toEqual([4, 2]);
    runner.calls[2]!.finish();
    expect((await three)[0]!.data).toEqual([2, 4, 6]);
    expect((await one)[0]!.data).toEqual([12]);
  });

  it('falls back to running each member alone when the merged run throws: only the bad one fails', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, 100);
    const first = batcher.run(rowsOf([0, 0]));
    const good1 = batcher.run(rowsOf([1, 2]), ['sum']);
    const bad = batcher.run(rowsOf([3, 4]));
    const good2 = batcher.run(rowsOf([5, 6]));
    runner.calls[0]!.finish();
    await first;
    await settle();
    expect(runner.calls).toHaveLength(2);
    runner.calls[1]!.reject(new Error('merged run failed'));
    await settle();
    expect(runner.calls, 'each member is retried alone').toHaveLength(5);
    const alone = runner.calls.slice(2);
    expect(alone.map((c) => Array.from(c.inputs[0]!.data as Float32Array))).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(alone.map((c) => c.outputNames)).toEqual([['sum'], undefined, undefined]);
    alone[0]!.finish();
    alone[1]!.reject(new Error('bad row'));
    alone[2]!.finish();
    expect(await good1).toEqual([{ name: 'sum', datatype: 'FP32', shape: [1, 1], data: [3] }]);
    await expect(bad).rejects.toThrow('bad row');
    expect((await good2)[0]!.data).toEqual([11]);
  });

  it('falls back to running each member alone when an output does not have one row per input row', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, 100);
    const first = batcher.run(rowsOf([0, 0]));
    const b = batcher.run(rowsOf([1, 2]));
    const c = batcher.run(rowsOf([3, 4]));
    runner.calls[0]!.finish();
    await first;
    await settle();
    // A model that reduces over the batch: one value for the whole run.
    runner.calls[1]!.resolve([{ name: 'sum', datatype: 'FP32', shape: [1], data: [10] }]);
    await settle();
    expect(runner.calls).toHaveLength(4);
    runner.calls[2]!.finish();
    runner.calls[3]!.finish();
    expect((await b)[0]!.data).toEqual([3]);
    expect((await c)[0]!.data).toEqual([7]);
  });

  it('keeps draining after a lone run fails', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, 100);
    const first = batcher.run(rowsOf([0, 0]));
    const waiting = batcher.run(rowsOf([1, 1]));
    runner.calls[0]!.reject(new Error('boom'));
    await expect(first).rejects.toThrow('boom');
    await settle();
    expect(runner.calls).toHaveLength(2);
    runner.calls[1]!.finish();
    expect((await waiting)[0]!.data).toEqual([2]);
  });

  it('stacks integer tensors and several inputs, each input by name', async () => {
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, 100);
    const req = (ids: bigint[], w: number[]): DecodedTensor[] => [
      { name: 'w', datatype: 'FP64', dims: [w.length], data: Float64Array.from(w) },
      { name: 'ids', datatype: 'INT64', dims: [ids.length, 1], data: BigInt64Array.from(ids) },
    ];
    const first = batcher.run(req([0n], [0]));
    void batcher.run(req([1n, 2n], [0.5, 1.5]));
    // Inputs listed in another order: matched by name, not position.
    void batcher.run(req([3n], [2.5]).reverse());
    runner.calls[0]!.resolve([]);
    await first;
    await settle();
    const merged = runner.calls[1]!.inputs;
    const byName = Object.fromEntries(merged.map((t) => [t.name, t]));
    expect(byName.ids!.dims).toEqual([3, 1]);
    expect(byName.ids!.data).toBeInstanceOf(BigInt64Array);
    expect(Array.from(byName.ids!.data as BigInt64Array)).toEqual([1n, 2n, 3n]);
    expect(byName.w!.dims).toEqual([3]);
    expect(Array.from(byName.w!.data as Float64Array)).toEqual([0.5, 1.5, 2.5]);
  });

  it('never stacks requests whose non-batch dimensions differ (dynamic image sizes)', async () => {
    // Same element count per row (2·3 = 3·2): stacking would reinterpret one request's pixels silently.
    const image = (h: number, w: number, fill: number): DecodedTensor[] => [
      { name: 'img', datatype: 'FP32', dims: [1, h, w], data: new Float32Array(h * w).fill(fill) as TensorData },
    ];
    const runner = new FakeRunner();
    const batcher = new Batcher(runner, 100);
    const first = batcher.run(image(2, 3, 0));
    void batcher.run(image(2, 3, 1));
    void batcher.run(image(3, 2, 2));
    void batcher.run(image(2, 3, 3));
    runner.calls[0]!.resolve([]);
    await first;
    await settle();
    for (const call of runner.calls.slice(1)) {
      const t = call.inputs[0]!;
      const perRow = t.dims.slice(1);
      expect(t.data.length).toBe(t.dims.reduce((a, b) => a * b, 1));
      expect([
        [2, 3],
        [3, 2],
      ]).toContainEqual(perRow);
    }
    const shapes = runner.calls.slice(1).map((c) => c.inputs[0]!.dims);
    expect(shapes).toContainEqual([2, 2, 3]);
    expect(shapes).toContainEqual([1, 3, 2]);
  });
});

describe('Batcher.supports', () => {
  const spec = (shape: number[], datatype = 'FP32'): TensorSpec => ({ name: 't', datatype, shape });
  it.each([
    ['dynamic batch dimension everywhere', true, [spec([-1, 12])], [spec([-1, 1])]],
    ['1-D dynamic tensors', true, [spec([-1], 'INT64')], [spec([-1], 'FP64')]],
    ['dynamic batch and other dynamic dims', true, [spec([-1, 3, -1, -1])], [spec([-1, 10])]],
    ['fixed batch dimension on an input', false, [spec([1, 12])], [spec([-1, 1])]],
    ['fixed batch dimension on an output', false, [spec([-1, 12])], [spec([1, 1])]],
    ['scalar output', false, [spec([-1, 12])], [spec([])]],
    ['BYTES input', false, [spec([-1], 'BYTES')], [spec([-1, 1])]],
    ['BOOL output', false, [spec([-1, 12])], [spec([-1], 'BOOL')]],
    ['no inputs', false, [], [spec([-1, 1])]],
  ] as const)('%s → %s', (_label, want, inputs, outputs) => {
    expect(Batcher.supports({ inputs, outputs })).toBe(want);
  });
});

describe('dynamic batching over HTTP with bike_gbr.onnx', () => {
  const RELATIVE = 1e-5;
  const expected = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.expected.json'), 'utf8')) as {
    input: number[][];
    output: number[];
  };
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startTestServer();
    await srv.warden.registry.push({ model: 'gbr', bytes: readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx')), aliases: ['champion'] });
    await srv.warden.table.settled();
  });
  afterAll(() => srv?.close());

  /** Sends the 64 probe rows as 64 concurrent single-row requests; checks each answer against its own row. */
  async function fireAndCheck(): Promise<void> {
    const responses = await Promise.all(
      expected.input.map((row, i) =>
        srv.json('POST', '/v2/models/gbr/infer', { id: `row-${i}`, inputs: [{ name: 'input', shape: [1, 12], datatype: 'FP32', data: row }] }),
      ),
    );
    responses.forEach((res, i) => {
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.id).toBe(`row-${i}`);
      expect(res.body.outputs).toHaveLength(1);
      expect(res.body.outputs[0].shape).toEqual([1, 1]);
      const served = res.body.outputs[0].data[0] as number;
      const want = expected.output[i]!;
      if (!(Math.abs(served - want) <= RELATIVE * Math.abs(want))) expect.fail(`row ${i}: served ${served}, expected ${want} (relative ${RELATIVE})`);
    });
  }

  it('64 concurrent single-row requests: each gets its own row’s prediction', async () => {
    expect(expected.input).toHaveLength(64);
    const lv = srv.warden.table.peek('gbr', 1);
    expect(lv?.batcher, 'bike_gbr has a dynamic batch dimension, so it is batched').toBeDefined();
    const spy = vi.spyOn(lv!.runtime, 'run');
    try {
      await fireAndCheck();
      expect(spy.mock.calls.reduce((n, [inputs]) => n + inputs[0]!.dims[0]!, 0), 'every row ran exactly once').toBe(64);
      expect(spy.mock.calls.length).toBeLessThanOrEqual(64);
    } finally {
      spy.mockRestore();
    }
  });

  it('with a slower model (each run takes 20 ms), the 64 requests share a few runs and still get their own rows', async () => {
    // bike_gbr runs in microseconds, so in-process requests rarely overlap; a delay before each run
    // makes the overlap certain, as with a heavier model, and so makes large merged batches certain.
    const lv = srv.warden.table.peek('gbr', 1)!;
    const original = lv.runtime.run.bind(lv.runtime);
    const spy = vi.spyOn(lv.runtime, 'run').mockImplementation(async (inputs, outputNames) => {
      await new Promise((r) => setTimeout(r, 20));
      return original(inputs, outputNames);
    });
    try {
      await fireAndCheck();
      const rows = spy.mock.calls.map(([inputs]) => inputs[0]!.dims[0]!);
      expect(rows.reduce((a, b) => a + b, 0), 'every row ran exactly once').toBe(64);
      expect(rows.length, `runs of ${rows.join(', ')} rows`).toBeLessThanOrEqual(16);
      expect(Math.max(...rows)).toBeGreaterThan(1);
    } finally {
      spy.mockRestore();
    }
  });
});
