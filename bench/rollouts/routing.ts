// bench/rollouts/routing: what rollout routing costs a request.
//  1. In process: Router.pick (no rollout; canary 10 %; shadow; A/B by key) and Router.mirror, millions of
//     calls per repetition, several repetitions; ns per call, median and spread.
//  2. End to end: a Warden server (child process) with two versions of a bike model trained with different
//     seeds; wrk (autocannon when wrk is missing) at a fixed connection count against the deployment with no
//     rollout, a canary at weight 0 (routing runs, v1 still answers everything) and a canary at weight 50,
//     alternating; req/s, p50/p99 and Warden's CPU per request.
// Usage: npm run bench:routing [-- --calls 5000000 --reps 7 --no-micro | --duration 8 --connections 16 --e2e-reps 3
//          --configs none,canary0,canary50 --no-e2e]
// Prints figures; it is not a test. The helpers below are shared with bench/rollouts/shadow.ts.
import autocannon from 'autocannon';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { Router, type RoutePolicy } from '../../src/serving/router.ts';
import { startChild } from '../serving/child.ts';

export const args = process.argv.slice(2);
export const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} takes a positive number`);
  return v;
};

/** Server settings given as `--env WARDEN_NAME=value` (repeatable), as docs/configuration.md names them. */
export function envArgs(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  args.forEach((a, i) => {
    if (a !== '--env') return;
    const m = /^(WARDEN_[A-Z0-9_]+)=(.*)$/.exec(args[i + 1] ?? '');
    if (!m) throw new Error(`--env takes WARDEN_NAME=value; got ${args[i + 1] ?? '(nothing)'}`);
    env[m[1]!] = m[2]!;
  });
  return env;
}

/**
 * The ratio of the medians of paired figures (a[i] with b[i]), with a 95 % bootstrap interval over the pairs
 * (resampled with replacement, fixed seed), and the verdict against a tolerance of 10 %: "within" only when the
 * whole interval is at or below 1.10, and none under 8 pairs.
 */
export function pairedRatio(a: readonly number[], b: readonly number[]): { ratio: number; lo: number; hi: number; verdict: string } {
  const n = a.length;
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const boot: number[] = [];
  for (let k = 0; k < 10_000; k++) {
    const idx = Array.from({ length: n }, () => Math.floor(rand() * n));
    boot.push(median(idx.map((i) => a[i]!)) / median(idx.map((i) => b[i]!)));
  }
  boot.sort((x, y) => x - y);
  const lo = boot[Math.floor(0.025 * boot.length)]!;
  const hi = boot[Math.floor(0.975 * boot.length)]!;
  // Fewer pairs than this make an interval that says nothing about the spread between windows.
  const verdict = n < 8 ? 'too few pairs for a verdict (8 or more)' : hi <= 1.1 ? 'within 10 %' : lo > 1.1 ? 'NOT within 10 %' : 'not shown either way at this noise';
  return { ratio: median([...a]) / median([...b]), lo, hi, verdict };
}

export const MODEL = 'bike';
const row = { season: 3, mnth: 7, hr: 17, holiday: 0, weekday: 3, workingday: 1, weathersit: 1, temp: 0.7, atemp: 0.65, hum: 0.5, windspeed: 0.2 };
export const oipBody = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 11], datatype: 'FP32', data: Object.values(row) }] });
export const inferPath = `/v2/models/${MODEL}/infer`;

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export function machine(): string {
  const c = cpus();
  return `${c.length} cores (${c[0]?.model.trim()}), Node ${process.versions.node}, load average ${loadavg().map((l) => l.toFixed(2)).join(' / ')}`;
}

// ---------------------------------------------------------------------------------------------- server helpers

export interface Server {
  child: ChildProcess;
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** `warden serve` on a fresh data dir, auth off (loopback), as a child process: the load generator keeps its own event loop. `nodeArgs` go to node (e.g. --cpu-prof). */
export async function startWarden(env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Promise<Server> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'warden-bench-rollouts-'));
  const { child, url } = await startChild(process.execPath, [...nodeArgs, 'bin/warden.js', 'serve', '--port', '0', '--data-dir', dataDir], {
    WARDEN_AUTH_REQUIRED: 'false',
    WARDEN_LOG_LEVEL: 'info',
    ...env,
  });
  return {
    child,
    url,
    dataDir,
    async stop() {
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function api(url: string, method: string, p: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}${p}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Pushes `onnx` as a new version of `model`, optionally under an alias. */
export async function pushVersion(url: string, model: string, onnx: Uint8Array, alias?: string): Promise<void> {
  const res = await fetch(`${url}/api/v1/models/${model}/versions${alias ? `?alias=${alias}` : ''}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(onnx) });
  if (res.status !== 201) throw new Error(`push of a version of ${model} answered ${res.status}: ${await res.text()}`);
}

