import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecodedTensor } from '../../src/quality/index.ts';
import pino from 'pino';
import { ShadowRunner, ShadowThread, type ModelTable, type ShadowExecutor } from '../../src/serving/index.ts';
import { WAVE_SPAN_MS, type PredictionBatch, type PredictionEvent } from '../../src/storage/index.ts';
import type { PredictionLog } from '../../src/telemetry/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

// The shadow runner's paths other than the common one (same-shape copies stacked into one run): copies of other
// shapes, inputs that do not stack, a wave with a bad copy, and a model that takes one copy at a time. Each is
// run on the real bike regressor in onnxruntime; every copy's logged outputs must equal that copy run alone. The
// paths that do not fake the model's runtime run twice: on the serving thread, and on a shadow thread, which builds
// and packs the records itself and hands them to the log as sealed batches.

const MODEL = 'bike';
let srv: TestServer;
let table: ModelTable;

const rowsOf = (n: number, seed: number): Float32Array => {
  const data = new Float32Array(n * 12);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7 + seed * 13) % 17) / 17;
  return data;
};
/** The number in a test id such as m3. */
const idNumber = (id: string): number => Number(id.replace(/\D/g, ''));
const tensor = (data: Float32Array, rows: number, width = 12): DecodedTensor => ({ name: 'input', datatype: 'FP32', dims: [rows, width], data }) as DecodedTensor;

/**
 * A logged record as the events it stands for: a wave (one record for the copies of one run, outputs stacked) split
 * into one event per copy, each with its own rows of the outputs, written here independently of the store's reader.
 */
function perCopy(e: PredictionEvent): PredictionEvent[] {
  if (!e.copies) return [e];
  const { copies, ...rest } = e;
  const total = copies.rows.reduce((a, b) => a + b, 0);
  let from = 0;
  return copies.requestIds.map((requestId, c) => {
    const rows = copies.rows[c]!;
    const outputs = (e.outputs as { name: string; datatype: string; shape: number[]; data: ArrayLike<number> }[]).map((o) => {
      expect(o.shape[0]).toBe(total);
      const width = o.data.length / total;
      return { ...o, shape: [rows, ...o.shape.slice(1)], data: Array.from(o.data).slice(from * width, (from + rows) * width) };
    });
    from += rows;
    const one: PredictionEvent = { ...rest, requestId, ts: copies.ts[c]!, outputs };
    delete one.keys;
    const keys = copies.keys?.[c];
    if (keys) one.keys = keys;
    return one;
  });
}

function runnerOf(t: ModelTable, events: PredictionEvent[], opts: { waveCopies?: number; maxWaitMs?: number; records?: PredictionEvent[]; executor?: ShadowExecutor; via?: string[] } = {}) {
  const take = (e: PredictionEvent) => {
    opts.records?.push(e);
    events.push(...perCopy(e));
  };
  const log = {
    enqueue: (e: PredictionEvent) => {
      opts.via?.push('enqueue');
      take(e);
    },
    // A shadow thread's records, packed there: read back as the store would read them.
    append: (batch: PredictionBatch) => {
      opts.via?.push('append');
      for (let i = 0; i < batch.length; i++) take(batch.event(i));
      return true;
    },
  } as unknown as PredictionLog;
  return new ShadowRunner({ table: t, log, promRegistry: new Registry(), capacity: 1000, concurrency: 1, maxWaitMs: 50, ...opts });
}

/** A logged shadow event's first output: its shape and values. */
const out0 = (e: PredictionEvent | undefined): { shape: number[]; data: number[] } => {
  const o = (e?.outputs as { shape: number[]; data: ArrayLike<number> }[] | null | undefined)?.[0];
  if (!o) throw new Error(`no outputs logged for ${e?.requestId ?? 'a missing event'}`);
  return { shape: o.shape, data: Array.from(o.data) };
};

