// bench/drift, Warden side (a child of run.ts so its peak RSS is its own): loads the two raw float64
// tables into Float64Array columns, runs the offline drift report with the default tests and prints
// one JSON line with timings, peak RSS and every column's scores.
// Usage: node --import tsx bench/drift/warden-side.ts <data dir>
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';
// offline.ts rather than monitoring/index.ts: the report's own modules, not the service's (+25 MB RSS at start).
import { offlineDriftReport, type ColumnarTable } from '../../src/monitoring/offline.ts';
import type { DriftBenchData } from './make-data.ts';

const started = performance.now();
const dir = process.argv[2];
if (!dir) throw new Error('usage: warden-side.ts <data dir>');
const meta = JSON.parse(readFileSync(path.join(dir, 'meta.json'), 'utf8')) as DriftBenchData;

/** One table: a single Float64Array read straight from the file, its columns as views (no copies). */
function load(file: string): ColumnarTable {
  const all = new Float64Array(meta.rows * meta.names.length);
  const bytes = new Uint8Array(all.buffer);
  const fd = openSync(file, 'r');
  try {
    for (let off = 0; off < bytes.length; ) {
      const n = readSync(fd, bytes, off, Math.min(bytes.length - off, 1 << 30), off);
      if (n === 0) throw new Error(`${file} is shorter than ${bytes.length} bytes`);
      off += n;
    }
  } finally {
    closeSync(fd);
  }
  return { names: meta.names, rows: meta.rows, columns: meta.names.map((_, j) => all.subarray(j * meta.rows, (j + 1) * meta.rows)) };
}

const t0 = performance.now();
const cpu0 = process.cpuUsage();
const reference = load(meta.files.reference);
const current = load(meta.files.current);
const t1 = performance.now();
// Phase marks from the report's progress messages show where the time goes.
const phases: { at: number; message: string }[] = [];
const report = offlineDriftReport(reference, current, {
  categorical: meta.categorical,
  onProgress: (message) => phases.push({ at: (performance.now() - t1) / 1000, message }),
});
const t2 = performance.now();
const cpu = process.cpuUsage(cpu0);

const rowsText = meta.rows.toLocaleString('en-US');
const missing = new Map(report.quality.checks.filter((c) => c.metric === 'completeness').map((c) => [c.column, 1 - c.value]));
console.log(
  JSON.stringify({
    loadSeconds: (t1 - t0) / 1000,
    reportSeconds: (t2 - t1) / 1000,
    wallSeconds: (t2 - t0) / 1000,
    sinceStartSeconds: (t2 - started) / 1000,
    // User + system CPU of every thread (GC helpers included) over load + report.
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    // process.resourceUsage().maxRSS is getrusage's ru_maxrss: kilobytes on Linux.
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    phases: phases.filter((p) => !p.message.startsWith('profiled') || p.message.includes(`${rowsText}/${rowsText} rows`)),
    driftShare: report.drift.driftShare,
    datasetDrift: report.drift.datasetDrift,
    columns: report.drift.columns.map((c) => ({
      name: c.column,
      kind: c.kind,
      test: c.test,
      score: c.score,
      drift: c.drift,
      currentMissingShare: missing.get(c.column) ?? NaN,
    })),
  }),
);
