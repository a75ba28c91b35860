import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PredictionBatch, SqliteWorkerEventStore, type PredictionEvent } from '../../src/storage/index.ts';

/** Nice value of each thread of this process, from /proc (field 19 of stat, after the parenthesised name). */
function threadNices(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(fields[16]));
  }
  return out;
}

describe.runIf(process.platform === 'linux')('prediction writer thread priority', () => {
  it('runs the writer thread at the configured nice value and leaves the serving thread alone', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'warden-nice-'));
    const before = threadNices();
    const store = new SqliteWorkerEventStore(path.join(dir, 'events.db'), { writerNice: 13 });
    try {
      // The first append starts the writer thread.
      await store.appendPredictions([{ requestId: 'r1', ts: 1, model: 'm', version: 1, status: 'ok', latencyMs: 1, inputs: [], outputs: [] }]);
      const after = threadNices();
      const niced = [...after].filter(([tid, nice]) => !before.has(tid) && nice === 13);
      expect(niced).toHaveLength(1);
      expect(after.get(process.pid)).toBe(before.get(process.pid));
      expect((await store.queryPredictions({ limit: 10 })).map((e) => e.requestId)).toEqual(['r1']);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SqliteWorkerEventStore when its writer thread dies', () => {
  const ev = (requestId: string): PredictionEvent => ({
    requestId,
    ts: 1,
    model: 'm',
    version: 1,
    status: 'ok',
    latencyMs: 1,
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }],
    outputs: [],
  });

  it('fails only the writes posted to the dead thread; a write to its replacement is stored once and acknowledged', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'warden-writer-crash-'));
    const store = new SqliteWorkerEventStore(path.join(dir, 'events.db'));
    try {
      await store.appendBatch(PredictionBatch.of([ev('warm')]));
      // A message the writer cannot read throws in the thread, which then dies ('error', a tick later 'exit').
      (store as unknown as { worker: { postMessage(m: unknown): void } }).worker.postMessage({ id: -1, batch: null });
      await expect(store.appendBatch(PredictionBatch.of([ev('lost')]))).rejects.toThrow();
      // Posted between the dead thread's 'error' and 'exit': goes to a new thread and must not be failed by the old one.
      await expect(store.appendBatch(PredictionBatch.of([ev('retried')]))).resolves.toBeUndefined();
      await new Promise((r) => setTimeout(r, 200));
      expect((await store.queryPredictions({ limit: 10 })).map((e) => e.requestId)).toEqual(['warm', 'retried']);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