async function drained(r: ShadowRunner, offered: number) {
  const end = Date.now() + 10_000;
  for (;;) {
    const s = r.stats();
    // Counted once a wave's answer is back; its records may still be on a shadow thread until drained() resolves.
    if (s.run + s.failed + s.dropped === offered && s.waiting === 0) {
      await r.drained();
      return s;
    }
    if (Date.now() > end) throw new Error(`shadow queue not drained: ${JSON.stringify(s)}`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

async function alone(inputs: DecodedTensor[]): Promise<number[]> {
  const lv = table.peek(MODEL, 1)!;
  const out = await lv.runtime.run(inputs, undefined);
  return Array.from(out[0]!.data as unknown as Float32Array);
}

beforeAll(async () => {
  srv = await startTestServer();
  const onnx = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
  const res = await fetch(`${srv.url}/api/v1/models/${MODEL}/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: onnx });
  expect(res.status).toBe(201);
  expect((await srv.json('GET', `/v2/models/${MODEL}/ready`)).status).toBe(200);
  table = srv.warden.table;
  expect(table.peek(MODEL, 1)?.batcher).toBeDefined();
});
afterAll(async () => srv?.close());

let thread: ShadowThread;
const executors: [string, () => ShadowExecutor | undefined][] = [
  ['on the serving thread', () => undefined],
  ['on a shadow thread', () => (thread ??= new ShadowThread({ readArtifact: (record) => srv.warden.registry.readArtifact(record), logger: pino({ level: 'silent' }) }))],
];
afterAll(async () => thread?.close());

describe.each(executors)('shadow runner lanes %s', (_, executor) => {
  const runner = (t: ModelTable, events: PredictionEvent[], opts: Parameters<typeof runnerOf>[2] = {}) => {
    const exec = executor();
    return runnerOf(t, events, { ...opts, ...(exec ? { executor: exec } : {}) });
  };

  it('copies of 1 and 3 rows stack into one lane, and each copy gets its own rows back', async () => {
    const events: PredictionEvent[] = [];
    const records: PredictionEvent[] = [];
    const via: string[] = [];
    const r = runner(table, events, { records, via });
    const copies = [1, 3, 1, 2].map((rows, i) => ({ id: `m${i}`, rows, data: rowsOf(rows, i) }));
    for (const c of copies) r.offer(MODEL, 1, c.id, 1000 + idNumber(c.id), [tensor(c.data, c.rows)], undefined, c.id === 'm1' ? ['k1a', 'k1b', 'k1c'] : undefined);
    expect((await drained(r, copies.length)).run).toBe(copies.length);
    // One run answered the four copies, and one record logs them all.
    expect(records).toHaveLength(1);
    expect(records[0]!.copies?.requestIds).toEqual(['m0', 'm1', 'm2', 'm3']);
    // On a shadow thread the record was built and packed there, and handed over as a sealed batch.
    expect(via).toEqual([executor() ? 'append' : 'enqueue']);
    expect(events.map((e) => e.ts)).toEqual([1000, 1001, 1002, 1003]);
    expect(events.map((e) => e.keys)).toEqual([undefined, ['k1a', 'k1b', 'k1c'], undefined, undefined]);
    for (const c of copies) {
      const e = events.find((x) => x.requestId === c.id)!;
      expect(e.status).toBe('shadow');
      expect(out0(e).shape).toEqual([c.rows, 1]);
      expect(out0(e).data).toEqual(await alone([tensor(c.data, c.rows)]));
    }
  });

  it('a wave spans at most WAVE_SPAN_MS of arrivals from its first copy: a later copy, or an earlier one, starts the next', async () => {
    const events: PredictionEvent[] = [];
    const records: PredictionEvent[] = [];
    const r = runner(table, events, { records, maxWaitMs: 30 });
    const arrivals = [5000, 5000 + WAVE_SPAN_MS, 5001 + WAVE_SPAN_MS, 4000, 4001];
    arrivals.forEach((ts, k) => r.offer(MODEL, 1, `s${k}`, ts, [tensor(rowsOf(1, k), 1)], undefined, undefined));
    expect((await drained(r, arrivals.length)).run).toBe(arrivals.length);
    expect(records.map((e) => e.copies?.requestIds ?? [e.requestId])).toEqual([['s0', 's1'], ['s2'], ['s3', 's4']]);
    expect(events.map((e) => e.ts)).toEqual(arrivals);
  });

  it('a copy of another row shape waits in the single queue; it fails alone and the others are served', async () => {
    const events: PredictionEvent[] = [];
    const r = runner(table, events);
    const good = rowsOf(2, 5);
    r.offer(MODEL, 1, 'good-1', 1000, [tensor(good, 2)], undefined, undefined);
    // 10 columns: does not fit the lane of 12-wide rows, and the model refuses it.
    r.offer(MODEL, 1, 'narrow', 1000, [tensor(new Float32Array(10), 1, 10)], undefined, undefined);
    r.offer(MODEL, 1, 'good-2', 1000, [tensor(good, 2)], undefined, undefined);
    const s = await drained(r, 3);
    expect(s).toMatchObject({ run: 2, failed: 1, dropped: 0 });
    expect(events.find((e) => e.requestId === 'narrow')!.error).toMatch(/^WARDEN_INFERENCE_FAILED: /);
    const expected = await alone([tensor(good, 2)]);
    for (const id of ['good-1', 'good-2']) expect(out0(events.find((e) => e.requestId === id)).data).toEqual(expected);
  });

  it('inputs that do not stack (booleans) are run one at a time, never packed', async () => {
    const events: PredictionEvent[] = [];
    const r = runner(table, events);
    const bools = { name: 'input', datatype: 'BOOL', dims: [1, 12], data: new Array(12).fill(true) } as unknown as DecodedTensor;
    r.offer(MODEL, 1, 'bool', 1000, [bools], undefined, undefined);
    r.offer(MODEL, 1, 'num', 1000, [tensor(rowsOf(1, 9), 1)], undefined, undefined);
    const s = await drained(r, 2);
    expect(s.run + s.failed).toBe(2);
    // The numeric copy is served whatever the model makes of the boolean one.
    expect(events.find((e) => e.requestId === 'num')!.outputs).not.toBeNull();
    expect(events.find((e) => e.requestId === 'bool')).toBeDefined();
  });

  it('every caller of drained() meanwhile waits for the records: two at once both see them', async () => {
    const events: PredictionEvent[] = [];
    const r = runner(table, events);
    for (let i = 0; i < 5; i++) r.offer(MODEL, 1, `d${i}`, 1000 + i, [tensor(rowsOf(1, i), 1)], undefined, undefined);
    // Counted once the wave's answer is back, before the thread's 200 ms seal has sent its record.
    for (let end = Date.now() + 10_000; r.stats().run < 5 && Date.now() < end; ) await new Promise((res) => setTimeout(res, 2));
    const seen: number[] = [];
    await Promise.all([r.drained().then(() => seen.push(events.length)), r.drained().then(() => seen.push(events.length))]);
    expect(seen).toEqual([5, 5]);
  });

  it('a candidate that is not loaded drops its copies and counts them', async () => {
    const events: PredictionEvent[] = [];
    const r = runner({ peek: () => undefined } as unknown as ModelTable, events);
    r.offer(MODEL, 1, 'x', 1000, [tensor(rowsOf(1, 1), 1)], undefined, undefined);
    r.offer(MODEL, 1, 'y', 1000, [tensor(rowsOf(1, 2), 1)], undefined, undefined);
    expect(await drained(r, 2)).toMatchObject({ dropped: 2, run: 0 });
    expect(events).toHaveLength(0);
  });
});

describe('shadow runner lanes, with a runtime that counts its runs', () => {
  const runner = runnerOf;

  it('a version without a batcher (no dynamic batch dimension) runs each copy of a wave alone', async () => {
    const lv = table.peek(MODEL, 1)!;
    const runs: number[] = [];
    // The same loaded runtime, seen without its batcher, counting the rows of each model run.
    const unbatched = { ...lv, batcher: undefined, runtime: { ...lv.runtime, run: (inputs: DecodedTensor[], names: string[] | undefined) => (runs.push(inputs[0]!.dims[0]!), lv.runtime.run(inputs, names)) } };
    const t = { peek: () => unbatched } as unknown as ModelTable;
    const events: PredictionEvent[] = [];
    const r = runner(t, events);
    const copies = [2, 1, 3].map((rows, i) => ({ id: `u${i}`, rows, data: rowsOf(rows, 20 + i) }));
    for (const c of copies) r.offer(MODEL, 1, c.id, 1000, [tensor(c.data, c.rows)], undefined, undefined);
    expect((await drained(r, copies.length)).run).toBe(3);
    expect(runs.sort()).toEqual([1, 2, 3]);
    for (const c of copies) expect(out0(events.find((e) => e.requestId === c.id)).data).toEqual(await alone([tensor(c.data, c.rows)]));
  });

  it('a full wave runs at once; fewer copies wait for maxWaitMs; one wave takes every copy waiting', async () => {
    const lv = table.peek(MODEL, 1)!;
    const runs: number[] = [];
    const counting = { ...lv, runtime: { ...lv.runtime, run: (inputs: DecodedTensor[], names: string[] | undefined) => (runs.push(inputs[0]!.dims[0]!), lv.runtime.run(inputs, names)) } };
    const t = { peek: () => counting } as unknown as ModelTable;
    const events: PredictionEvent[] = [];
    const r = runner(t, events, { waveCopies: 4, maxWaitMs: 400 });
    const offer = (id: string) => r.offer(MODEL, 1, id, 1000, [tensor(rowsOf(1, id.length), 1)], undefined, undefined);
    for (const id of ['a', 'b', 'c']) offer(id);
    await new Promise((res) => setTimeout(res, 100));
    // Three of a wave of four, the oldest 100 ms old: still waiting.
    expect(r.stats()).toMatchObject({ waiting: 3, run: 0 });
    offer('d');
    offer('e'); // offered before the wave starts (it starts on the next turn): taken with the others
    const started = performance.now();
    await drained(r, 5);
    expect(performance.now() - started).toBeLessThan(300);
    expect(runs).toEqual([5]);
    // A lone copy runs once it has waited maxWaitMs, not before.
    offer('f');
    const lone = performance.now();
    await drained(r, 6);
    const waited = performance.now() - lone;
    expect(waited).toBeGreaterThanOrEqual(390);
    expect(waited).toBeLessThan(2000);
    expect(runs).toEqual([5, 1]);
    expect(events.map((e) => e.requestId).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });
});
