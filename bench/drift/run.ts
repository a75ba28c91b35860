// bench/drift: the offline drift report (`warden drift`) on 1,000,000 reference × 1,000,000 current rows,
// 20 numeric + 5 categorical features, next to SciPy running the same tests on the same data in the
// same run, plus the online cost of ProfileBuilder.add.
// Usage: node --import tsx bench/drift/run.ts [--rows 1000000] [--seed 1] [--repeat 1] [--keep]
// Prints figures; it is not a test. Each side runs in its own child process so that its peak RSS is its
// own: warden-side.ts (offlineDriftReport, default tests) and scipy_drift.py (python3, or $PYTHON).
// With --repeat N each side runs N times, alternating, and the fastest run of each is reported.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { makeDriftData } from './make-data.ts';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const rows = flag('rows', 1_000_000);
const seed = flag('seed', 1);
const repeat = Math.max(1, flag('repeat', 1));
const keep = args.includes('--keep');
// At most 1,000 reference rows the default tests are p-value tests (KS, chi-squared), which the SciPy side does not run.
if (!(rows > 1000)) throw new Error('--rows must be over 1,000');
const python = process.env.PYTHON ?? 'python3';
const here = import.meta.dirname;
const repo = path.resolve(here, '../..');

/** Relative agreement required between Warden's and SciPy's scores. */
const TOLERANCE = 1e-9;
const TARGET_RSS_MB = 2048;
const TARGET_NS_PER_FEATURE_EVENT = 2000;

interface ColumnScore {
  name: string;
  kind: string;
  test: string;
  score: number;
  drift: boolean;
  currentMissingShare: number;
}

interface SideResult {
  loadSeconds: number;
  reportSeconds: number;
  wallSeconds: number;
  cpuSeconds: number;
  maxRssMB: number;
  driftShare: number;
  datasetDrift: boolean;
  columns: ColumnScore[];
  phases?: { at: number; message: string }[];
  versions?: Record<string, string>;
}

interface Run<T> {
  result: T;
  /** Spawn to exit, interpreter start and imports included. */
  processSeconds: number;
  /** "Maximum resident set size" from /usr/bin/time -v, when it is installed. */
  timeRssMB?: number;
}

const gnuTime = existsSync('/usr/bin/time') && spawnSync('/usr/bin/time', ['-v', 'true']).status === 0;

/** Runs a child (under /usr/bin/time -v when present) and parses the JSON it prints last. */
function runChild<T>(cmd: string, argv: string[]): Run<T> {
  const t0 = performance.now();
  const r = spawnSync(gnuTime ? '/usr/bin/time' : cmd, gnuTime ? ['-v', cmd, ...argv] : argv, { cwd: repo, encoding: 'utf8', maxBuffer: 64 << 20 });
  const processSeconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited with ${r.status}:\n${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  const rss = r.stderr.match(/Maximum resident set size \(kbytes\): (\d+)/);
  return { result: JSON.parse(last) as T, processSeconds, ...(rss ? { timeRssMB: Number(rss[1]) / 1024 } : {}) };
}

const fastest = <T extends { wallSeconds: number }>(runs: Run<T>[]) => runs.reduce((a, b) => (b.result.wallSeconds < a.result.wallSeconds ? b : a));
const relDiff = (a: number, b: number) => (a === b ? 0 : Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b)));
const mb = (x: number) => `${x.toFixed(0)} MB`;
const s = (x: number) => `${x.toFixed(2)} s`;

