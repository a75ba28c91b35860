// bench/scale-out: three `warden serve --demo` replicas on one throw-away PostgreSQL behind haproxy (round robin,
// health-checked), against one `warden serve --demo` on the embedded SQLite store, under the same load: the max
// rate (best over the connection counts given), then a fixed rate at half of it (autocannon `overallRate`), and
// whether the prediction log keeps up (every answered request a row, nothing dropped).
// The fleet is measured three ways, in this order, on the same replicas and database: behind haproxy as the fleet
// tests configure it (test/helpers/fleet.ts, `option http-server-close`: a new connection to a replica per request),
// behind haproxy with keep-alive connections to the replicas (as deploy/haproxy/haproxy.cfg), and one replica
// directly (the other two idle), which separates the balancer's cost from PostgreSQL's.
// Usage: npm run bench:scale-out [-- --duration 10 --connections 16,32,64]
// Prints figures; it is not a test. Every server is a child process; the load runs in this one, autocannon for the
// max-rate runs as well (bench/serving uses wrk there when installed), so every setup's 200s are counted the same way.
// On exit (normal, error or Ctrl-C) the replicas, haproxy and the PostgreSQL cluster are stopped and their
// directories removed.
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { launchWarden, type RunningCli } from '../../test/helpers/cli.ts';
import { startHaproxy } from '../../test/helpers/fleet.ts';
import { startPgCluster, type PgCluster } from '../../test/helpers/pg-cluster.ts';

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const duration = Number(option('duration') ?? 10);
if (!Number.isFinite(duration) || duration <= 0) throw new Error(`--duration takes a positive number of seconds, not ${option('duration')}`);
const connectionList = (() => {
  const raw = option('connections') ?? '16,32,64';
  const list = raw.split(',').map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--connections takes a comma-separated list of positive integers, not ${raw}`);
  return list;
})();
/** Fixed-rate runs (half the max) use the first count, as bench/serving does. */
const fixedConnections = connectionList[0]!;
const REPLICAS = 3;
const SCHEMA = 'warden';

// The body bench/serving sends: bike-demand, one row of its 11 FP32 features.
const row = { season: 3, mnth: 7, hr: 17, holiday: 0, weekday: 3, workingday: 1, weathersit: 1, temp: 0.7, atemp: 0.65, hum: 0.5, windspeed: 0.2 };
const oipBody = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 11], datatype: 'FP32', data: Object.values(row) }] });

// ---- clean-up: whatever happens, no child process, haproxy, cluster or directory is left behind ----

const children = new Set<ChildProcess>();
const dirs: string[] = [];
let cluster: PgCluster | undefined;
let cleaned = false;
/** Processes (not this one) whose command line names one of `paths`. */
function pidsMentioning(paths: string[]): number[] {
  if (paths.length === 0) return [];
  const found: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (paths.some((p) => cmd.includes(p))) found.push(Number(d));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return found;
}

/** Synchronous, so it also runs from process.on('exit') and signal handlers. */
function cleanupNow(): void {
  if (cleaned) return;
  cleaned = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  // A haproxy whose start failed is not handed back by startHaproxy: find it (and anything else started on one of
  // this run's directories) by its command line, which names its config file there.
  for (const pid of pidsMentioning(dirs)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  try {
    cluster?.destroy();
  } catch (e) {
    console.error(`could not stop the PostgreSQL cluster in ${cluster?.dataDir}: ${(e as Error).message}`);
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
process.on('exit', cleanupNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping the servers, haproxy and PostgreSQL`);
    cleanupNow();
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
  });
}
const tempDir = (prefix: string) => {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
/** SIGTERM (WARDEN_DRAIN_DELAY_MS=0: it closes at once, writing what its log still holds) and wait. */
async function stopServer(s: RunningCli): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) {
    s.child.kill('SIGTERM');
    const timer = setTimeout(() => s.child.kill('SIGKILL'), 20_000);
    await s.exited;
    clearTimeout(timer);
  }
  children.delete(s.child);
}

// ---- load ----

interface Load {
  connections: number;
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  non2xx: number;
  errors: number;
}

