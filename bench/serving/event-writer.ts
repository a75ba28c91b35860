// bench/serving/event-writer.ts: what the prediction log's writer thread spends per event, by request-id
// kind. Appends N bike-demand events (11 FP32 inputs, 1 output) to a fresh SQLite event store in batches of
// 2,000 — what the writer thread does — once with random UUID v4 request ids and once with Warden's
// time-ordered v7 ids, and prints wall and CPU microseconds per event.
// Usage: node --import tsx bench/serving/event-writer.ts [--events 300000]
// Prints figures; it is not a test.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { timeOrderedId } from '../../src/serving/index.ts';
import { PredictionBatch, SqliteEventStore } from '../../src/storage/index.ts';

const args = process.argv.slice(2);
const i = args.indexOf('--events');
const total = i >= 0 ? Number(args[i + 1]) : 300_000;
const batchSize = 2_000;
const inputs = Float32Array.from([3, 7, 17, 0, 3, 1, 1, 0.7, 0.65, 0.5, 0.2]);

function run(label: string, id: () => string): void {
  const dir = mkdtempSync(path.join(tmpdir(), 'warden-writer-bench-'));
  const store = new SqliteEventStore(path.join(dir, 'events.db'));
  let wall = 0;
  let cpu = 0;
  for (let done = 0; done < total; done += batchSize) {
    const batch = new PredictionBatch(batchSize);
    for (let k = 0; k < batchSize; k++) {
      batch.push({
        requestId: id(),
        ts: Date.now(),
        model: 'bike-demand',
        version: 1,
        status: 'ok',
        latencyMs: 0.41,
        inputs: [{ name: 'input', datatype: 'FP32', dims: [1, 11], data: inputs }],
        outputs: [{ name: 'variable', datatype: 'FP32', shape: [1, 1], data: [Math.fround(100 + k)] }],
      });
    }
    // Only the append is timed: building the batch is the serving thread's work.
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    void store.appendBatch(batch);
    wall += performance.now() - t0;
    const c = process.cpuUsage(c0);
    cpu += (c.user + c.system) / 1000;
  }
  void store.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(`${label.padEnd(28)} ${((wall * 1000) / total).toFixed(2).padStart(6)} µs/event wall   ${((cpu * 1000) / total).toFixed(2).padStart(6)} µs/event CPU`);
}

console.log(`event writer: ${total} events in batches of ${batchSize}, SQLite WAL, one process`);
run('random request ids (v4)', randomUUID);
run('time-ordered request ids (v7)', timeOrderedId);
