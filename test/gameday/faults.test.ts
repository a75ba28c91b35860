/**
 * The request path's fault injector and the game-day service, on a fake clock: exact shares, drift by the
 * signature's std, the logged forms of nulls and schema, and the bounds (expiry without the timer, one per
 * deployment, counts kept after the end).
 */
import { describe, expect, it } from 'vitest';
import { GameDayService } from '../../src/lifecycle/index.ts';
import { FaultInjector, faultColumns, type FaultHit } from '../../src/serving/index.ts';
import type { DecodedTensor } from '../../src/quality/index.ts';
import type { ModelSignature } from '../../src/storage/index.ts';

const SIGNATURE: ModelSignature = {
  inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 3] }],
  outputs: [{ name: 'variable', datatype: 'FP32', shape: [-1, 1] }],
  features: [
    { name: 'hr', datatype: 'FP32', std: 6 },
    { name: 'temp', datatype: 'FP32', std: 0.2 },
    { name: 'hum', datatype: 'FP32' },
  ],
};

const tensor = (rows: number[][]): DecodedTensor => ({ name: 'input', datatype: 'FP32', dims: [rows.length, 3], data: Float32Array.from(rows.flat()) });

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('FaultInjector', () => {
  it('is unarmed until a fault is armed, and touches only its deployment', () => {
    const f = new FaultInjector();
    expect(f.armed).toBe(false);
    f.arm({ id: 'g1', deployment: 'a', kind: 'latency', intensity: 1.5, endsAt: Date.now() + 60_000 });
    expect(f.armed).toBe(true);
    expect(f.hit('b', [tensor([[1, 2, 3]])], SIGNATURE)).toBeUndefined();
    expect(f.hit('a', [tensor([[1, 2, 3]])], SIGNATURE)).toEqual({ marker: 'game day g1: latency +300 ms injected', delayMs: 300 });
    expect(f.disarm('a', 'other')).toBeUndefined();
    expect(f.disarm('a', 'g1')).toEqual({ requests: 1, rows: 1 });
    expect(f.armed).toBe(false);
  });

  it('fails exactly the share asked for, spread evenly', () => {
    const f = new FaultInjector();
    f.arm({ id: 'g', deployment: 'a', kind: 'errors', intensity: 0.5, endsAt: Date.now() + 60_000 });
    const outcomes = Array.from({ length: 12 }, () => {
      try {
        return f.hit('a', [tensor([[1, 2, 3]])], SIGNATURE) ? 'marked' : 'untouched';
      } catch (e) {
        expect((e as { code: string }).code).toBe('WARDEN_FAULT_INJECTED');
        return 'failed';
      }
    });
    // Share 0.25: every fourth request.
    expect(outcomes).toEqual(['untouched', 'untouched', 'untouched', 'failed', 'untouched', 'untouched', 'untouched', 'failed', 'untouched', 'untouched', 'untouched', 'failed']);
    expect(f.counts('a', 'g')).toEqual({ requests: 3, rows: 3 });
  });

  it('drift shifts by 2·intensity std where the signature has one, else scales by 1 + intensity/2', () => {
    const f = new FaultInjector();
    f.arm({ id: 'g', deployment: 'a', kind: 'drift', intensity: 1, endsAt: Date.now() + 60_000 });
    const t = tensor([
      [10, 0.5, 0.4],
      [20, 0.1, 0.8],
    ]);
    f.hit('a', [t], SIGNATURE);
    expect(Array.from(t.data as Float32Array)).toEqual(Array.from(Float32Array.from([22, 0.9, 0.6, 32, 0.5, 1.2])));
  });

  it('drift with a feature shifts that column only', () => {
    const f = new FaultInjector();
    f.arm({ id: 'g', deployment: 'a', kind: 'drift', intensity: 0.5, feature: 'hr', endsAt: Date.now() + 60_000 });
    const t = tensor([
      [10, 0.5, 0.4],
      [20, 0.1, 0.8],
    ]);
    expect(f.hit('a', [t], SIGNATURE)?.marker).toBe('game day g: drift injected (hr shifted by +1 std)');
    expect(Array.from(t.data as Float32Array)).toEqual(Array.from(Float32Array.from([16, 0.5, 0.4, 26, 0.1, 0.8])));
  });

  it('nulls and schema change only what is logged, as named rows', () => {
    const f = new FaultInjector();
    f.arm({ id: 'n', deployment: 'a', kind: 'nulls', intensity: 2, feature: 'temp', endsAt: Date.now() + 60_000 });
    const t = tensor([
      [1, 0.5, 0.25],
      [2, 0.75, 0.5],
    ]);
    const hit = f.hit('a', [t], SIGNATURE) as FaultHit;
    expect(hit.logged).toEqual([
      { hr: 1, temp: null, hum: 0.25 },
      { hr: 2, temp: null, hum: 0.5 },
    ]);
    expect(Array.from(t.data as Float32Array)).toEqual([1, 0.5, 0.25, 2, 0.75, 0.5]);
    f.disarm('a', 'n');
    f.arm({ id: 's', deployment: 'a', kind: 'schema', intensity: 2, endsAt: Date.now() + 60_000 });
    expect((f.hit('a', [t], SIGNATURE) as FaultHit).logged).toEqual([
      { temp: 0.5, hum: 0.25, gameday_unknown_feature: 1 },
      { temp: 0.75, hum: 0.5, gameday_unknown_feature: 1 },
    ]);
  });

  it('stops applying at endsAt even before anyone disarms it, keeping its counts', () => {
    const c = clock();
    const f = new FaultInjector(c.now);
    f.arm({ id: 'g', deployment: 'a', kind: 'latency', intensity: 1, endsAt: c.now() + 1000 });
    expect(f.hit('a', [tensor([[1, 2, 3]])], SIGNATURE)).toBeDefined();
    c.advance(1000);
    expect(f.hit('a', [tensor([[1, 2, 3]])], SIGNATURE)).toBeUndefined();
    expect(f.disarm('a', 'g')).toEqual({ requests: 1, rows: 1 });
  });

  it('names the columns as monitoring does', () => {
    expect(faultColumns(SIGNATURE)).toEqual(['hr', 'temp', 'hum']);
    expect(faultColumns({ inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }, { name: 'y', datatype: 'FP32', shape: [-1] }], outputs: [] })).toEqual(['x[0]', 'x[1]', 'y']);
  });
});