async function load(url: string, seconds: number, conns: number, rate?: number): Promise<Load> {
  const r = await autocannon({
    url: `${url}/v2/models/bike-demand/infer`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: oipBody,
    connections: conns,
    duration: seconds,
    ...(rate ? { overallRate: rate } : {}),
  });
  return { connections: conns, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, ok: r['2xx'], non2xx: r.non2xx, errors: r.errors };
}

const fmt = (l: Load) =>
  `${l.rps.toFixed(0).padStart(7)} req/s   p50 ${l.p50.toFixed(2).padStart(6)} ms   p99 ${l.p99.toFixed(2).padStart(6)} ms   200s ${l.ok}   non-2xx ${l.non2xx}   errors ${l.errors}`;

// ---- metrics ----

/** Sum of every sample of `name` (all label sets) in a Prometheus text exposition. */
function sumMetric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    sum += Number(rest.slice(rest.lastIndexOf(' ') + 1));
  }
  return sum;
}

interface LogCounters {
  written: number;
  dropped: number;
  depth: number;
}

/** The prediction log's counters summed over the servers (each asked directly, not through haproxy). /metrics needs no key. */
async function logCounters(urls: string[]): Promise<LogCounters> {
  const texts = await Promise.all(urls.map(async (u) => (await fetch(`${u}/metrics`)).text()));
  return {
    written: texts.reduce((a, t) => a + sumMetric(t, 'warden_prediction_log_written_total'), 0),
    dropped: texts.reduce((a, t) => a + sumMetric(t, 'warden_prediction_log_dropped_total'), 0),
    depth: texts.reduce((a, t) => a + sumMetric(t, 'warden_prediction_log_queue_depth'), 0),
  };
}

/** Samples the summed counters every second (from this process, which also runs autocannon: ticks can be late, so rates use the real interval). */
function startSampler(urls: string[]) {
  const samples: { at: number; written: number; depth: number }[] = [];
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      const c = await logCounters(urls);
      samples.push({ at: performance.now(), written: c.written, depth: c.depth });
    } catch {
      /* a missed sample */
    } finally {
      busy = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), 1000);
  return {
    async stop() {
      clearInterval(timer);
      while (busy) await new Promise((r) => setTimeout(r, 20));
      await tick();
      let peakRate = 0;
      for (let i = 1; i < samples.length; i++) {
        const dt = (samples[i]!.at - samples[i - 1]!.at) / 1000;
        if (dt >= 0.9) peakRate = Math.max(peakRate, (samples[i]!.written - samples[i - 1]!.written) / dt);
      }
      return { peakRate, peakDepth: Math.max(0, ...samples.map((s) => s.depth)), samples: samples.length };
    },
  };
}

