import { describe, expect, it } from 'vitest';
import { PredictionBatch, type PredictionEvent } from '../../src/storage/index.ts';

const base = { ts: 1_700_000_000_123, model: 'bike', version: 3, status: 'ok' as const, latencyMs: 0.4321 };

/** The event as the store gives it back: tensor lists with `shape` and plain number arrays. */
function stored(e: PredictionEvent): PredictionEvent {
  const tensors = (v: unknown) =>
    (v as { name: string; datatype: string; dims?: number[]; shape?: number[]; data: ArrayLike<number> }[]).map((t) => ({
      name: t.name,
      datatype: t.datatype,
      shape: [...(t.dims ?? t.shape)!],
      data: Array.from(t.data),
    }));
  return { ...e, inputs: tensors(e.inputs), outputs: tensors(e.outputs) };
}

describe('PredictionBatch', () => {
  const decoded: PredictionEvent = {
    ...base,
    requestId: 'a',
    inputs: [
      { name: 'x', datatype: 'FP32', dims: [2, 3], data: Float32Array.from([0.7, -0, 1e-7, 3, 4, 5]) },
      { name: 'c', datatype: 'INT8', dims: [2, 1], data: Int8Array.from([-5, 7]) },
    ],
    outputs: [{ name: 'y', datatype: 'FP64', shape: [2, 1], data: [254.3585205078125, -1.5] }],
  };

  it('packs numeric tensor lists and gives them back as the store reads them, exactly', () => {
    const b = PredictionBatch.of([decoded]);
    expect(b.event(0)).toEqual(stored(decoded));
    // FP32 values widen to float64 exactly: the same doubles Float32Array hands out.
    expect((b.inputs(0) as { data: number[] }[])[0]!.data).toEqual(Array.from(Float32Array.from([0.7, -0, 1e-7, 3, 4, 5])));
  });

  it('keeps everything else as it was pushed: raw bodies, strings, booleans, BigInt, nested data, and the optional fields', () => {
    const events: PredictionEvent[] = [
      { ...base, requestId: 'err', status: 'error', inputs: { weird: [1, [2, [3]]] }, outputs: null, error: 'WARDEN_INVALID_INPUT: bad', traceId: 'f'.repeat(32) },
      { ...base, requestId: 'str', inputs: decoded.inputs, outputs: [{ name: 'label', datatype: 'BYTES', shape: [1], data: ['busy'] }], keys: ['k1', 'k2'] },
      { ...base, requestId: 'bool', inputs: [{ name: 'b', datatype: 'BOOL', shape: [1], data: [true] }], outputs: [] },
      { ...base, requestId: 'big', inputs: [{ name: 'i', datatype: 'INT64', dims: [1], data: BigInt64Array.from([5n]) }], outputs: 'x' },
      { ...base, requestId: 'nested', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [[1, 2]] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [1], data: [1, 'two'] }] },
      { ...base, requestId: 'rank', inputs: [{ name: 'x', datatype: 'FP32', shape: new Array(9).fill(1), data: [1] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1], data: [1] }] },
    ];
    const b = PredictionBatch.fromMessage(structuredClone(PredictionBatch.of(events).toMessage()));
    const back = b.toEvents();
    expect(back[0]).toEqual(events[0]);
    expect(back[1]!.outputs).toEqual(events[1]!.outputs);
    expect(back[1]!.inputs).toEqual(stored({ ...decoded }).inputs);
    expect(back[1]!.keys).toEqual(['k1', 'k2']);
    expect(back[1]!.error).toBeUndefined();
    expect(back[2]!.inputs).toEqual(events[2]!.inputs);
    expect(back[2]!.outputs).toEqual([]);
    expect(back[3]!.inputs).toEqual(events[3]!.inputs);
    expect(back[3]!.outputs).toBe('x');
    for (const i of [4, 5]) {
      expect(back[i]!.inputs).toEqual(events[i]!.inputs);
      expect(back[i]!.outputs).toEqual(events[i]!.outputs);
      expect(b.tensorsJson(i, 'inputs')).toBeUndefined();
    }
    expect(back.map((e) => [e.requestId, e.ts, e.model, e.version, e.status, e.latencyMs])).toEqual(
      events.map((e) => [e.requestId, e.ts, e.model, e.version, e.status, e.latencyMs]),
    );
  });

  it('writes tensor JSON equal to JSON.stringify of the stored tensors, non-finite values as null', () => {
    const e: PredictionEvent = {
      ...base,
      requestId: 'nan',
      inputs: [{ name: 'x"q', datatype: 'FP64', dims: [4], data: Float64Array.from([NaN, Infinity, -Infinity, 1.5]) }],
      outputs: decoded.outputs,
    };
    const b = PredictionBatch.of([decoded, e]);
    for (const [i, ev] of [decoded, e].entries()) {
      for (const which of ['inputs', 'outputs'] as const) {
        const json = b.tensorsJson(i, which)!;
        expect(json).toBe(JSON.stringify(stored(ev)[which]));
      }
    }
    expect(JSON.parse(b.tensorsJson(1, 'inputs')!)[0].data).toEqual([null, null, null, 1.5]);
  });

  it('grows from a one-event start to thousands of events and survives the trip to another thread', () => {
    const b = new PredictionBatch(1);
    const events = Array.from({ length: 5_000 }, (_, i): PredictionEvent => ({
      ...base,
      model: i % 3 === 0 ? 'a' : 'b',
      requestId: `r${i}`,
      ts: base.ts + i,
      inputs: [{ name: 'x', datatype: 'FP32', dims: [1, i % 7], data: new Float32Array(i % 7).fill(i) }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: [i / 4] }],
    }));
    for (const e of events) b.push(e);
    expect(b.length).toBe(5_000);
    const back = PredictionBatch.fromMessage(structuredClone(b.toMessage())).toEvents();
    expect(back).toEqual(events.map(stored));
  });

  it('packs a shadow wave\'s copies into its buffers and gives them back, also on the other side of a message', () => {
    const wave: PredictionEvent = {
      ...base,
      status: 'shadow',
      requestId: 'w-0',
      inputs: null,
      outputs: [{ name: 'y', datatype: 'FP32', shape: [4, 1], data: Float32Array.from([1, 2, 3, 4]) }],
      copies: { requestIds: ['w-0', 'w-é1', 'w-2'], ts: [base.ts, base.ts + 3, base.ts + 999], rows: [1, 2, 1], keys: [undefined, ['k-a', 'k-b'], undefined] },
    };
    const plain: PredictionEvent = { ...decoded, requestId: 'after' };
    const b = new PredictionBatch(1);
    // Grows past its first buffers: many waves of many copies.
    const many = Array.from({ length: 40 }, (_, w) => ({ ...wave, requestId: `m${w}-0`, copies: { requestIds: Array.from({ length: 20 }, (_, c) => `m${w}-${c}`), ts: Array.from({ length: 20 }, (_, c) => base.ts + c), rows: Array.from({ length: 20 }, () => 1) } }));
    for (const e of [wave, plain, ...many]) b.push(e);
    for (const batch of [b, PredictionBatch.fromMessage(structuredClone(b.toMessage()))]) {
      expect(batch.copies(0)).toEqual(wave.copies);
      expect(batch.copies(1)).toBeUndefined();
      expect(batch.event(1)).toEqual(stored(plain));
      expect(batch.requestId(0)).toBe('w-0');
      for (let w = 0; w < many.length; w++) expect(batch.copies(2 + w)).toEqual(many[w]!.copies);
      expect(batch.event(0).copies).toEqual(wave.copies);
    }
    b.reset();
    b.push(plain);
    expect(b.copies(0)).toBeUndefined();
  });
});