describe('GameDayService', () => {
  const make = () => {
    const c = clock();
    const faults = new FaultInjector(c.now);
    const service = new GameDayService({ faults, now: c.now, signatureOf: async () => SIGNATURE });
    return { c, faults, service };
  };

  it('completes at endsAt on read, with the counts the request path gathered, even if its timer is late', async () => {
    const { c, faults, service } = make();
    const g = await service.start({ deployment: 'a', fault: 'latency', durationMs: 60_000 });
    faults.hit('a', [tensor([[1, 2, 3]])], SIGNATURE);
    c.advance(60_000);
    // A request after the end is not touched, and does not lose the counts.
    expect(faults.hit('a', [tensor([[1, 2, 3]])], SIGNATURE)).toBeUndefined();
    expect(service.get(g.id)).toMatchObject({ state: 'completed', endedAt: g.endsAt, injected: { requests: 1, rows: 1 } });
    expect(faults.armed).toBe(false);
    // The deployment is free again.
    await expect(service.start({ deployment: 'a', fault: 'errors', durationMs: 1000 })).resolves.toMatchObject({ state: 'running' });
    service.close();
  });

  it('refuses a second concurrent start on a deployment, even when both arrive together', async () => {
    const { service } = make();
    const results = await Promise.allSettled([service.start({ deployment: 'a', fault: 'errors', durationMs: 1000 }), service.start({ deployment: 'a', fault: 'drift', durationMs: 1000 })]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(rejected.reason.code).toBe('WARDEN_GAMEDAY_RUNNING');
    service.close();
    expect(service.list().every((g) => g.state === 'stopped')).toBe(true);
  });

  it('keeps the last 100 game days', async () => {
    const { service } = make();
    for (let i = 0; i < 105; i++) service.stop((await service.start({ deployment: 'a', fault: 'latency', durationMs: 1000 })).id);
    expect(service.list()).toHaveLength(100);
  });
});