/** Waits until every server's queue is empty (the gauge counts batches still at the store) and returns the counters then. */
async function drained(urls: string[], timeoutMs = 120_000): Promise<LogCounters> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await logCounters(urls);
    if (c.depth === 0) return c;
    if (Date.now() > deadline) throw new Error(`prediction log queues still hold ${c.depth} events after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- CPU, from /proc (Linux), so that a setup's cost per request can be compared when other work shares the cores ----

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime (+ cutime + cstime: reaped children, for the postmaster's exited backends) of a process, in seconds; 0 once it is gone. */
function procCpu(pid: number | undefined, withChildren = false): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields from the state (3rd) on: utime is the 14th of the line, so index 11 here.
    const ticks = Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0);
    return ticks / CLK_TCK;
  } catch {
    return 0;
  }
}

/** The postmaster and its live children (backends, walwriter…), in CPU seconds. */
function pgCpu(c: PgCluster): number {
  let postmaster: number;
  try {
    postmaster = Number(readFileSync(path.join(c.dataDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return 0;
  }
  let sum = procCpu(postmaster, true);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) sum += procCpu(Number(d));
    } catch {
      /* gone */
    }
  }
  return sum;
}

/** Named CPU-second counters, read before and after a setup's measured runs. */
type CpuGroups = Record<string, () => number>;
const thisProcessCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

// ---- one setup: warm-up, max-rate sweep, half rate, then the log drained ----

interface Outcome {
  setup: string;
  max: Load;
  half: Load;
  halfRate: number;
  /** 200s over the measured runs (not the warm-up), as autocannon counts them. */
  answered: number;
  warmupAnswered: number;
  /** Requests the servers answered ok over the measured runs (their warden_inference_requests_total). */
  served: number;
  /** CPU seconds per group over the measured runs. */
  cpu: Record<string, number>;
  loadSeconds: number;
  drainSeconds: number;
  /** Events the log wrote from the start of the first measured run until its queue was empty. */
  written: number;
  writtenTotal: number;
  eventsPerSecond: number;
  peakEventsPerSecond: number;
  peakDepth: number;
  dropped: number;
}

async function measure(setup: string, url: string, serverUrls: string[], cpuGroups: CpuGroups): Promise<Outcome> {
  const warm = await load(url, 2, fixedConnections);
  console.log(`${setup}: warm-up (2 s, ${fixedConnections} conns) ${fmt(warm)}`);
  let answered = 0;
  await drained(serverUrls);
  const before = await logCounters(serverUrls);
  const servedBefore = await servedOk(serverUrls);
  const cpuBefore = Object.fromEntries(Object.entries(cpuGroups).map(([k, f]) => [k, f()]));
  const sampler = startSampler(serverUrls);
  const t0 = performance.now();
  let max: Load | undefined;
  for (const c of connectionList) {
    const r = await load(url, duration, c);
    answered += r.ok;
    console.log(`${setup} (${String(c).padStart(3)} conns) ${fmt(r)}`);
    if (!max || r.rps > max.rps) max = r;
  }
  const halfRate = Math.round(max!.rps / 2);
  const half = await load(url, duration, fixedConnections, halfRate);
  answered += half.ok;
  console.log(`${setup} at half max (${halfRate}/s, ${fixedConnections} conns) ${fmt(half)}`);
  const tEnd = performance.now();
  const cpu = Object.fromEntries(Object.entries(cpuGroups).map(([k, f]) => [k, f() - cpuBefore[k]!]));
  const served = (await servedOk(serverUrls)) - servedBefore;
  const after = await drained(serverUrls);
  const tDrained = performance.now();
  const sampled = await sampler.stop();
  const loadSeconds = (tEnd - t0) / 1000;
  const written = after.written - before.written;
  const out: Outcome = {
    setup,
    max: max!,
    half,
    halfRate,
    answered,
    warmupAnswered: warm.ok,
    served,
    cpu,
    loadSeconds,
    drainSeconds: (tDrained - tEnd) / 1000,
    written,
    writtenTotal: after.written,
    eventsPerSecond: written / loadSeconds,
    peakEventsPerSecond: sampled.peakRate,
    peakDepth: sampled.peakDepth,
    dropped: after.dropped,
  };
  console.log(
    `${setup}: prediction log wrote ${written} events over the ${loadSeconds.toFixed(1)} s of load (${out.eventsPerSecond.toFixed(0)}/s; ` +
      `peak ${sampled.peakRate.toFixed(0)}/s over ${sampled.samples} 1 s samples), queues empty ${out.drainSeconds.toFixed(2)} s after the load ended, ` +
      `deepest sampled queue ${sampled.peakDepth}; written in all ${after.written}; dropped ${after.dropped}`,
  );
  const cpuTotal = Object.values(cpu).reduce((a, b) => a + b, 0);
  console.log(
    `${setup}: CPU over the load per request served (${served}): ` +
      Object.entries(cpu).map(([k, v]) => `${k} ${((v * 1e6) / served).toFixed(1)} µs`).join(', ') +
      `; total ${((cpuTotal * 1e6) / served).toFixed(1)} µs; ${(cpuTotal / loadSeconds).toFixed(2)} of ${cpus().length} cores busy with these`,
  );
  if (after.dropped !== 0) console.log(`\n!!!!! ${setup}: warden_prediction_log_dropped_total = ${after.dropped}, NOT 0: events were lost !!!!!\n`);
  return out;
}

// ---- main ----

/** Requests the servers answered with a prediction (warden_inference_requests_total, outcome ok), summed. */
async function servedOk(urls: string[]): Promise<number> {
  const texts = await Promise.all(urls.map(async (u) => (await fetch(`${u}/metrics`)).text()));
  return texts.reduce((a, t) => a + sumMetric(t.split('\n').filter((l) => l.includes('outcome="ok"')).join('\n'), 'warden_inference_requests_total'), 0);
}

function checkRows(store: string, rows: number, served: number, answered: number, runs: number): void {
  console.log(
    `${store}: ${rows} rows; requests the servers answered ok: ${served}; answered 200 as autocannon counted them (warm-ups included): ${answered} ` +
      `(autocannon does not count the requests still in flight when a run stops, up to its connection count per run: ${runs} runs)`,
  );
  if (rows !== served) console.log(`\n!!!!! ${store}: rows (${rows}) ≠ requests answered ok (${served}) !!!!!\n`);
}

async function main(): Promise<void> {
  console.log(
    `bench/scale-out: ${duration} s per run, ${connectionList.join('/')} keep-alive connections (max rate: best of each), fixed rate at half of it on ${fixedConnections}; ` +
      `autocannon; OIP v2 infer on bike-demand, one row; ${cpus().length} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
  );
  const outcomes: Outcome[] = [];
  const runsPerSetup = 1 + connectionList.length + 1;

  // 1. Three replicas on one PostgreSQL.
  cluster = await startPgCluster();
  const storageUrl = `${cluster.url}?schema=${SCHEMA}`;
  const pgVersion = await (async () => {
    const c = new pg.Client({ connectionString: cluster!.url });
    await c.connect();
    try {
      return String((await c.query('SHOW server_version')).rows[0]?.server_version);
    } finally {
      await c.end();
    }
  })();
  console.log(`PostgreSQL ${pgVersion} on 127.0.0.1:${cluster.port} (throw-away cluster: fsync, synchronous_commit and full_page_writes off)`);
  const fleetDir = tempDir('warden-scale-out-');
  const env = { WARDEN_STORAGE_URL: storageUrl, WARDEN_DRAIN_DELAY_MS: '0' };
  // r0 first, then the other two: `serve --demo` seeds the demo models when they are missing, and replicas doing that
  // at the same moment on one store can collide (WARDEN_CONFLICT "model … already exists"; the loser then neither
  // listens nor exits). Once r0 listens the models exist and the others only load them.
  const launch = (i: number) =>
    launchWarden(['serve', '--demo', '--host', '127.0.0.1', '--port', '0'], path.join(fleetDir, `r${i}`), env, (c) => children.add(c));
  const first = await launch(0);
  const replicas = [first, ...(await Promise.all(Array.from({ length: REPLICAS - 1 }, (_, i) => launch(i + 1))))];
  const ports = replicas.map((r) => Number(new URL(r.url).port));
  const replicaUrls = replicas.map((r) => r.url);
  console.log(`${REPLICAS} replicas on ${ports.join(', ')}`);
  const pgc = cluster;
  const wardenCpu = () => replicas.reduce((a, r) => a + procCpu(r.child.pid), 0);

  // 1a. Behind haproxy as the fleet tests run it (test/helpers/fleet.ts: option http-server-close).
  const lb = await startHaproxy(ports, fleetDir);
  children.add(lb.child);
  console.log(`\nhaproxy (test/helpers/fleet.ts config, option http-server-close) at ${lb.url}`);
  outcomes.push(
    await measure(`${REPLICAS} replicas, PostgreSQL, haproxy http-server-close`, lb.url, replicaUrls, {
      warden: wardenCpu,
      postgres: () => pgCpu(pgc),
      haproxy: () => procCpu(lb.child.pid),
      autocannon: thisProcessCpu,
    }),
  );
  await lb.stop();
  children.delete(lb.child);

  // 1b. Behind haproxy with keep-alive connections to the replicas, as deploy/haproxy/haproxy.cfg runs it.
  const ka = await startHaproxy(ports, fleetDir, { keepAlive: true });
  children.add(ka.child);
  console.log(`\nhaproxy (keep-alive to the replicas, as deploy/haproxy/haproxy.cfg) at ${ka.url}`);
  outcomes.push(
    await measure(`${REPLICAS} replicas, PostgreSQL, haproxy keep-alive`, ka.url, replicaUrls, {
      warden: wardenCpu,
      postgres: () => pgCpu(pgc),
      haproxy: () => procCpu(ka.child.pid),
      autocannon: thisProcessCpu,
    }),
  );
  await ka.stop();
  children.delete(ka.child);

  // 1c. One of the replicas directly (the other two idle): what one process on PostgreSQL does without a balancer.
  console.log(`\nreplica r0 directly at ${replicaUrls[0]} (r1 and r2 idle)`);
  outcomes.push(await measure('1 replica, PostgreSQL, direct', replicaUrls[0]!, replicaUrls, { warden: wardenCpu, postgres: () => pgCpu(pgc), autocannon: thisProcessCpu }));

  const perReplica = await Promise.all(replicaUrls.map(async (u) => sumMetric(await (await fetch(`${u}/metrics`)).text(), 'warden_prediction_log_written_total')));
  console.log(`\nwritten per replica since start: ${perReplica.join(' / ')}`);
  const db = new pg.Client({ connectionString: cluster.url, options: `-c search_path=${SCHEMA}` });
  await db.connect();
  const pgRows = Number((await db.query('SELECT count(*)::bigint AS n FROM predictions')).rows[0]?.n);
  await db.end();
  checkRows(`PostgreSQL ${SCHEMA}.predictions`, pgRows, await servedOk(replicaUrls), outcomes.reduce((a, o) => a + o.answered + o.warmupAnswered, 0), 3 * runsPerSetup);
  await Promise.all(replicas.map(stopServer));
  cluster.destroy();
  cluster = undefined;

  // 2. One process on the embedded SQLite store, alone on the machine (the fleet and PostgreSQL are stopped).
  const soloDir = tempDir('warden-scale-out-sqlite-');
  const solo = await launchWarden(['serve', '--demo', '--host', '127.0.0.1', '--port', '0'], soloDir, { WARDEN_DRAIN_DELAY_MS: '0' }, (c) => children.add(c));
  console.log(`\none process on SQLite (${soloDir}) at ${solo.url}`);
  const soloOutcome = await measure('1 process, SQLite', solo.url, [solo.url], { warden: () => procCpu(solo.child.pid), autocannon: thisProcessCpu });
  outcomes.push(soloOutcome);
  const soloServed = await servedOk([solo.url]);
  await stopServer(solo);
  const sqlite = new Database(path.join(soloDir, 'events.db'), { readonly: true });
  const soloRows = Number((sqlite.prepare('SELECT count(*) AS n FROM predictions').get() as { n: number }).n);
  sqlite.close();
  checkRows('SQLite predictions', soloRows, soloServed, soloOutcome.answered + soloOutcome.warmupAnswered, runsPerSetup);

  // 3. Side by side.
  const cols = ['setup', 'max req/s (conns)', 'half rate', 'p50 / p99 ms', 'answered 200', 'events written', 'events/s (peak)', 'dropped', 'CPU µs/req'];
  const table = outcomes.map((o) => [
    o.setup,
    `${o.max.rps.toFixed(0)} (${o.max.connections})`,
    `${o.halfRate}/s`,
    `${o.half.p50} / ${o.half.p99}`,
    String(o.answered),
    String(o.written),
    `${o.eventsPerSecond.toFixed(0)} (${o.peakEventsPerSecond.toFixed(0)})`,
    String(o.dropped),
    ((Object.values(o.cpu).reduce((a, b) => a + b, 0) * 1e6) / o.served).toFixed(0),
  ]);
  const widths = cols.map((c, j) => Math.max(c.length, ...table.map((r) => r[j]!.length)));
  const line = (cells: string[]) => cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join('  ');
  console.log(`\n${line(cols)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${table.map(line).join('\n')}`);
  console.log(
    `answered 200: autocannon's count over the measured runs (not the warm-up). events written: from the first measured run until the queues were empty. ` +
      `events/s: that ÷ seconds of load (${outcomes.map((o) => o.loadSeconds.toFixed(1)).join(' / ')} s); peak: the largest 1 s increase of ` +
      `warden_prediction_log_written_total summed over the servers. dropped: warden_prediction_log_dropped_total summed, since start. ` +
      `CPU µs/req: Warden, PostgreSQL, haproxy and autocannon together over the measured runs ÷ requests served. ` +
      `Load average now ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
  );
  const lost = outcomes.filter((o) => o.dropped !== 0);
  if (lost.length) console.log(`\n!!!!! DROPPED EVENTS: ${lost.map((o) => `${o.setup}: ${o.dropped}`).join('; ')} !!!!!`);
}

try {
  await main();
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  cleanupNow();
}
