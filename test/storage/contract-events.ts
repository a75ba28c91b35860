/**
 * More of the storage contract (see contract.ts): the events port's methods the first part leaves out. Called inside
 * runStorageContract's describe, with the stores of the running test.
 */
import { describe, expect, it } from 'vitest';
import { PredictionBatch, type PredictionEvent } from '../../src/storage/index.ts';
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

    it('keeps each model for its own time, and -Infinity keeps a model whole', async () => {
      const e = stores().events;
      await e.appendPredictions([0, 1, 2].flatMap((d) => ['a', 'b', 'c'].map((m) => prediction(`${m}-${d}`, DAY0 + d * DAY + 10, m, [`k${m}${d}`]))));
      // Default: days 0 and 1 go; a keeps only day 2 too, b keeps everything, c expires day 0 only.
      const days = await e.prunePredictions(DAY0 + 2 * DAY, { b: Number.NEGATIVE_INFINITY, c: DAY0 + DAY });
      expect(days).toBe(2);
      expect((await e.queryPredictions({ limit: 100 })).map((p) => p.requestId).sort()).toEqual(['a-2', 'b-0', 'b-1', 'b-2', 'c-1', 'c-2']);
      // Keys went with their predictions only.
      const res = await e.appendLabels([{ key: 'ka1', value: 1 }, { key: 'kb0', value: 1 }, { key: 'kc0', value: 1 }, { key: 'kc1', value: 1 }], DAY0 + 3 * DAY);
      expect(res.unmatched).toBe(2);
      // Nothing but the default: b's days 0 and 1 go now, and c's day 1.
      expect(await e.prunePredictions(DAY0 + 2 * DAY)).toBe(2);
      expect((await e.queryPredictions({ limit: 100 })).map((p) => p.requestId).sort()).toEqual(['a-2', 'b-2', 'c-2']);
    });

    it("keeps a labelled row's inputs and outputs with its label when its prediction goes", async () => {
      const e = stores().events;
      const two = (id: string, ts: number): PredictionEvent => ({
        ...prediction(id, ts, 'a'),
        inputs: [{ name: 'input', shape: [2, 2], datatype: 'FP32', data: [1, 2, 3, 4] }],
        outputs: [{ name: 'probability', shape: [2, 1], datatype: 'FP32', data: [0.25, 0.75] }],
      });
      await e.appendPredictions([two('old', DAY0 + 5), two('new', DAY0 + DAY + 5)]);
      await e.appendLabels([{ requestId: 'old', row: 1, value: 1, source: 'human' }, { requestId: 'new', row: 0, value: 0 }], DAY0 + 2 * DAY);
      const before = await e.queryLabelled({ model: 'a', version: 1, limit: 10 });
      expect(await e.prunePredictions(DAY0 + DAY)).toBe(1);
      expect(await e.countPredictions({})).toBe(1);
      const after = await e.queryLabelled({ model: 'a', version: 1, limit: 10 });
      expect(after).toEqual(before);
      expect(after.find((r) => r.requestId === 'old')).toMatchObject({ row: 1, inputs: { input: [3, 4] }, outputs: { probability: [0.75] }, label: 1, source: 'human' });
      // A later label for the kept row still replaces its value and keeps the row.
      await e.appendLabels([{ requestId: 'old', row: 1, value: 0, source: 'human' }], DAY0 + 3 * DAY);
      expect((await e.queryLabelled({ model: 'a', version: 1, limit: 10 })).find((r) => r.requestId === 'old')).toMatchObject({ inputs: { input: [3, 4] }, label: 0 });
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

  describe('EventStore: shadow waves', () => {
    /**
     * A wave is one record for many copies; read back it must be what one row per copy would have been. The reference
     * is that per-copy list, built here from the same inputs, and every read is compared with it.
     */
    const T = DAY0 + 3_600_000;
    function build(): { records: PredictionEvent[]; perCopy: Omit<PredictionEvent, 'copies'>[] } {
      const records: PredictionEvent[] = [];
      const perCopy: Omit<PredictionEvent, 'copies'>[] = [];
      let n = 0;
      for (let w = 0; w < 30; w++) {
        const t0 = T + w * 400;
        // The stable answers the copies mirror, then the wave of their copies (1 to 7 copies, 1 or 2 rows each).
        const size = 1 + (w % 7);
        const ids = Array.from({ length: size }, () => `r${n++}`);
        const ts = ids.map((_, c) => t0 + c * 97);
        const rows = ids.map((_, c) => 1 + ((w + c) % 2));
        ids.forEach((id, c) => records.push({ ...prediction(id, ts[c]!, 'm'), route: 'stable' }));
        const keys = w % 3 === 0 ? ids.map((id, c) => (c % 2 ? undefined : rows[c] === 1 ? [`k-${id}`] : [`k-${id}-a`, `k-${id}-b`])) : undefined;
        const total = rows.reduce((a, b) => a + b, 0);
        const values = Array.from({ length: total * 2 }, (_, i) => w * 100 + i);
        const wave: PredictionEvent = {
          requestId: ids[0]!,
          ts: ts[0]!,
          model: 'm',
          version: 2,
          status: 'shadow',
          latencyMs: 0.5 + w,
          inputs: null,
          outputs: [{ name: 'y', datatype: 'FP32', shape: [total, 2], data: values }],
        };
        if (size > 1) wave.copies = { requestIds: ids, ts, rows, ...(keys ? { keys } : {}) };
        if (keys?.[0]) wave.keys = keys[0];
        records.push(wave);
        let off = 0;
        ids.forEach((id, c) => {
          const e: Omit<PredictionEvent, 'copies'> = { requestId: id, ts: ts[c]!, model: 'm', version: 2, status: 'shadow', latencyMs: 0.5 + w, inputs: null, outputs: [{ name: 'y', datatype: 'FP32', shape: [rows[c]!, 2], data: values.slice(off * 2, (off + rows[c]!) * 2) }] };
          if (keys?.[c]) e.keys = keys[c];
          off += rows[c]!;
          perCopy.push(e);
        });
      }
      return { records, perCopy };
    }
    const strip = (e: PredictionEvent & { seq?: number }) => {
      const { seq: _seq, ...rest } = e;
      return rest;
    };

    it('stores waves packed on another thread (the shadow thread\'s batches, rebuilt from their message) as it does its own', async () => {
      const e = stores().events;
      const { records, perCopy } = build();
      const stable = records.filter((r) => r.status !== 'shadow');
      const waves = records.filter((r) => r.status === 'shadow');
      await e.appendPredictions(stable);
      // Two batches, as the thread seals them, each crossing as a message (shared buffers, cloned strings).
      const half = Math.floor(waves.length / 2);
      for (const part of [waves.slice(0, half), waves.slice(half)]) await e.appendBatch(PredictionBatch.fromMessage(structuredClone(PredictionBatch.of(part).toMessage())));
      expect((await e.queryPredictions({ status: 'shadow', limit: 1000 })).map(strip)).toEqual(perCopy);
      expect(await e.countPredictions({ status: 'shadow' })).toBe(perCopy.length);
      const id = perCopy[17]!.requestId;
      expect((await e.queryPredictions({ requestId: id, limit: 10 })).map((g) => g.status).sort()).toEqual(['ok', 'shadow']);
    });

    it('reads a wave back as one event per copy, exactly, through every filter, page and count', async () => {
      const e = stores().events;
      const { records, perCopy } = build();
      await e.appendPredictions(records);
      const shadows = await e.queryPredictions({ status: 'shadow', limit: 1000 });
      expect(shadows.map(strip)).toEqual(perCopy);
      // Copies of one wave share its seq; seqs never go down.
      for (let i = 1; i < shadows.length; i++) expect(shadows[i]!.seq).toBeGreaterThanOrEqual(shadows[i - 1]!.seq);
      expect(await e.countPredictions({ status: 'shadow' })).toBe(perCopy.length);
      expect(await e.countPredictions({})).toBe(perCopy.length * 2);
      expect(await e.countPredictions({ model: 'm', version: 2 })).toBe(perCopy.length);
      expect(await e.countPredictions({ route: 'stable' })).toBe(perCopy.length);
      // Time ranges that cut through waves, counted and read copy by copy.
      for (const [since, until] of [[T + 150, T + 2_000], [T + 1_234, T + 5_678], [T + 11_000, undefined], [undefined, T + 99]] as const) {
        const expected = perCopy.filter((c) => (since === undefined || c.ts >= since) && (until === undefined || c.ts < until));
        const q = { status: 'shadow' as const, ...(since === undefined ? {} : { since }), ...(until === undefined ? {} : { until }) };
        expect((await e.queryPredictions({ ...q, limit: 1000 })).map(strip)).toEqual(expected);
        expect(await e.countPredictions(q)).toBe(expected.length);
        expect(await e.countPredictions({ ...q, status: undefined! })).toBe(expected.length * 2);
      }
      // A request's copy is found inside its wave, whichever copy it is, next to its stable answer.
      for (const id of ['r0', 'r2', 'r40', perCopy.at(-1)!.requestId]) {
        const got = await e.queryPredictions({ requestId: id, limit: 10 });
        expect(got.map((g) => g.status).sort()).toEqual(['ok', 'shadow']);
        expect(strip(got.find((g) => g.status === 'shadow')!)).toEqual(perCopy.find((c) => c.requestId === id));
        expect(await e.countPredictions({ requestId: id })).toBe(2);
        expect(await e.countPredictions({ requestId: id, status: 'shadow' })).toBe(1);
      }
      expect(await e.queryPredictions({ requestId: 'nobody', limit: 10 })).toEqual([]);
      // Paged both ways with small limits: every copy once, in order; a page ends on a whole wave.
      for (const newestFirst of [false, true]) {
        const seen: PredictionEvent[] = [];
        let cursor: number | undefined;
        for (let guard = 0; guard < 200; guard++) {
          const page = await e.queryPredictions({ status: 'shadow', limit: 3, newestFirst, ...(cursor === undefined ? {} : newestFirst ? { beforeSeq: cursor } : { afterSeq: cursor }) });
          seen.push(...page);
          if (page.length < 3) break;
          expect(page.length).toBeLessThanOrEqual(3 + 6);
          cursor = page.at(-1)!.seq;
        }
        expect(seen.map(strip)).toEqual(newestFirst ? [...perCopy].reverse() : perCopy);
      }
    });
  });
}