/** Pushes v1 (seed 1, alias champion: the stable version) and v2 (seed 2) of the linear bike model; returns v1's bytes. */
export async function pushBikeVersions(url: string): Promise<Uint8Array> {
  const v1 = (await train({ ...bikeSharingDemoOptions('linear'), seed: 1 })).onnx;
  await pushVersion(url, MODEL, v1, 'champion');
  await pushVersion(url, MODEL, (await train({ ...bikeSharingDemoOptions('linear'), seed: 2 })).onnx);
  return v1;
}

/** Longer than the syncMs (1 s by default) after which every replica's router follows the store. */
export const SETTLE_MS = 1500;

/**
 * Starts a rollout of v2 against v1. The analysis interval is set past the end of the bench and failures are
 * tolerated, so no analysis run lands inside a measurement and none ends the rollout: what is measured is the
 * request path (routing, mirroring), not the analysis.
 */
export async function startRollout(url: string, strategy: 'canary' | 'shadow', spec: Record<string, unknown>): Promise<void> {
  const r = await api(url, 'POST', `/api/v1/deployments/${MODEL}/deploy`, {
    version: 2,
    strategy,
    reason: 'bench',
    inheritMonitoring: false,
    spec: { ...spec, analysis: { interval: '1h', failureLimit: 1000 }, abortOnPage: false },
  });
  if (r.status !== 200) throw new Error(`deploy answered ${r.status}: ${JSON.stringify(r.body)}`);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
}

export async function abortRollout(url: string): Promise<void> {
  const r = await api(url, 'POST', `/api/v1/deployments/${MODEL}/rollout/abort`, { reason: 'bench' });
  if (r.status !== 200) throw new Error(`abort answered ${r.status}: ${JSON.stringify(r.body)}`);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
}

/** State of the deployment's current rollout, or 'none'. */
export async function rolloutState(url: string): Promise<string> {
  const d = await api(url, 'GET', `/api/v1/deployments/${MODEL}`);
  const c = d.body.candidate as { state?: string } | null;
  return c?.state ?? 'none';
}

export async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

/** Sum of a metric's samples whose label set contains every `label="value"` given. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

/** Per-thread CPU seconds of a process from /proc/<pid>/task/*\/stat, keyed "comm" (the main thread as "main"). */
export function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  const tick = 100; // USER_HZ on Linux
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = Number(tid) === pid ? 'main' : stat.slice(stat.indexOf('(') + 1, close);
      const f = stat.slice(close + 2).split(' ');
      const s = (Number(f[11]) + Number(f[12])) / tick; // utime + stime (fields 14 and 15)
      out.set(comm, (out.get(comm) ?? 0) + s);
    }
  } catch {
    /* not Linux, or the process is gone */
  }
  return out;
}

export interface Snapshot {
  at: number;
  cpu: number;
  served: number;
  threads: Map<string, number>;
  text: string;
}

