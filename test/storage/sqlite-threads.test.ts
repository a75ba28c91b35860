import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { PredictionBatch, SqliteWorkerEventStore, type PredictionEvent } from '../../src/storage/index.ts';
import { openSqlite } from '../../src/storage/sqlite/database.ts';
import { metadataMigrations } from '../../src/storage/sqlite/metadata-store.ts';

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

describe('openSqlite from several threads at once', () => {
  it('migrates a fresh file exactly once: no thread fails on tables another one created', async () => {
    const boot = new URL('../../src/storage/sqlite/worker-boot.js', import.meta.url);
    const entry = new URL('../helpers/open-sqlite-thread.ts', import.meta.url).href;
    const outcomes: string[] = [];
    // Before the fix about one round in ten had a thread fail with "table … already exists".
    for (let round = 0; round < 20; round++) {
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'warden-open-race-')), 'metadata.db');
      const results = await Promise.all(
        Array.from(
          { length: 4 },
          () =>
            new Promise<string>((resolve) => {
              const w = new Worker(boot, { workerData: { entry, file } });
              w.once('message', (m: string) => {
                resolve(m);
                void w.terminate();
              });
              w.once('error', (e) => resolve(`error: ${e.message}`));
            }),
        ),
      );
      outcomes.push(...results);
      rmSync(path.dirname(file), { recursive: true, force: true });
    }
    expect(outcomes.filter((o) => o !== 'ok')).toEqual([]);
    expect(outcomes).toHaveLength(80);
  }, 60_000);
});

describe('opening and closing around other writers', () => {
  it('opens an up-to-date file at once while another connection holds the write lock', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'warden-open-locked-'));
    const file = path.join(dir, 'metadata.db');
    try {
      openSqlite(file, metadataMigrations).close();
      const holder = new Database(file);
      holder.pragma('busy_timeout = 0');
      holder.exec('BEGIN IMMEDIATE');
      const t0 = performance.now();
      openSqlite(file, metadataMigrations).close();
      // busy_timeout is 5 s: an open that waited for the lock would take that long, then fail.
      expect(performance.now() - t0).toBeLessThan(1_000);
      holder.exec('ROLLBACK');
      holder.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a closed worker store refuses writes instead of starting a writer thread no one closes', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'warden-closed-store-'));
    const store = new SqliteWorkerEventStore(path.join(dir, 'events.db'));
    try {
      await store.addSliCounts([{ slo: 'a', ts: 0, source: 'traffic', good: 1, total: 1 }]);
      await store.close();
      await expect(store.addSliCounts([{ slo: 'a', ts: 0, source: 'traffic', good: 1, total: 1 }])).rejects.toThrow(/closed/);
      await expect(store.appendPredictions([{ requestId: 'r', ts: 1, model: 'm', version: 1, status: 'ok', latencyMs: 1, inputs: [], outputs: [] }])).rejects.toThrow(/closed/);
      expect((store as unknown as { worker: unknown }).worker).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
