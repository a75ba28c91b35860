/**
 * Memory and time of materializing a large CSV: N rows (default 1,000,000, each a distinct entity) streamed into the
 * embedded online store (features.db) in batches of 5,000. Prints rows/s and the process's peak RSS and heap over
 * the run, sampled every 20 ms, against its RSS before: bounded memory means the peak does not grow with N.
 *
 *   node --import tsx bench/features/materialize.mts [rows]
 */
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Materializer } from '../../src/features/materialize.ts';
import type { FeatureRepo } from '../../src/features/types.ts';
import { SqliteFeatureStore } from '../../src/storage/sqlite/feature-store.ts';
import { SqliteMetadataStore } from '../../src/storage/sqlite/metadata-store.ts';

const N = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(path.join(tmpdir(), 'warden-bench-mat-'));
const file = path.join(dir, 'big.csv');
const T0 = Date.UTC(2012, 0, 1);

const out = createWriteStream(file);
out.write('station_id,ts,created,cnt,temp,hum,windspeed,busy\n');
for (let i = 0; i < N; i++) {
  const line = `s${i},${T0 + i * 1000},${T0 + i},${i % 9000},${((i % 100) / 100).toFixed(2)},${((i % 77) / 77).toFixed(4)},${((i % 13) / 13).toFixed(4)},${i % 2 === 0}\n`;
  if (!out.write(line)) await once(out, 'drain');
}
out.end();
await once(out, 'finish');

const repo: FeatureRepo = {
  entities: [{ name: 'station', joinKeys: ['station_id'] }],
  featureViews: [
    {
      name: 'big',
      entities: ['station'],
      source: { kind: 'file', path: file, format: 'csv' },
      timestampField: 'ts',
      createdTimestampField: 'created',
      ttlMs: 0,
      schema: [
        { name: 'cnt', dtype: 'int' },
        { name: 'temp', dtype: 'float' },
        { name: 'hum', dtype: 'float' },
        { name: 'windspeed', dtype: 'float' },
        { name: 'busy', dtype: 'bool' },
      ],
      tags: {},
    },
  ],
};
const features = new SqliteFeatureStore(path.join(dir, 'features.db'));
const metadata = new SqliteMetadataStore(path.join(dir, 'metadata.db'));
const m = new Materializer({ store: features, metadata, repo: () => repo, logger: pino({ level: 'silent' }), promRegistry: new Registry(), holder: 'bench' });

globalThis.gc?.();
const before = process.memoryUsage();
let peakRss = before.rss;
let peakHeap = before.heapUsed;
const timer = setInterval(() => {
  const u = process.memoryUsage();
  peakRss = Math.max(peakRss, u.rss);
  peakHeap = Math.max(peakHeap, u.heapUsed);
}, 20);
const t = performance.now();
const run = await m.run(['big'], 'bench');
const seconds = (performance.now() - t) / 1000;
clearInterval(timer);
const mb = (b: number) => (b / 1024 / 1024).toFixed(0);
console.log(
  JSON.stringify({
    rows: N,
    fileMB: mb(statSync(file).size),
    state: run.state,
    written: run.views[0]!.rowsWritten,
    seconds: Number(seconds.toFixed(1)),
    rowsPerSecond: Math.round(N / seconds),
    rssBeforeMB: mb(before.rss),
    peakRssMB: mb(peakRss),
    rssGrowthMB: mb(peakRss - before.rss),
    peakHeapMB: mb(peakHeap),
  }),
);
await features.close();
await metadata.close();
rmSync(dir, { recursive: true, force: true });
