/**
 * More of the storage contract (see contract.ts): the events port's methods the first part leaves out. Called inside
 * runStorageContract's describe, with the stores of the running test.
 */
import { describe, expect, it } from 'vitest';
import type { PredictionEvent } from '../../src/storage/index.ts';
import type { StorageUnderTest } from './contract.ts';

const DAY = 86_400_000;
/** 2023-11-14T00:00:00Z: a UTC midnight. */
const DAY0 = Math.floor(1_700_000_000_000 / DAY) * DAY;

function prediction(id: string, ts: number, model: string, keys?: string[]): PredictionEvent {
  return {
    requestId: id,
    ts,
    model,
    version: 1,
    status: 'ok',
    latencyMs: 1,
    inputs: [{ name: 'input', shape: [1, 1], datatype: 'FP32', data: [1] }],
    outputs: [{ name: 'probability', shape: [1, 1], datatype: 'FP32', data: [0.5] }],
    ...(keys ? { keys } : {}),
  };
}

export function eventsContract(stores: () => StorageUnderTest): void {
  describe('EventStore: prediction retention', () => {
    it('removes the predictions of whole UTC days before the bound, with their keys, and nothing after', async () => {
      const e = stores().events;
      // Three days, two models, events at each day's first and last millisecond; appended out of time order.
      const events = [2, 0, 1].flatMap((d) => [
        prediction(`a-${d}-first`, DAY0 + d * DAY, 'a', [`ka${d}`]),
        prediction(`b-${d}-last`, DAY0 + (d + 1) * DAY - 1, 'b', [`kb${d}`]),
      ]);
      await e.appendPredictions(events);
      expect(await e.prunePredictions(DAY0)).toBe(0);
      // A bound inside day 2 removes days 0 and 1 only: day 2 does not end before it.
      expect(await e.prunePredictions(DAY0 + 2 * DAY + 5)).toBe(2);
      expect((await e.queryPredictions({ limit: 100 })).map((p) => p.requestId).sort()).toEqual(['a-2-first', 'b-2-last']);
      expect(await e.countPredictions({})).toBe(2);
      expect(await e.prunePredictions(DAY0 + 2 * DAY + 5)).toBe(0);
      // The removed days' keys went with them: a label naming one is unmatched; a kept day's key joins.
      const res = await e.appendLabels([{ key: 'ka0', value: 1 }, { key: 'kb1', value: 1 }, { key: 'ka2', value: 0 }], DAY0 + 3 * DAY);
      expect(res.unmatched).toBe(2);
      expect(res.accepted).toBe(3);
      expect((await e.queryLabelled({ model: 'a', version: 1, limit: 10 })).map((r) => r.requestId)).toEqual(['a-2-first']);
      // New days keep arriving after a prune.
      await e.appendPredictions([prediction('a-3', DAY0 + 3 * DAY, 'a')]);
      expect(await e.countPredictions({})).toBe(3);
    });

    it('prunes more than one batch of a day', async () => {
      const e = stores().events;
      const many = Array.from({ length: 12_000 }, (_, i) => prediction(`m-${i}`, DAY0 + (i % 1000), i % 2 ? 'a' : 'b'));
      await e.appendPredictions(many);
      await e.appendPredictions([prediction('kept', DAY0 + DAY, 'a')]);
      expect(await e.prunePredictions(DAY0 + DAY)).toBe(1);
      expect((await e.queryPredictions({ limit: 10 })).map((p) => p.requestId)).toEqual(['kept']);
    });
  });
}
