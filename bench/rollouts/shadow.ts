// bench/rollouts/shadow: what a 100 % shadow rollout costs the callers of the stable version.
// Starts `warden serve` (child process) with v1 (stable) and v2 of a bike model, finds the max rate with no
// rollout (autocannon, fixed connections, best of --max-runs), then at half that rate (autocannon overallRate)
// measures the callers' latency with no rollout and with a shadow rollout of v2 (strategy shadow, mirror 100),
// alternating (A B B A …). Per run: req/s, p50/p99 as autocannon reports them (whole ms, corrected for
// coordinated omission) and exact ones from every response's own time; shadow runs and drops (from /metrics, after
// the shadow queue drained); Warden's CPU per request and per thread; the whole machine's busy share.
// With --wrk2 PATH (Gil Tene's wrk2, built from its upstream source: it is not a Debian package) the half-rate runs
// are paced instead: wrk2 -R sends each connection's requests evenly spaced on a fixed schedule (open loop) and
// times each from when it was due, so a stall counts against every request it delays (coordinated omission
// corrected). wrk2 calibrates for its first 10 s and records from then on: each run lasts 10 s + --duration. The
// max rate is then measured by wrk (closed loop, Debian's package) when it is installed.
// The ratio of the median p99s comes with a 95 % bootstrap interval over the pairs, and the verdict is "within 10 %"
// only when that whole interval is (and there are 8 pairs or more).
// Usage: npm run bench:shadow [-- --duration 10 --connections 16 --reps 4 --max-runs 2 --queue-capacity N --shadow-concurrency N
//          --wrk2 /path/to/wrk2 --env WARDEN_NAME=value …]
// Prints figures; it is not a test.
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import {
  abortRollout,
  args,
  cpuBetween,
  envArgs,
  flag,
  hasWrk,
  inferPath,
  machine,
  maxLoad,
  wrkMs,
  wrkPostScript,
  wrkTotals,
  median,
  metricSum,
  metricsText,
  MODEL,
  oipBody,
  pairedRatio,
  pushBikeVersions,
  rolloutState,
  snapshot,
  startRollout,
  startWarden,
  type Server,
} from './routing.ts';

const duration = flag('duration', 10);
const connections = flag('connections', 16);
const reps = flag('reps', 4);
const maxRuns = flag('max-runs', 2);
/** Server config to try (serving.shadowQueueCapacity, serving.shadowConcurrency); the defaults (1000, 1) when not given. */
const serverEnv: NodeJS.ProcessEnv = {};
const wrk2At = args.indexOf('--wrk2');
const wrk2 = wrk2At >= 0 ? args[wrk2At + 1] : process.env.WRK2;
if (wrk2At >= 0 && (!wrk2 || !existsSync(wrk2))) throw new Error(`--wrk2 takes the path of a wrk2 binary; ${wrk2 ?? '(none)'} does not exist`);
if (args.includes('--queue-capacity')) serverEnv.WARDEN_SERVING_SHADOW_QUEUE_CAPACITY = String(flag('queue-capacity', 1000));
if (args.includes('--shadow-concurrency')) serverEnv.WARDEN_SERVING_SHADOW_CONCURRENCY = String(flag('shadow-concurrency', 2));
// Any other setting, as the environment variable docs/configuration.md names: --env WARDEN_X=value (repeatable).
Object.assign(serverEnv, envArgs());

/** Busy and total jiffies of all cores, from /proc/stat. */
function machineCpu(): { busy: number; total: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const idle = f[3]! + (f[4] ?? 0); // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return { busy: NaN, total: NaN };
  }
}

interface Run {
  /** What produced the load: autocannon (per-second bursts at a set rate), wrk (closed loop) or wrk2 (paced, open loop). */
  by: 'autocannon' | 'wrk' | 'wrk2';
  rps: number;
  /** autocannon's own percentiles (whole milliseconds, with synthetic values for coordinated omission at a fixed rate); for wrk2, its uncorrected ones (timed from when each request was sent). */
  acP50: number;
  acP99: number;
  /** autocannon: percentiles of every response's measured time (µs resolution), no synthetic values. wrk2: timed from when each request was due. */
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** Share of 10 ms slots in which a response arrived: autocannon's rate limit sends each connection's quota at the start of each second, then waits. */
  busySlots: number;
  errors: number;
  non2xx: number;
  /** wrk2 only: its detailed percentile spectrum (ms, from when due, cumulative counts), so runs can be pooled. */
  spectrum?: Spectrum;
}