const dir = mkdtempSync(path.join(tmpdir(), 'warden-drift-bench-'));
try {
  console.log(
    `bench/drift: ${rows.toLocaleString('en-US')} reference × ${rows.toLocaleString('en-US')} current rows, 20 numeric + 5 categorical; ` +
      `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}; load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
  );
  const t = performance.now();
  const data = makeDriftData(dir, rows, seed);
  console.log(`data: seed ${seed}, 2 × ${((rows * data.names.length * 8) / 1e6).toFixed(0)} MB float64 in ${dir}, generated in ${s((performance.now() - t) / 1000)}`);

  const warden: Run<SideResult>[] = [];
  const scipy: Run<SideResult>[] = [];
  for (let i = 0; i < repeat; i++) {
    // Alternate which side goes first, so neither always gets the warmer page cache.
    const order = i % 2 === 0 ? ['warden', 'scipy'] : ['scipy', 'warden'];
    for (const side of order) {
      if (side === 'warden') warden.push(runChild<SideResult>(process.execPath, ['--import', 'tsx', path.join(here, 'warden-side.ts'), dir]));
      else scipy.push(runChild<SideResult>(python, [path.join(here, 'scipy_drift.py'), dir]));
    }
  }
  const w = fastest(warden);
  const p = fastest(scipy);
  const wRss = Math.max(...warden.map((r) => r.timeRssMB ?? r.result.maxRssMB));
  const pRss = Math.max(...scipy.map((r) => r.timeRssMB ?? r.result.maxRssMB));

  console.log('\nper column (score: Warden | SciPy; relative difference; drift W/S)');
  let maxDiff = 0;
  let maxMissingDiff = 0;
  let verdictsAgree = true;
  for (const wc of w.result.columns) {
    const pc = p.result.columns.find((c) => c.name === wc.name);
    if (!pc) throw new Error(`SciPy side has no column ${wc.name}`);
    if (pc.test !== wc.test) throw new Error(`${wc.name}: Warden ran ${wc.test}, SciPy ${pc.test}`);
    const d = relDiff(wc.score, pc.score);
    maxDiff = Math.max(maxDiff, Number.isNaN(d) ? Infinity : d);
    maxMissingDiff = Math.max(maxMissingDiff, relDiff(wc.currentMissingShare, pc.currentMissingShare));
    verdictsAgree &&= wc.drift === pc.drift;
    console.log(
      `  ${wc.name.padEnd(7)} ${wc.kind.padEnd(11)} ${wc.test.padEnd(13)} ${wc.score.toPrecision(12).padStart(18)} | ${pc.score.toPrecision(12).padStart(18)}  ${d.toExponential(1).padStart(7)}  ${wc.drift ? 'D' : '.'}/${pc.drift ? 'D' : '.'}  ${data.notes[wc.name]}`,
    );
  }
  verdictsAgree &&= w.result.driftShare === p.result.driftShare && w.result.datasetDrift === p.result.datasetDrift;

  console.log(`\nonline profile cost (ProfileBuilder.add, ${rows.toLocaleString('en-US')} events × 25 features, 3 passes each)`);
  const prof = runChild<{ results: Record<string, { sampleSize: number; best: number; median: number }> }>(process.execPath, ['--import', 'tsx', path.join(here, 'profile-add.ts'), dir]);
  for (const r of Object.values(prof.result.results)) {
    console.log(`  sampleSize ${String(r.sampleSize).padEnd(5)}: ${r.median.toFixed(1)} ns per feature per event (median; best ${r.best.toFixed(1)})`);
  }
  const online = prof.result.results['sample5000']!;

  const phases = w.result.phases ?? [];
  const at = (prefix: string) => phases.find((ph) => ph.message.startsWith(prefix))?.at ?? NaN;
  const refDone = at('profiled reference');
  const curDone = at('profiled current');
  console.log(`\n${''.padEnd(34)}${'Warden'.padStart(10)}${'SciPy'.padStart(10)}`);
  const row = (label: string, a: string, b: string) => console.log(`${label.padEnd(34)}${a.padStart(10)}${b.padStart(10)}`);
  row('wall: load + report', s(w.result.wallSeconds), s(p.result.wallSeconds));
  row('cpu: load + report (all threads)', s(w.result.cpuSeconds), s(p.result.cpuSeconds));
  row('  load both tables', s(w.result.loadSeconds), s(p.result.loadSeconds));
  row('  report', s(w.result.reportSeconds), s(p.result.reportSeconds));
  row('    schema + reference profile', s(refDone), '—');
  row('    current profile', s(curDone - refDone), '—');
  row('    drift tests + quality', s(w.result.reportSeconds - curDone), s(p.result.reportSeconds));
  row('process wall (start to exit)', s(w.processSeconds), s(p.processSeconds));
  row(`peak RSS (${gnuTime ? '/usr/bin/time -v' : 'getrusage'})`, mb(wRss), mb(pRss));
  console.log(`speedup (SciPy wall / Warden wall): ${(p.result.wallSeconds / w.result.wallSeconds).toFixed(2)}×${repeat > 1 ? ` (fastest of ${repeat} runs each)` : ''}`);
  console.log(`max relative score difference: ${maxDiff.toExponential(2)} (tolerance ${TOLERANCE}); NaN shares: ${maxMissingDiff.toExponential(2)}; verdicts and drift share ${verdictsAgree ? 'agree' : 'DIFFER'} (drift share ${w.result.driftShare} vs ${p.result.driftShare})`);
  if (p.result.versions) console.log(`SciPy side: ${Object.entries(p.result.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);

  const check = (ok: boolean, text: string) => console.log(`  ${ok ? 'met   ' : 'MISSED'} ${text}`);
  console.log('\ntargets');
  check(w.result.wallSeconds < p.result.wallSeconds, `faster than SciPy: ${s(w.result.wallSeconds)} vs ${s(p.result.wallSeconds)}`);
  check(wRss < TARGET_RSS_MB, `peak RSS < 2 GB: ${mb(wRss)}`);
  check(online.median <= TARGET_NS_PER_FEATURE_EVENT, `profile update ≤ 2 µs per feature per event: ${online.median.toFixed(1)} ns (sampleSize 5,000)`);
  check(maxDiff <= TOLERANCE && maxMissingDiff <= TOLERANCE && verdictsAgree, `same scores as SciPy to ${TOLERANCE} relative: ${maxDiff.toExponential(2)}`);
  console.log(`load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
} finally {
  if (keep) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
