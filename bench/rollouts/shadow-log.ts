// bench/rollouts/shadow-log: what logging a shadow copy costs the prediction log, one row per copy against one row
// per wave. Appends the same copies (a regressor's one-row answers, time-ordered request ids like the server's) to
// a fresh events.db through SqliteEventStore.appendBatch, in batches as the log hands them over, and prints per copy
// the time to pack the events (serving thread) and to write them (the writer thread's work), plus the same rows
// inserted by bare better-sqlite3 as a floor.
// Usage: npm run bench:shadow-log [-- --copies 100000 --wave 32 --batch 1000]
// Prints figures; it is not a test.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { timeOrderedId } from '../../src/serving/request-id.ts';
import { PredictionBatch, SqliteEventStore, type PredictionEvent } from '../../src/storage/index.ts';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const COPIES = flag('copies', 100_000);
const WAVE = flag('wave', 32);
const BATCH = flag('batch', 1000);

function copyEvent(id: string, ts: number, y: number): PredictionEvent {
  return { requestId: id, ts, model: 'bike', version: 2, status: 'shadow', latencyMs: 0.3, inputs: null, outputs: [{ name: 'variable', datatype: 'FP32', shape: [1, 1], data: Float32Array.of(y) }] };
}

function waveEvent(ids: string[], ts: number[], ys: Float32Array): PredictionEvent {
  return {
    ...copyEvent(ids[0]!, ts[0]!, 0),
    outputs: [{ name: 'variable', datatype: 'FP32', shape: [ids.length, 1], data: ys }],
    copies: { requestIds: ids, ts, rows: ids.map(() => 1) },
  };
}

async function run(label: string, makeEvents: (ids: string[], ts: number[]) => PredictionEvent[]): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'warden-shadow-log-'));
  const store = new SqliteEventStore(path.join(dir, 'events.db'));
  let packMs = 0;
  let writeMs = 0;
  let written = 0;
  const t0 = Date.now();
  for (let done = 0; done < COPIES; done += BATCH) {
    const n = Math.min(BATCH, COPIES - done);
    const ids = Array.from({ length: n }, () => timeOrderedId());
    const ts = ids.map((_, i) => t0 + done + i);
    const started = performance.now();
    const batch = new PredictionBatch(64);
    for (const e of makeEvents(ids, ts)) batch.push(e);
    const packed = performance.now();
    await store.appendBatch(batch);
    packMs += packed - started;
    writeMs += performance.now() - packed;
    written += batch.length;
  }
  const count = await store.countPredictions({ status: 'shadow' });
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(`${label.padEnd(22)} ${written} rows for ${count} copies: pack ${((packMs * 1000) / COPIES).toFixed(2)} µs, write ${((writeMs * 1000) / COPIES).toFixed(2)} µs per copy`);
}

function floor(): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'warden-shadow-log-'));
  // The same table and indexes as the events store's predictions, without its code around the insert.
  const store = new SqliteEventStore(path.join(dir, 'events.db'));
  void store.close();
  const db = new Database(path.join(dir, 'events.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const insert = db.prepare(`INSERT INTO predictions (request_id, ts, model, version, status, latency_ms, inputs, outputs) VALUES (?, ?, 'bike', 2, 'shadow', 0.3, 'null', ?)`);
  const out = JSON.stringify([{ name: 'variable', datatype: 'FP32', shape: [1, 1], data: [1.5] }]);
  const tx = db.transaction((ids: string[], t: number) => {
    for (let i = 0; i < ids.length; i++) insert.run(ids[i], t + i, out);
  });
  let ms = 0;
  for (let done = 0; done < COPIES; done += BATCH) {
    const ids = Array.from({ length: Math.min(BATCH, COPIES - done) }, () => timeOrderedId());
    const started = performance.now();
    tx(ids, Date.now());
    ms += performance.now() - started;
  }
  db.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(`${'bare better-sqlite3'.padEnd(22)} ${COPIES} rows: write ${((ms * 1000) / COPIES).toFixed(2)} µs per copy`);
}

console.log(`bench/rollouts/shadow-log: ${COPIES} shadow copies, batches of ${BATCH}, waves of ${WAVE}; Node ${process.version}`);
await run('one row per copy', (ids, ts) => ids.map((id, i) => copyEvent(id, ts[i]!, i)));
await run(`one row per wave`, (ids, ts) => {
  const out: PredictionEvent[] = [];
  for (let i = 0; i < ids.length; i += WAVE) out.push(waveEvent(ids.slice(i, i + WAVE), ts.slice(i, i + WAVE), Float32Array.from(ids.slice(i, i + WAVE), (_, k) => i + k)));
  return out;
});
floor();