/** Points of a latency CDF: value (ms) and how many requests took at most that long. */
interface Spectrum {
  ms: number[];
  count: number[];
}

/** The quantile `q` of every request of several runs together, from their spectra (each a step CDF). */
function pooledQuantile(runs: readonly Spectrum[], q: number): number {
  const total = runs.reduce((a, r) => a + (r.count.at(-1) ?? 0), 0);
  const atMost = (v: number) => {
    let n = 0;
    for (const r of runs) {
      let lo = 0;
      let hi = r.ms.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (r.ms[mid]! <= v) lo = mid + 1;
        else hi = mid;
      }
      n += lo > 0 ? r.count[lo - 1]! : 0;
    }
    return n;
  };
  const values = [...new Set(runs.flatMap((r) => r.ms))].sort((a, b) => a - b);
  for (const v of values) if (atMost(v) >= q * total) return v;
  return values.at(-1) ?? NaN;
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]! : NaN;
}

async function load(url: string, seconds: number, rate?: number): Promise<Run> {
  let times = new Float64Array(1 << 20);
  let n = 0;
  const slots = new Set<number>();
  const t0 = performance.now();
  let done!: (r: autocannon.Result) => void;
  let failed!: (e: unknown) => void;
  const finished = new Promise<autocannon.Result>((resolve, reject) => ((done = resolve), (failed = reject)));
  const inst = autocannon(
    {
      url: `${url}${inferPath}`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: oipBody,
      connections,
      duration: seconds,
      ...(rate ? { overallRate: rate } : {}),
    },
    (err, result) => (err ? failed(err) : done(result)),
  );
  // Each response with its own time (ms, fractional): autocannon's histogram keeps whole milliseconds.
  inst.on('response', (_client, status, _bytes, ms) => {
    if (status < 200 || status >= 300) return;
    if (n === times.length) {
      const bigger = new Float64Array(times.length * 2);
      bigger.set(times);
      times = bigger;
    }
    times[n++] = ms;
    slots.add(Math.floor((performance.now() - t0) / 10));
  });
  const r = await finished;
  const sorted = times.subarray(0, n).sort();
  return {
    by: 'autocannon',
    rps: r.requests.average,
    acP50: r.latency.p50,
    acP99: r.latency.p99,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    max: sorted[n - 1] ?? NaN,
    busySlots: slots.size / Math.ceil((performance.now() - t0) / 10),
    errors: r.errors,
    non2xx: r.non2xx,
  };
}

/** The percentiles of one of wrk2's "Latency Distribution (HdrHistogram - …)" sections. */
function wrk2Section(out: string, heading: string): Map<string, number> {
  const at = out.indexOf(heading);
  const got = new Map<string, number>();
  if (at < 0) return got;
  for (const line of out.slice(at).split('\n').slice(1)) {
    const m = line.trim().match(/^([\d.]+)%\s+(\S+)$/);
    if (!m) break;
    got.set(m[1]!, wrkMs(m[2]!));
  }
  return got;
}

/** The rows of the "Detailed Percentile spectrum" that follows `heading` in wrk2's output. */
function wrk2Spectrum(out: string, heading: string): Spectrum | undefined {
  const at = out.indexOf(heading);
  if (at < 0) return undefined;
  const from = out.indexOf('Detailed Percentile spectrum:', at);
  if (from < 0) return undefined;
  const ms: number[] = [];
  const count: number[] = [];
  for (const line of out.slice(from).split('\n').slice(1)) {
    if (line.startsWith('#[')) break;
    const m = line.trim().match(/^([\d.]+)\s+([\d.]+)\s+(\d+)/);
    if (!m) continue;
    ms.push(Number(m[1]));
    count.push(Number(m[3]));
  }
  return ms.length ? { ms, count } : undefined;
}