export async function snapshot(srv: Server): Promise<Snapshot> {
  const text = await metricsText(srv.url);
  return {
    at: performance.now(),
    cpu: metricSum(text, 'process_cpu_seconds_total'),
    served: metricSum(text, 'warden_inference_requests_total', { model: MODEL, outcome: 'ok' }),
    threads: threadCpu(srv.child.pid!),
    text,
  };
}

/** Warden's CPU (all threads) per request it served between two snapshots, in µs, and its cores busy. */
export function cpuBetween(a: Snapshot, b: Snapshot): { usPerRequest: number; cores: number; threads: string } {
  const served = b.served - a.served;
  const wall = (b.at - a.at) / 1000;
  const parts: string[] = [];
  for (const [k, v] of b.threads) {
    const d = v - (a.threads.get(k) ?? 0);
    if (d / wall >= 0.02) parts.push(`${k} ${(d / wall).toFixed(2)}`);
  }
  return { usPerRequest: ((b.cpu - a.cpu) * 1e6) / served, cores: (b.cpu - a.cpu) / wall, threads: parts.join(', ') };
}

/** CPU µs per served request of one thread (by its key in `threadCpu`) between two snapshots. */
export function threadUs(a: Snapshot, b: Snapshot, thread: string): number {
  return (((b.threads.get(thread) ?? 0) - (a.threads.get(thread) ?? 0)) * 1e6) / (b.served - a.served);
}

export interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

export const hasWrk = spawnSync('wrk', ['--version']).error === undefined;

/** Max-rate load by wrk (C, one thread: leaves more of 2 cores to the server), else autocannon. */
export async function maxLoad(url: string, seconds: number, conns: number): Promise<Load> {
  if (!hasWrk) {
    const r = await autocannon({ url: `${url}${inferPath}`, method: 'POST', headers: { 'content-type': 'application/json' }, body: oipBody, connections: conns, duration: seconds });
    return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx };
  }
  const script = wrkPostScript();
  const out = spawnSync('wrk', ['-t1', `-c${conns}`, `-d${seconds}s`, '--latency', '-s', script.file, `${url}${inferPath}`], { encoding: 'utf8' }).stdout;
  script.remove();
  const ms = (label: string) => wrkMs(out.match(new RegExp(`${label}\\s+([\\d.]+(?:us|ms|s))`))?.[1] ?? '');
  return { ...wrkTotals(out), p50: ms('50%'), p99: ms('99%') };
}

/** The lua script wrk and wrk2 take to POST the OIP body, in a temporary directory. */
export function wrkPostScript(): { file: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'warden-wrk-'));
  const file = path.join(dir, 'post.lua');
  writeFileSync(file, `wrk.method = "POST"\nwrk.body = '${oipBody}'\nwrk.headers["Content-Type"] = "application/json"\n`);
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A duration as wrk and wrk2 print it (850.00us, 1.23ms, 2.00s, 1.00m), in ms; NaN if it is none. */
export function wrkMs(text: string): number {
  const m = text.match(/^([\d.]+)(us|ms|s|m)$/);
  if (!m) return NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : m[2] === 'm' ? v * 60_000 : v;
}

/** Requests per second, non-2xx answers and socket errors from wrk's or wrk2's summary. */
export function wrkTotals(out: string): { rps: number; non2xx: number; errors: number } {
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const errors = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/)?.slice(1).reduce((a, b) => a + Number(b), 0) ?? 0;
  return { rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? NaN), non2xx, errors };
}

// ------------------------------------------------------------------------------------------ micro-benchmark

/** Spread of repeated measurements: median and range. */
const spread = (xs: number[]) => `median ${median(xs).toFixed(1).padStart(6)} ns/call   min ${Math.min(...xs).toFixed(1).padStart(6)}   max ${Math.max(...xs).toFixed(1).padStart(6)}`;

/** 36-character keys, like the UUIDs callers send as parameters.keys or assignment_key. */
function uuidKeys(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(crypto.randomUUID());
  return out;
}

