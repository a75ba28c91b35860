// bench/serving: HTTP keep-alive load on loopback against the demo model (batch 1), next to a bare
// Fastify route returning the same JSON, plus the in-process onnxruntime `session.run` cost.
// Usage: npm run bench:serving [-- --duration 10 --connections 16,32,64] [--tracing [--sample-ratio 1]]
// Max rate is each server's best over the connection counts given: a server that batches requests needs more
// of them in flight to be saturated than one that answers each alone, and "max rate" means saturated.
// --tracing runs Warden with OpenTelemetry tracing on (WARDEN_TRACING_ENABLED=true), exporting OTLP/HTTP to a
// local sink (otlp-sink.ts) that acknowledges every batch; compare with a run without the flag.
// Prints figures; it is not a test. Servers run as child processes so the load generator does not
// share their event loop.
import autocannon from 'autocannon';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { startChild } from './child.ts';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const duration = flag('duration', 10);
const connectionList = (() => {
  const i = args.indexOf('--connections');
  const raw = i >= 0 ? String(args[i + 1]) : '16,32,64';
  const list = raw.split(',').map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--connections takes a comma-separated list of positive integers, not ${raw}`);
  return list;
})();
/** Fixed-rate runs (half the max) use the first, smallest count. */
const connections = connectionList[0]!;
const tracing = args.includes('--tracing');
const sampleRatio = flag('sample-ratio', 1);

const row = { season: 3, mnth: 7, hr: 17, holiday: 0, weekday: 3, workingday: 1, weathersit: 1, temp: 0.7, atemp: 0.65, hum: 0.5, windspeed: 0.2 };
const oipBody = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 11], datatype: 'FP32', data: Object.values(row) }] });

interface Load {
  connections?: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

const hasWrk = spawnSync('wrk', ['--version']).error === undefined;

/**
 * Max-throughput runs use wrk when it is installed (Debian package `wrk`): written in C, it leaves more
 * of this 2-core machine to the server than autocannon does. Fixed-rate runs use autocannon.
 */
async function maxLoad(url: string, seconds: number, conns = connections): Promise<Load> {
  if (!hasWrk) return load(url, seconds, undefined, conns);
  const dir = mkdtempSync(path.join(tmpdir(), 'warden-wrk-'));
  const script = path.join(dir, 'post.lua');
  writeFileSync(script, `wrk.method = "POST"\nwrk.body = '${oipBody}'\nwrk.headers["Content-Type"] = "application/json"\n`);
  const out = spawnSync('wrk', ['-t1', `-c${conns}`, `-d${seconds}s`, '--latency', '-s', script, `${url}/v2/models/bike-demand/infer`], { encoding: 'utf8' }).stdout;
  rmSync(dir, { recursive: true, force: true });
  const ms = (label: string) => {
    const m = out.match(new RegExp(`${label}\\s+([\\d.]+)(us|ms|s)`));
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  const errors = Number(out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/)?.slice(1).reduce((a, b) => a + Number(b), 0) ?? 0);
  return { rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? NaN), p50: ms('50%'), p99: ms('99%'), errors, non2xx };
}

async function load(url: string, seconds: number, rate?: number, conns = connections): Promise<Load> {
  const r = await autocannon({
    url: `${url}/v2/models/bike-demand/infer`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: oipBody,
    connections: conns,
    duration: seconds,
    ...(rate ? { overallRate: rate } : {}),
  });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx };
}

async function sessionRunCost(): Promise<{ usPerRun: number }> {
  const model = await train(bikeSharingDemoOptions('linear'));
  const session = await ort.InferenceSession.create(model.onnx, { intraOpNumThreads: 1, executionMode: 'sequential' });
  const input = new ort.Tensor('float32', Float32Array.from(Object.values(row)), [1, 11]);
  for (let i = 0; i < 2000; i++) await session.run({ input });
  const n = 20_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await session.run({ input });
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  await session.release();
  return { usPerRun: us };
}

const fmt = (l: Load) =>
  `${l.rps.toFixed(0).padStart(7)} req/s   p50 ${l.p50.toFixed(2).padStart(6)} ms   p99 ${l.p99.toFixed(2).padStart(6)} ms   errors ${l.errors} non-2xx ${l.non2xx}`;

const dataDir = mkdtempSync(path.join(tmpdir(), 'warden-bench-'));
console.log(
  `bench/serving: ${duration} s per run, ${connectionList.join('/')} keep-alive connections (max rate: best of each), batch 1, loopback; max-rate load by ${hasWrk ? 'wrk' : 'autocannon'}, fixed-rate load by autocannon at ${connections}`,
);
const run = await sessionRunCost();
console.log(`in-process session.run (bike-demand, batch 1): ${run.usPerRun.toFixed(1)} µs/run`);

const bare = await startChild(process.execPath, ['--import', 'tsx', 'bench/serving/bare-server.ts', '0'], {});
await load(bare.url, 2);
/** Runs the max-rate load at each connection count, prints each, and returns the best. */
async function sweep(label: string, url: string): Promise<Load> {
  let best: Load | undefined;
  for (const c of connectionList) {
    const r = { ...(await maxLoad(url, duration, c)), connections: c };
    console.log(`${label} (${String(c).padStart(3)} conns) ${fmt(r)}`);
    if (!best || r.rps > best.rps) best = r;
  }
  return best!;
}

const bareMax = await sweep('bare Fastify route', bare.url);
bare.child.kill('SIGTERM');

const sink = tracing ? await startChild(process.execPath, ['--import', 'tsx', 'bench/serving/otlp-sink.ts', '0'], {}) : undefined;
const tracingEnv: NodeJS.ProcessEnv = sink
  ? { WARDEN_TRACING_ENABLED: 'true', WARDEN_TRACING_OTLP_ENDPOINT: `${sink.url}/v1/traces`, WARDEN_TRACING_SAMPLE_RATIO: String(sampleRatio) }
  : {};

const warden = await startChild(process.execPath, ['bin/warden.js', 'serve', '--demo', '--port', '0', '--data-dir', dataDir], {
  WARDEN_LOG_LEVEL: 'info',
  ...tracingEnv,
});
/** Warden's process CPU seconds (all threads), from its own /metrics. */
const cpuSeconds = async (url: string) => Number(/^process_cpu_seconds_total (\S+)/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1]);
await load(warden.url, 2);
const cpu0 = await cpuSeconds(warden.url);
const before = (await (await fetch(`${warden.url}/metrics`)).text()).match(/^warden_inference_requests_total\{[^}]*outcome="ok"[^}]*\} (\S+)/m);
const wardenMax = await sweep(`Warden (log + metrics${tracing ? ` + tracing at ${sampleRatio}` : ''} on)`, warden.url);
const after = (await (await fetch(`${warden.url}/metrics`)).text()).match(/^warden_inference_requests_total\{[^}]*outcome="ok"[^}]*\} (\S+)/m);
// CPU per request barely moves when other processes compete for the cores, unlike req/s: compare it across runs.
const served = Number(after?.[1] ?? NaN) - Number(before?.[1] ?? 0);
const cpuPerRequestUs = (((await cpuSeconds(warden.url)) - cpu0) * 1e6) / served;
console.log(`Warden CPU over the sweep: ${cpuPerRequestUs.toFixed(1)} µs per request (all threads)`);
const half = Math.round(wardenMax.rps / 2);
const wardenHalf = await load(warden.url, duration, half);
console.log(`Warden at half max (${half}/s) ${fmt(wardenHalf)}`);
const metrics = await (await fetch(`${warden.url}/metrics`)).text();
const dropped = metrics.split('\n').find((l) => l.startsWith('warden_prediction_log_dropped_total'));
const written = metrics.split('\n').find((l) => l.startsWith('warden_prediction_log_written_total'));
const tracingLines = metrics.split('\n').filter((l) => l.startsWith('warden_tracing_spans_'));
warden.child.kill('SIGTERM');
await new Promise((r) => warden.child.on('exit', r));
rmSync(dataDir, { recursive: true, force: true });

console.log(
  `\nthroughput vs bare route: ${((100 * wardenMax.rps) / bareMax.rps).toFixed(1)} % (target ≥ 60 %): Warden ${wardenMax.rps.toFixed(0)} at ${wardenMax.connections} conns, bare ${bareMax.rps.toFixed(0)} at ${bareMax.connections}`,
);
console.log(`p99 at half max rate: ${wardenHalf.p99} ms (target ≤ 5 ms)`);
console.log(`prediction log: ${written ?? 'warden_prediction_log_written_total 0'}; ${dropped ?? 'warden_prediction_log_dropped_total 0'}`);
if (sink) {
  const got = (await (await fetch(`${sink.url}/stats`)).json()) as { posts: number; bytes: number };
  // ended − exported = spans the bounded export queue dropped (or still held when /metrics was read).
  console.log(`tracing: ${tracingLines.join('; ')}; sink received ${got.posts} exports, ${(got.bytes / 1e6).toFixed(1)} MB`);
  sink.child.kill('SIGTERM');
}
