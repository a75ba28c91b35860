/**
 * Historical retrieval streams: a join of 1,000,000 entity rows runs with the worker's heap capped at 128 MB (a
 * join that held the rows, their keys or their results in memory would need several times that), the server's
 * process grows by a bounded amount (RSS sampled every 20 ms, main thread and worker together), and the event loop
 * keeps answering while it runs. bench/features/historical.mts measures the same at 1M × 100 features.
 */
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFeatureRepo, startHistorical, type FeatureRepo } from '../../src/features/index.ts';
import { mulberry32 } from '../../src/random.ts';

const ROWS = 1_000_000;
const STATIONS = 5000;
const H = 3_600_000;
const T0 = Date.UTC(2024, 0, 1);
let dir: string;
let repo: FeatureRepo;

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

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'warden-pit-memory-'));
  const rand = mulberry32(3);
  // Each station's value is its number times 1000 plus the hour: a row's joined value says which source row it was.
  await writeLines(path.join(dir, 'hourly.csv'), 'station_id,event_ts,cnt,temp', STATIONS * 48, (i) => {
    const s = i % STATIONS;
    const h = Math.floor(i / STATIONS);
    return `s${s},${T0 + h * H},${s * 1000 + h},${(rand() * 30).toFixed(2)}`;
  });
  await writeLines(path.join(dir, 'entities.csv'), 'station_id,event_timestamp,label', ROWS, (i) => `s${i % STATIONS},${T0 + ((i * 7919) % (48 * 60)) * 60_000 + 30_000},${i}`);
  repo = parseFeatureRepo(
    {
      entities: [{ name: 'station', joinKeys: ['station_id'] }],
      featureViews: [{ name: 'hourly', entities: ['station'], source: { kind: 'file', path: 'hourly.csv' }, timestampField: 'event_ts', ttl: '2h', schema: [{ name: 'cnt', dtype: 'int' }, { name: 'temp', dtype: 'float' }] }],
    },
    { baseDir: dir },
  );
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('historical retrieval memory', () => {
  it('joins 1M entity rows under a 128 MB worker heap, in order, with bounded RSS and a responsive event loop', async () => {
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const started = performance.now();
    const run = await startHistorical({ repo, features: ['hourly'], entities: { kind: 'csv', path: path.join(dir, 'entities.csv'), timestampColumn: 'event_timestamp' }, output: 'csv', tmpDir: dir, maxHeapMb: 128 });
    let rows = -1;
    let wrong = 0;
    let next = 0;
    let rest = '';
    for await (const chunk of run.chunks()) {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        if (rows++ < 0) continue;
        const [station, ts, label, cnt] = line.split(',');
        // In the entity rows' order; the value of the hour the row falls in (TTL 2h: always within it).
        const s = Number(station!.slice(1));
        const h = Math.floor((Number(ts) - T0) / H);
        if (Number(label) !== next++ || Number(cnt) !== s * 1000 + h) wrong++;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    loop.disable();
    const stats = await run.stats();
    const growthMb = (peak - before) / 1e6;
    console.log(`1M × 2 features: ${seconds.toFixed(1)} s, ${Math.round(ROWS / seconds)} rows/s, RSS +${growthMb.toFixed(0)} MB (peak ${(peak / 1e6).toFixed(0)} MB), worker heap peak ${(stats.peakHeapBytes / 1e6).toFixed(0)} MB, sort runs ${stats.runs}, event loop max ${(loop.max / 1e6).toFixed(0)} ms`);
    expect(rows).toBe(ROWS);
    expect(wrong).toBe(0);
    expect(stats.runs).toBeGreaterThan(3);
    expect(growthMb).toBeLessThan(300);
    expect(loop.max / 1e6).toBeLessThan(500);
  }, 120_000);

  it('fails with a clear error, not a crash, when the heap cap is too small', async () => {
    await expect(
      startHistorical({ repo, features: ['hourly'], entities: { kind: 'csv', path: path.join(dir, 'entities.csv'), timestampColumn: 'event_timestamp' }, output: 'csv', tmpDir: dir, maxHeapMb: 8, sort: { maxRecords: 5_000_000, maxChars: 1e9 } }),
    ).rejects.toThrow(/ran out of its 8 MB heap/);
  }, 60_000);
});