/**
 * Fresh copies of `name`, each its own heap string whose hash V8 has not computed yet: the deployment name a
 * request carries is sliced out of its URL, so the Map lookup hashes it. Built outside the timed loop.
 */
function freshNames(name: string, n: number): string[] {
  const b = Buffer.from(name);
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = b.toString('latin1');
  return out;
}

function micro(calls: number, reps: number): { worstRequestPathNs: number } {
  const router = new Router();
  // Other routed deployments, so the table is not a single entry.
  for (let i = 0; i < 16; i++) router.set(`model-${i}`, { rolloutId: 100 + i, strategy: 'canary', stable: 1, candidate: 2, weight: 25, mirror: 0 });
  const canary: RoutePolicy = { rolloutId: 1, strategy: 'canary', stable: 1, candidate: 2, weight: 10, mirror: 0 };
  const canaryMirror: RoutePolicy = { rolloutId: 2, strategy: 'canary', stable: 1, candidate: 2, weight: 10, mirror: 10 };
  const shadow: RoutePolicy = { rolloutId: 3, strategy: 'shadow', stable: 1, candidate: 2, weight: 0, mirror: 100 };
  const ab: RoutePolicy = { rolloutId: 4, strategy: 'ab', stable: 1, candidate: 2, weight: 50, mirror: 0, salt: crypto.randomUUID(), unkeyed: 'reject' };
  router.set('bike-canary', canary);
  router.set('bike-canary-mirror', canaryMirror);
  router.set('bike-shadow', shadow);
  router.set('bike-ab', ab);
  const keys = uuidKeys(4096);
  const shortKeys = Array.from({ length: 4096 }, (_, i) => `u${100_000 + i}`);

  // What InferenceService does per request that names no version (routeOf, then mirror once answered by stable).
  const requestPath = (model: string): number => {
    const policy = router.get(model);
    if (policy === undefined) return 0;
    const c = router.pick(model)!;
    if (c.route === 'stable' && router.mirror(model)) return c.version + router.get(model)!.candidate;
    return c.version;
  };

  let sink = 0;
  const cases: [string, (n: number) => void][] = [
    ['empty loop (baseline)', (n) => { for (let i = 0; i < n; i++) sink += i & 1; }],
    ['pick, no rollout', (n) => { for (let i = 0; i < n; i++) sink += router.pick('bike') === undefined ? 1 : 0; }],
    ['pick, canary 10 %', (n) => { for (let i = 0; i < n; i++) sink += router.pick('bike-canary')!.version; }],
    ['pick, shadow (weight 0)', (n) => { for (let i = 0; i < n; i++) sink += router.pick('bike-shadow')!.version; }],
    ['pick, A/B 50 %, 36-char key', (n) => { for (let i = 0; i < n; i++) sink += router.pick('bike-ab', keys[i & 4095])!.version; }],
    ['pick, A/B 50 %, 7-char key', (n) => { for (let i = 0; i < n; i++) sink += router.pick('bike-ab', shortKeys[i & 4095])!.version; }],
    ['mirror, no rollout', (n) => { for (let i = 0; i < n; i++) sink += router.mirror('bike') ? 1 : 0; }],
    ['mirror, 100 % (shadow)', (n) => { for (let i = 0; i < n; i++) sink += router.mirror('bike-shadow') ? 1 : 0; }],
    ['mirror, 10 %', (n) => { for (let i = 0; i < n; i++) sink += router.mirror('bike-canary-mirror') ? 1 : 0; }],
    ['request path, no rollout', (n) => { for (let i = 0; i < n; i++) sink += requestPath('bike'); }],
    ['request path, canary 10 % + mirror 10 %', (n) => { for (let i = 0; i < n; i++) sink += requestPath('bike-canary-mirror'); }],
    ['request path, shadow 100 %', (n) => { for (let i = 0; i < n; i++) sink += requestPath('bike-shadow'); }],
  ];
  console.log(`\nRouter micro-benchmark: ${(calls / 1e6).toFixed(1)} M calls per repetition, ${reps} repetitions after one warm-up; ns per call include the loop`);
  const results = new Map<string, number[]>();
  for (const [label, fn] of cases) {
    fn(calls); // warm-up: lets the JIT optimise this loop before it is timed
    const xs: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = process.hrtime.bigint();
      fn(calls);
      xs.push(Number(process.hrtime.bigint() - t0) / calls);
    }
    results.set(label, xs);
    console.log(`${label.padEnd(42)} ${spread(xs)}`);
  }
  // Fresh (unhashed) name strings, as a request's URL gives them: fewer calls, the names are built per repetition.
  const freshCalls = Math.min(calls, 1_000_000);
  const freshCases: [string, string, (names: string[]) => void][] = [
    ['pick, no rollout, fresh name string', 'bike', (names) => { for (let i = 0; i < names.length; i++) sink += router.pick(names[i]!) === undefined ? 1 : 0; }],
    ['pick, canary 10 %, fresh name string', 'bike-canary', (names) => { for (let i = 0; i < names.length; i++) sink += router.pick(names[i]!)!.version; }],
    ['request path, shadow 100 %, fresh name', 'bike-shadow', (names) => { for (let i = 0; i < names.length; i++) sink += requestPath(names[i]!); }],
    ['request path, canary+mirror, fresh name', 'bike-canary-mirror', (names) => { for (let i = 0; i < names.length; i++) sink += requestPath(names[i]!); }],
  ];
  const baseline: number[] = [];
  for (const [label, name, fn] of freshCases) {
    fn(freshNames(name, freshCalls));
    const xs: number[] = [];
    for (let r = 0; r < reps; r++) {
      const names = freshNames(name, freshCalls);
      const t0 = process.hrtime.bigint();
      fn(names);
      xs.push(Number(process.hrtime.bigint() - t0) / freshCalls);
    }
    if (baseline.length === 0) {
      // The same loop over fresh strings without the router: reading the array of 1 M strings is not free.
      for (let r = 0; r < reps; r++) {
        const names = freshNames(name, freshCalls);
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < names.length; i++) sink += names[i]!.length;
        baseline.push(Number(process.hrtime.bigint() - t0) / freshCalls);
      }
      console.log(`${'fresh-name loop, no router (baseline)'.padEnd(42)} ${spread(baseline)}`);
    }
    results.set(label, xs);
    console.log(`${label.padEnd(42)} ${spread(xs)}`);
  }
  if (sink === 42) console.log('(sink)');
  const worst = Math.max(...[...results].filter(([k]) => k.startsWith('request path') || k.startsWith('pick')).map(([, xs]) => median(xs)));
  return { worstRequestPathNs: worst };
}