/** A paced run: wrk2 at `rate` req/s over all connections, one thread (leaves the cores to the server). */
async function loadWrk2(url: string, seconds: number, rate: number): Promise<Run> {
  const script = wrkPostScript();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(wrk2!, ['-t1', `-c${connections}`, `-d${10 + seconds}s`, `-R${rate}`, '--latency', '-U', '-s', script.file, `${url}${inferPath}`]);
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk2 exited ${code}: ${text}`))));
  });
  script.remove();
  const corrected = wrk2Section(out, 'Latency Distribution (HdrHistogram - Recorded Latency)');
  const uncorrected = wrk2Section(out, 'Latency Distribution (HdrHistogram - Uncorrected Latency');
  if (!corrected.has('99.000')) throw new Error(`no latency distribution in wrk2's output:\n${out}`);
  const spectrum = wrk2Spectrum(out, 'Latency Distribution (HdrHistogram - Recorded Latency)');
  return {
    by: 'wrk2',
    // rps is the whole run's mean, calibration included; the percentiles are of the recorded part only.
    ...wrkTotals(out),
    acP50: uncorrected.get('50.000') ?? NaN,
    acP99: uncorrected.get('99.000') ?? NaN,
    p50: corrected.get('50.000')!,
    p99: corrected.get('99.000')!,
    p999: corrected.get('99.900') ?? NaN,
    max: corrected.get('100.000') ?? NaN,
    busySlots: NaN,
    ...(spectrum ? { spectrum } : {}),
  };
}

/** A closed-loop max-rate run: wrk when installed (it costs the machine less), else autocannon. */
async function loadMax(url: string, seconds: number): Promise<Run> {
  if (!hasWrk) return load(url, seconds);
  const r = await maxLoad(url, seconds, connections);
  return { by: 'wrk', rps: r.rps, acP50: NaN, acP99: NaN, p50: r.p50, p99: r.p99, p999: NaN, max: NaN, busySlots: NaN, errors: r.errors, non2xx: r.non2xx };
}

const fmt = (r: Run) =>
  `${r.rps.toFixed(0).padStart(6)} req/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms   p99.9 ${r.p999.toFixed(2).padStart(6)} ms   max ${r.max.toFixed(1).padStart(6)} ms   ` +
  (r.by === 'autocannon'
    ? `autocannon p50/p99 ${r.acP50}/${r.acP99} ms   busy 10-ms slots ${(100 * r.busySlots).toFixed(0)} %   `
    : r.by === 'wrk2'
      ? `(from when due) uncorrected p50/p99 ${r.acP50.toFixed(2)}/${r.acP99.toFixed(2)} ms   `
      : '(wrk, closed loop)   ') +
  `errors ${r.errors} non-2xx ${r.non2xx}`;

