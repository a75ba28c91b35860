/**
 * What one cost refresh costs (docs/benchmarks.md#cost): every replica re-reads the month's hour buckets of every
 * deployment from the traffic table and prices them every `cost.refreshMs` (10 s). A SQLite store is filled with a
 * full month (31 days × 24 hours) for N deployments × 2 versions; the refresh is timed on it, off the request path.
 *
 *   node --import tsx bench/cost/refresh.mts [--deployments 20] [--rounds 9]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { CostMeter } from '../../src/cost/index.ts';
import { parseConfig } from '../../src/config.ts';
import { openStores, type TrafficBucketRecord } from '../../src/storage/index.ts';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const DEPLOYMENTS = arg('deployments', 20);
const ROUNDS = arg('rounds', 9);
const H = 3_600_000;
// The last hour of a 31-day month: the month's every hour is read.
const NOW = Date.UTC(2026, 0, 31, 23, 30);

const dir = mkdtempSync(path.join(tmpdir(), 'warden-bench-cost-'));
const stores = openStores(dir);
try {
  const rows: TrafficBucketRecord[] = [];
  for (let h = Date.UTC(2026, 0, 1); h <= NOW; h += H) {
    for (let d = 0; d < DEPLOYMENTS; d++) {
      for (const version of [1, 2]) {
        rows.push({ model: `dep-${d}`, version, step: 'hour', ts: h, requests: 1000, ok: 990, clientErrors: 10, serverErrors: 0, shadow: 0, rows: 990, latencySumMs: 2000, minMs: 1, maxMs: 9, cpuMs: 1500, histogram: [1, 2, 3], errors: {} });
      }
    }
  }
  for (let i = 0; i < rows.length; i += 5000) await stores.events.addTraffic(rows.slice(i, i + 5000));
  const budgets = Object.fromEntries(Array.from({ length: DEPLOYMENTS }, (_, d) => [`dep-${d}`, { daily: 1, monthly: 20, cap: 'throttle' as const }]));
  const settings = { ...parseConfig({ cost: { pricePerCpuHour: 0.05 } }).cost, deployments: budgets };
  const meter = new CostMeter({ events: stores.events, metadata: stores.metadata, settings, now: () => NOW });
  const t0 = process.hrtime.bigint();
  let report = await meter.refresh();
  const first = Number(process.hrtime.bigint() - t0) / 1e6;
  const times: number[] = [];
  // How long the event loop is held at a time during refreshes (what a request arriving then would wait).
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    report = await meter.refresh();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  loop.disable();
  times.sort((a, b) => a - b);
  console.log(`first refresh (reads the whole month once): ${first.toFixed(1)} ms`);
  console.log(`hour buckets in the month: ${rows.length.toLocaleString('en')} (${DEPLOYMENTS} deployments × 2 versions × ${rows.length / DEPLOYMENTS / 2} hours)`);
  console.log(`cost refresh (read, price, budgets, caps): median ${times[Math.floor(times.length / 2)]!.toFixed(1)} ms, best ${times[0]!.toFixed(1)} ms, worst ${times.at(-1)!.toFixed(1)} ms over ${ROUNDS} rounds`);
  console.log(`event loop held at most ${(loop.max / 1e6).toFixed(1)} ms at a time during the refreshes (p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms; 1 ms resolution)`);
  console.log(`deployments capped: ${report.deployments.filter((d) => d.capped).length} of ${report.deployments.length}; dep-0 month spend ${report.deployments[0]!.spend.month.toFixed(4)}`);
} finally {
  await stores.close();
  rmSync(dir, { recursive: true, force: true });
}