// ------------------------------------------------------------------------------------------------ end to end

async function endToEnd(duration: number, conns: number, reps: number, selected: string[]): Promise<void> {
  console.log(`\nEnd to end: warden serve (child process), ${MODEL} v1 (seed 1, stable) and v2 (seed 2); ${hasWrk ? 'wrk -t1' : 'autocannon'} at ${conns} connections, ${duration} s per run, ${reps} alternating repetitions; OIP infer, batch 1`);
  const srv = await startWarden();
  try {
    await pushBikeVersions(srv.url);
    await maxLoad(srv.url, 5, conns); // warm-up
    const all: { name: string; label: string; set: () => Promise<void>; unset: () => Promise<void> }[] = [
      // The pause keeps every configuration's runs the same distance apart (a rollout's start and abort each wait SETTLE_MS).
      { name: 'none', label: 'no rollout', set: () => new Promise((r) => setTimeout(r, SETTLE_MS)), unset: () => new Promise((r) => setTimeout(r, SETTLE_MS)) },
      { name: 'canary0', label: 'canary weight 0 (v1 answers all)', set: () => startRollout(srv.url, 'canary', { steps: [{ weight: 0 }] }), unset: () => abortRollout(srv.url) },
      { name: 'canary50', label: 'canary weight 50 (v1/v2 half each)', set: () => startRollout(srv.url, 'canary', { steps: [{ weight: 50 }] }), unset: () => abortRollout(srv.url) },
    ];
    const configs = all.filter((c) => selected.includes(c.name));
    if (configs.length === 0 || configs[0]!.name !== 'none') throw new Error(`--configs takes a list starting with none, of ${all.map((c) => c.name).join(', ')}`);
    const got = new Map<string, { load: Load; us: number; v2: number; mainUs: number }[]>();
    for (const c of configs) got.set(c.label, []);
    for (let r = 0; r < reps; r++) {
      // Each repetition starts one configuration later, so none always runs first (the machine drifts).
      for (const c of [...configs.slice(r % configs.length), ...configs.slice(0, r % configs.length)]) {
        await c.set();
        const state = await rolloutState(srv.url);
        const a = await snapshot(srv);
        const load = await maxLoad(srv.url, duration, conns);
        const b = await snapshot(srv);
        await c.unset();
        const v2 = metricSum(b.text, 'warden_inference_requests_total', { model: MODEL, version: '2', outcome: 'ok' }) - metricSum(a.text, 'warden_inference_requests_total', { model: MODEL, version: '2', outcome: 'ok' });
        const cpu = cpuBetween(a, b);
        const share = (100 * v2) / (b.served - a.served);
        console.log(
          `${c.label.padEnd(36)} ${load.rps.toFixed(0).padStart(6)} req/s   p50 ${load.p50.toFixed(2)} ms   p99 ${load.p99.toFixed(2)} ms   CPU ${cpu.usPerRequest.toFixed(1)} µs/req   v2 ${share.toFixed(1)} %   errors ${load.errors} non-2xx ${load.non2xx}   rollout ${state}   cores [${cpu.threads}]`,
        );
        got.set(c.label, [...(got.get(c.label) ?? []), { load, us: cpu.usPerRequest, v2: share, mainUs: threadUs(a, b, 'main') }]);
      }
    }
    console.log('\nmedians over the repetitions:');
    const base = got.get('no rollout')!;
    for (const [label, xs] of got) {
      const rps = median(xs.map((x) => x.load.rps));
      const us = median(xs.map((x) => x.us));
      console.log(
        `${label.padEnd(36)} ${rps.toFixed(0).padStart(6)} req/s (${((100 * rps) / median(base.map((x) => x.load.rps)) - 100).toFixed(1)} %)   p50 ${median(xs.map((x) => x.load.p50)).toFixed(2)} ms   p99 ${median(xs.map((x) => x.load.p99)).toFixed(2)} ms   CPU ${us.toFixed(1)} µs/req (${(us - median(base.map((x) => x.us))).toFixed(1)}), main thread ${median(xs.map((x) => x.mainUs)).toFixed(1)} µs/req`,
      );
    }
  } finally {
    await srv.stop();
  }
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  console.log(`bench/rollouts/routing: ${machine()}`);
  if (!args.includes('--no-micro')) {
    const { worstRequestPathNs } = micro(flag('calls', 5_000_000), flag('reps', 7));
    console.log(`\nslowest pick / request-path median: ${worstRequestPathNs.toFixed(1)} ns per call (target ≤ 1 µs: ${worstRequestPathNs <= 1000 ? 'met' : 'NOT met'})`);
  }
  const i = args.indexOf('--configs');
  const selected = i >= 0 ? String(args[i + 1]).split(',') : ['none', 'canary0', 'canary50'];
  if (!args.includes('--no-e2e')) await endToEnd(flag('duration', 8), flag('connections', 16), flag('e2e-reps', 3), selected);
  console.log(`\nload average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' / ')}`);
}
