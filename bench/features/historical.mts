// Historical retrieval (point-in-time join) throughput and memory: `--rows` entity rows (default 1M) joined with
// `--views` file-sourced views (default 10) of `--features` features each (default 10: 100 features in all), every view
// `--source-rows` rows (default 200k: 10k stations × 20 times, a quarter of them late backfills). The join runs as the
// server runs it (startHistorical: a worker thread), its CSV output read to the end and counted. Prints the phases,
// rows/s, the output's size, and the process's RSS (main thread and worker together) before and at its peak, sampled
// every 50 ms; plus the event loop's longest stall and its p99 delay while it ran.
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { parseFeatureRepo, startHistorical } from '../../src/features/index.ts';
import { mulberry32 } from '../../src/random.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    views: { type: 'string', default: '10' },
    features: { type: 'string', default: '10' },
    'source-rows': { type: 'string', default: '200000' },
    stations: { type: 'string', default: '10000' },
    keep: { type: 'boolean', default: false },
  },
});
const ROWS = Number(values.rows);
const VIEWS = Number(values.views);
const FEATURES = Number(values.features);
const SOURCE_ROWS = Number(values['source-rows']);
const STATIONS = Number(values.stations);
const H = 3_600_000;
const T0 = Date.UTC(2024, 0, 1);
const SPAN_H = 24 * 30;

const dir = mkdtempSync(path.join(tmpdir(), 'warden-bench-historical-'));
const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;

async function writeLines(file: string, header: string, n: number, line: (i: number) => string): Promise<void> {
  const out = createWriteStream(file);
  out.write(`${header}\n`);
  let buf = '';
  for (let i = 0; i < n; i++) {
    buf += `${line(i)}\n`;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
}

const rand = mulberry32(42);
const t0 = performance.now();
const featureNames = (v: number) => Array.from({ length: FEATURES }, (_, j) => `v${v}_f${j}`);
for (let v = 0; v < VIEWS; v++) {
  const names = featureNames(v);
  await writeLines(path.join(dir, `view${v}.csv`), `station_id,event_ts,created_ts,${names.join(',')}`, SOURCE_ROWS, () => {
    const s = Math.floor(rand() * STATIONS);
    const e = T0 + Math.floor(rand() * SPAN_H) * H;
    const c = rand() < 0.25 ? e + Math.floor(rand() * 48) * H : e;
    let line = `s${s},${e},${c}`;
    for (let j = 0; j < FEATURES; j++) line += `,${(rand() * 1000).toFixed(3)}`;
    return line;
  });
}
await writeLines(path.join(dir, 'entities.csv'), 'station_id,event_timestamp,label', ROWS, (i) => `s${Math.floor(rand() * STATIONS)},${T0 + Math.floor(rand() * SPAN_H * 60) * 60_000},${i % 7}`);
console.log(`wrote ${ROWS.toLocaleString('en-US')} entity rows and ${VIEWS} views × ${SOURCE_ROWS.toLocaleString('en-US')} rows × ${FEATURES} features in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const repo = parseFeatureRepo(
  {
    entities: [{ name: 'station', joinKeys: ['station_id'] }],
    featureViews: Array.from({ length: VIEWS }, (_, v) => ({
      name: `view${v}`,
      entities: ['station'],
      source: { kind: 'file', path: `view${v}.csv` },
      timestampField: 'event_ts',
      createdTimestampField: 'created_ts',
      ttl: '7d',
      schema: featureNames(v).map((name) => ({ name, dtype: 'float' })),
    })),
  },
  { baseDir: dir },
);

global.gc?.();
const rssBefore = process.memoryUsage().rss;
let peak = rssBefore;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const started = performance.now();
const run = await startHistorical({
  repo,
  features: Array.from({ length: VIEWS }, (_, v) => `view${v}`),
  entities: { kind: 'csv', path: path.join(dir, 'entities.csv'), timestampColumn: 'event_timestamp' },
  output: 'csv',
  tmpDir: dir,
});
const readyAt = performance.now();
let bytes = 0;
let chunks = 0;
for await (const chunk of run.chunks()) {
  bytes += Buffer.byteLength(chunk);
  chunks++;
}
const ended = performance.now();
clearInterval(sampler);
loop.disable();
const stats = await run.stats();
const secs = (ended - started) / 1000;
console.log(
  JSON.stringify({
    rows: stats.rows,
    features: VIEWS * FEATURES,
    views: VIEWS,
    sourceRows: VIEWS * SOURCE_ROWS,
    seconds: Number(secs.toFixed(1)),
    rowsPerSecond: Math.round(stats.rows / secs),
    firstByteSeconds: Number(((readyAt - started) / 1000).toFixed(1)),
    phasesMs: Object.fromEntries(Object.entries(stats.ms).map(([k, v]) => [k, Math.round(v)])),
    sortRuns: stats.runs,
    buckets: stats.buckets,
    outputBytes: bytes,
    chunks,
    rssBefore: mb(rssBefore),
    rssPeak: mb(peak),
    rssGrowth: mb(peak - rssBefore),
    workerPeakHeap: mb(stats.peakHeapBytes),
    eventLoopMaxStallMs: Number((loop.max / 1e6).toFixed(1)),
    eventLoopP99Ms: Number((loop.percentile(99) / 1e6).toFixed(1)),
    missingShare: Number((Object.values(stats.missing).reduce((a, b) => a + b, 0) / (stats.rows * VIEWS)).toFixed(3)),
  }),
);
if (!values.keep) rmSync(dir, { recursive: true, force: true });