async function queueDrained(url: string): Promise<number> {
  const end = performance.now() + 10_000;
  for (;;) {
    const depth = metricSum(await metricsText(url), 'warden_shadow_queue_depth');
    if (depth === 0 || performance.now() > end) return depth;
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Measured {
  run: Run;
  cpuUs: number;
  cores: number;
  threads: string;
  machineBusy: number;
  loadGenCores: number;
  shadowOk: number;
  shadowErr: number;
  droppedFull: number;
  droppedNotLoaded: number;
  logDropped: number;
  served: number;
  state: string;
  /** The serving thread's garbage collections (prom-client's nodejs_gc_duration_seconds): minor (scavenges) and major. */
  gcMinorN: number;
  gcMinorMs: number;
  gcMajorMs: number;
}

/** One measured run; counters are read after the shadow queue drained, so every mirrored copy is accounted for. */
async function measure(srv: Server, rate: number | undefined): Promise<Measured> {
  const state = await rolloutState(srv.url);
  const a = await snapshot(srv);
  const m0 = machineCpu();
  const u0 = process.cpuUsage();
  const w0 = performance.now();
  // With wrk2 the max rate is wrk's (closed loop, as wrk2's pacing is compared against); without it all is autocannon's.
  const run = !wrk2 ? await load(srv.url, duration, rate) : rate === undefined ? await loadMax(srv.url, duration) : await loadWrk2(srv.url, duration, rate);
  const u1 = process.cpuUsage(u0);
  const wall = (performance.now() - w0) / 1000;
  const m1 = machineCpu();
  const b = await snapshot(srv);
  await queueDrained(srv.url);
  const c = await metricsText(srv.url);
  const d = (name: string, labels: Record<string, string> = {}) => metricSum(c, name, labels) - metricSum(a.text, name, labels);
  const cpu = cpuBetween(a, b);
  return {
    run,
    cpuUs: cpu.usPerRequest,
    cores: cpu.cores,
    threads: cpu.threads,
    machineBusy: (m1.busy - m0.busy) / (m1.total - m0.total),
    loadGenCores: (u1.user + u1.system) / 1e6 / wall,
    shadowOk: d('warden_shadow_requests_total', { model: MODEL, outcome: 'ok' }),
    shadowErr: d('warden_shadow_requests_total', { model: MODEL, outcome: 'error' }),
    droppedFull: d('warden_shadow_dropped_total', { model: MODEL, reason: 'queue_full' }),
    droppedNotLoaded: d('warden_shadow_dropped_total', { model: MODEL, reason: 'not_loaded' }),
    logDropped: d('warden_prediction_log_dropped_total'),
    served: b.served - a.served,
    state,
    gcMinorN: metricSum(b.text, 'nodejs_gc_duration_seconds_count', { kind: 'minor' }) - metricSum(a.text, 'nodejs_gc_duration_seconds_count', { kind: 'minor' }),
    gcMinorMs: 1000 * (metricSum(b.text, 'nodejs_gc_duration_seconds_sum', { kind: 'minor' }) - metricSum(a.text, 'nodejs_gc_duration_seconds_sum', { kind: 'minor' })),
    gcMajorMs: 1000 * (metricSum(b.text, 'nodejs_gc_duration_seconds_sum', { kind: 'major' }) - metricSum(a.text, 'nodejs_gc_duration_seconds_sum', { kind: 'major' })),
  };
}

function print(label: string, m: Measured): void {
  console.log(`${label.padEnd(10)} ${fmt(m.run)}`);
  console.log(
    `${''.padEnd(10)} served ${m.served}, shadow runs ok ${m.shadowOk} error ${m.shadowErr}, dropped queue_full ${m.droppedFull} not_loaded ${m.droppedNotLoaded}; prediction log dropped ${m.logDropped}; ` +
      `Warden CPU ${m.cpuUs.toFixed(1)} µs/req, ${m.cores.toFixed(2)} cores [${m.threads}]; serving-thread GC: ${m.gcMinorN} scavenges, ${m.gcMinorMs.toFixed(0)} ms (${(m.gcMinorMs / m.gcMinorN).toFixed(2)} ms each), major ${m.gcMajorMs.toFixed(0)} ms; load generator ${m.loadGenCores.toFixed(2)} cores; machine busy ${(100 * m.machineBusy).toFixed(0)} % of 2 cores; rollout ${m.state}`,
  );
}

console.log(`bench/rollouts/shadow: ${machine()}`);
console.log(
  `${wrk2 ? `max rate by ${hasWrk ? 'wrk' : 'autocannon'}, half rate paced by wrk2 (${wrk2}; 10 s calibration + ${duration} s recorded per run)` : 'autocannon'} at ${connections} connections, ${duration} s per run; ${MODEL} v1 (seed 1, stable) and v2 (seed 2), OIP infer, batch 1; server env ${JSON.stringify(serverEnv)} (empty: shadowQueueCapacity 1000, shadowConcurrency 1)`,
);
const srv = await startWarden(serverEnv);
try {
  await pushBikeVersions(srv.url);
  await load(srv.url, 5); // warm-up
  let max = 0;
  for (let i = 0; i < maxRuns; i++) {
    const m = await measure(srv, undefined);
    print('max rate', m);
    max = Math.max(max, m.run.rps);
  }
  const half = Math.round(max / 2);
  console.log(`\nmax rate (best of ${maxRuns}): ${max.toFixed(0)} req/s; half: ${half} req/s (${wrk2 ? 'wrk2 -R' : 'autocannon overallRate'})\n`);
  const shadowSpec = { mirror: 100 };
  const got: Record<'none' | 'shadow', Measured[]> = { none: [], shadow: [] };
  for (let r = 0; r < reps; r++) {
    const order: ('none' | 'shadow')[] = r % 2 === 0 ? ['none', 'shadow'] : ['shadow', 'none'];
    for (const which of order) {
      if (which === 'shadow') await startRollout(srv.url, 'shadow', shadowSpec);
      const m = await measure(srv, half);
      if (which === 'shadow') await abortRollout(srv.url);
      print(which === 'none' ? 'no shadow' : 'shadow', m);
      got[which].push(m);
    }
  }
  // The same shadow at the max rate: how much of the capacity it takes, and whether its queue keeps up.
  await startRollout(srv.url, 'shadow', shadowSpec);
  const atMax = await measure(srv, undefined);
  await abortRollout(srv.url);
  print('shadow, max', atMax);

  const p99 = (xs: Measured[]) => median(xs.map((x) => x.run.p99));
  const none = p99(got.none);
  const shadow = p99(got.shadow);
  const ratio = shadow / none;
  console.log(`\nat half the max rate (${half} req/s), ${reps} runs each:`);
  console.log(`  caller p99, no shadow: ${got.none.map((x) => x.run.p99.toFixed(2)).join(', ')} ms (median ${none.toFixed(2)}; ${wrk2 ? 'uncorrected' : 'autocannon'} ${got.none.map((x) => x.run.acP99).join(', ')})`);
  console.log(`  caller p99, shadow   : ${got.shadow.map((x) => x.run.p99.toFixed(2)).join(', ')} ms (median ${shadow.toFixed(2)}; ${wrk2 ? 'uncorrected' : 'autocannon'} ${got.shadow.map((x) => x.run.acP99).join(', ')})`);
  console.log(`  caller p50: ${median(got.none.map((x) => x.run.p50)).toFixed(2)} vs ${median(got.shadow.map((x) => x.run.p50)).toFixed(2)} ms`);
  const pairs = got.none.map((x, i) => got.shadow[i]!.run.p99 / x.run.p99);
  // Pairs resampled with replacement: how far the ratio of the medians moves with which windows happened to be slow.
  const { lo, hi, verdict } = pairedRatio(got.shadow.map((x) => x.run.p99), got.none.map((x) => x.run.p99));
  console.log(`  p99 ratio shadow / none: ${ratio.toFixed(3)} (medians; 95 % bootstrap interval over pairs ${lo.toFixed(2)}–${hi.toFixed(2)}; per pair ${pairs.map((x) => x.toFixed(2)).join(', ')}) → ${verdict}`);
  const spectra = (xs: Measured[]) => xs.map((x) => x.run.spectrum).filter((x): x is Spectrum => x !== undefined);
  if (spectra(got.none).length === reps && spectra(got.shadow).length === reps) {
    // Every recorded request of each side's runs together: one p99 over reps × duration seconds of traffic, which a
    // few stalls in one run move far less than they move that run's own p99.
    const pooled = (q: number) => [pooledQuantile(spectra(got.none), q), pooledQuantile(spectra(got.shadow), q)] as const;
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const [a, b] = pooled(q);
      console.log(`  pooled p${(100 * q).toString().padEnd(4)} (every request of the ${reps} runs): no shadow ${a.toFixed(2)} ms, shadow ${b.toFixed(2)} ms, ratio ${(b / a).toFixed(3)}`);
    }
  }
  const sum = (xs: Measured[], f: (m: Measured) => number) => xs.reduce((a, m) => a + f(m), 0);
  console.log(
    `  shadow runs ok ${sum(got.shadow, (m) => m.shadowOk)} of ${sum(got.shadow, (m) => m.served)} served; dropped queue_full ${sum(got.shadow, (m) => m.droppedFull)}, not_loaded ${sum(got.shadow, (m) => m.droppedNotLoaded)}; prediction log dropped ${sum([...got.none, ...got.shadow], (m) => m.logDropped)}`,
  );
  const gc = (xs: Measured[]) => `${median(xs.map((x) => x.gcMinorMs)).toFixed(0)} ms in scavenges (${median(xs.map((x) => x.gcMinorMs / x.gcMinorN)).toFixed(2)} ms each), ${median(xs.map((x) => x.gcMajorMs)).toFixed(0)} ms major`;
  console.log(`  serving-thread GC per ${duration} s run: ${gc(got.none)} vs ${gc(got.shadow)}`);
  console.log(
    `  Warden CPU per request: ${median(got.none.map((x) => x.cpuUs)).toFixed(1)} vs ${median(got.shadow.map((x) => x.cpuUs)).toFixed(1)} µs; cores ${median(got.none.map((x) => x.cores)).toFixed(2)} vs ${median(got.shadow.map((x) => x.cores)).toFixed(2)}; machine busy ${(100 * median(got.none.map((x) => x.machineBusy))).toFixed(0)} vs ${(100 * median(got.shadow.map((x) => x.machineBusy))).toFixed(0)} %`,
  );
} finally {
  await srv.stop();
}
console.log(`\nload average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' / ')}`);
