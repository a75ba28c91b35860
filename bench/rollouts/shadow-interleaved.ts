// bench/rollouts/shadow-interleaved: the caller's p99 with and without a 100 % shadow at half the max rate, in
// blocks of a few seconds interleaved within one paced run, so the two sides share the server's and the machine's
// drift. bench/rollouts/shadow.ts compares 20 s windows (wrk2's 10 s calibration plus 10 s recorded), a few dozen
// pairs an hour, and the windows of one server drift more than the 10 % asked about.
//
// One `warden serve` holds `bike` (v1 stable, v2 candidate) and `bike-twin`, a second deployment of the same v1
// bytes. With the shadow (the default), `bike` runs a shadow rollout of v2 mirroring 100 %, `bike-twin` none; the
// paced load (bench/rollouts/paced-load.ts) sends every request of a block to one of them, in the order
// A B B A A B B A … (A: bike, B: bike-twin). So in A blocks every request is mirrored and in B blocks none is, on
// the same process, sockets and prediction log. `--aa` starts no rollout: both sides are alike, and the figures
// are the noise floor of the method on this machine.
// The max rate is wrk's (closed loop, best of --max-runs) on bike with no rollout; the load runs at half of it.
// Per block: the p99 from when each request was due. The ratio is of the median A block p99 to the median B
// block p99, with a 95 % bootstrap interval over the pairs (blocks 2j, 2j+1), and the verdict "within 10 %" only
// when that whole interval is at or below 1.10.
// `--rate N` loads at N req/s instead of half the max (the max is still measured and printed).
// `--guard S` leaves the first S seconds of every block out of its figures: requests due then are sent like the
// rest, and the work the previous block left behind (a wave waiting or running, records being sealed and flushed,
// a queue draining) falls there and not on the other side.
// Usage: npm run bench:shadow-interleaved [-- --block 3 --guard 0 --pairs 100 --connections 64 --max-runs 2 --rate N --aa --env WARDEN_X=value]
// Prints figures; it is not a test.
import { loadavg } from 'node:os';
import { quantile, pacedLoad, postRequest, type Block } from './paced-load.ts';
import { args, cpuBetween, envArgs, flag, hasWrk, machine, maxLoad, median, metricSum, MODEL, oipBody, pairedRatio, pushBikeVersions, pushVersion, rolloutState, snapshot, startRollout, startWarden } from './routing.ts';

const blockS = flag('block', 3);
/** Seconds at the start of each block sent and not recorded (what the previous block left behind falls there). */
const guardS = args.includes('--guard') ? flag('guard', 1) : 0;
if (guardS >= blockS) throw new Error(`--guard (${guardS} s) must be shorter than --block (${blockS} s)`);
const pairs = flag('pairs', 100);
const connections = flag('connections', 64);
const maxRuns = flag('max-runs', 2);
const warmupS = flag('warmup', 10);
const aa = args.includes('--aa');
/** A set rate instead of half the max (to find where a shadow stays within 10 %); 0: half the max. */
const fixedRate = args.includes('--rate') ? flag('rate', 1) : 0;
const TWIN = 'bike-twin';
const serverEnv = envArgs();
if (!hasWrk) throw new Error('bench:shadow-interleaved measures the max rate with wrk (Debian package wrk)');

/** A B B A: each pair of blocks has one of each, and which goes first alternates. */
const kindOf = (b: number) => [0, 1, 1, 0][((b % 4) + 4) % 4]!;

console.log(`bench/rollouts/shadow-interleaved: ${machine()}`);
console.log(
  `${aa ? 'A/A (no rollout on either side: the noise floor)' : 'A: bike with a 100 % shadow of v2; B: bike-twin, no rollout'}; blocks of ${blockS} s (the first ${guardS} s of each not recorded) in the order A B B A, ${pairs} pairs, ${connections} connections, ${warmupS} s warm-up; server env ${JSON.stringify(serverEnv)}`,
);
const srv = await startWarden(serverEnv);
try {
  // bike v1's bytes again, under a second deployment with no rollout.
  await pushVersion(srv.url, TWIN, await pushBikeVersions(srv.url), 'champion');
  await maxLoad(srv.url, 5, connections); // warm-up
  let max = 0;
  for (let i = 0; i < maxRuns; i++) {
    const m = await maxLoad(srv.url, 10, connections);
    console.log(`max rate (wrk, closed loop, ${connections} connections, 10 s): ${m.rps.toFixed(0)} req/s, p50 ${m.p50.toFixed(2)} ms, p99 ${m.p99.toFixed(2)} ms, errors ${m.errors}, non-2xx ${m.non2xx}`);
    max = Math.max(max, m.rps);
  }
  const rate = fixedRate > 0 ? fixedRate : Math.round(max / 2);
  if (!aa) await startRollout(srv.url, 'shadow', { mirror: 100 });
  console.log(`${fixedRate > 0 ? `set rate (--rate; ${((100 * rate) / max).toFixed(0)} % of the max)` : 'half the max rate'}: ${rate} req/s; bike rollout: ${await rolloutState(srv.url)}`);
  const u = new URL(srv.url);
  const host = u.hostname;
  const port = Number(u.port);
  const requests = [postRequest(host, port, `/v2/models/${MODEL}/infer`, oipBody), postRequest(host, port, `/v2/models/${TWIN}/infer`, oipBody)];
  const a = await snapshot(srv);
  const m0 = a.text;
  const t0 = performance.now();
  const r = await pacedLoad({ host, port, connections, rate, warmupMs: warmupS * 1000, blockMs: blockS * 1000, guardMs: guardS * 1000, blocks: 2 * pairs, requests, kindOf });
  const b = await snapshot(srv);
  const m1 = b.text;
  const d = (name: string, labels: Record<string, string> = {}) => metricSum(m1, name, labels) - metricSum(m0, name, labels);
  // Both deployments' answers (snapshot counts bike's only).
  const served = d('warden_inference_requests_total', { outcome: 'ok' });
  const cpu = cpuBetween(a, { ...b, served: a.served + served });
  const p99s = (kind: number) => r.blocks.filter((x) => x.kind === kind).map((x) => quantile(x.corrected, 0.99));
  const pairOf = (j: number): [Block, Block] => {
    const x = r.blocks[2 * j]!;
    const y = r.blocks[2 * j + 1]!;
    return x.kind === 0 ? [x, y] : [y, x];
  };
  const ps = Array.from({ length: pairs }, (_, j) => pairOf(j).map((blk) => quantile(blk.corrected, 0.99)) as [number, number]);
  const { ratio, lo, hi, verdict } = pairedRatio(ps.map((p) => p[0]), ps.map((p) => p[1]));
  const perPair = ps.map((p) => p[0] / p[1]).sort((x, y) => x - y);
  const pooled = (kind: number, q: number, f: (x: Block) => Float32Array = (x) => x.corrected) => {
    const parts = r.blocks.filter((x) => x.kind === kind).map(f);
    const all = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    return quantile(all, q);
  };
  const n = (kind: number) => r.blocks.filter((x) => x.kind === kind).reduce((s, x) => s + x.n, 0);
  const non2xx = r.blocks.reduce((s, x) => s + x.non2xx, 0);
  const A = aa ? 'A (bike)' : 'A (shadow)';
  const B = aa ? 'B (bike-twin)' : 'B (no shadow)';
  console.log(`\n${((performance.now() - t0) / 1000).toFixed(0)} s at ${rate} req/s: ${r.sent} sent, ${n(0)} + ${n(1)} recorded answers, ${non2xx} non-2xx, ${r.errors} socket errors`);
  console.log(`load generator: ${r.cores.toFixed(2)} cores; its own lateness writing requests due on a free connection: p50 ${r.lateP50.toFixed(3)} ms, p99 ${r.lateP99.toFixed(3)} ms`);
  console.log(
    `Warden: ${cpu.usPerRequest.toFixed(1)} µs CPU per request, ${cpu.cores.toFixed(2)} cores [${cpu.threads}]; shadow runs ok ${d('warden_shadow_requests_total', { model: MODEL, outcome: 'ok' })}, dropped ${d('warden_shadow_dropped_total', { model: MODEL })}; prediction log dropped ${d('warden_prediction_log_dropped_total')}`,
  );
  const fmt = (xs: number[]) => {
    const s = [...xs].sort((x, y) => x - y);
    return `median ${median(s).toFixed(2)}, p10 ${s[Math.floor(0.1 * s.length)]!.toFixed(2)}, p90 ${s[Math.floor(0.9 * s.length)]!.toFixed(2)}, max ${s.at(-1)!.toFixed(2)}`;
  };
  console.log(`block p99 from when due (ms), ${A}: ${fmt(p99s(0))}`);
  console.log(`block p99 from when due (ms), ${B}: ${fmt(p99s(1))}`);
  const up99 = (kind: number) => median(r.blocks.filter((x) => x.kind === kind).map((x) => quantile(x.uncorrected, 0.99)));
  const p50 = (kind: number) => median(r.blocks.filter((x) => x.kind === kind).map((x) => quantile(x.corrected, 0.5)));
  console.log(`median block p50: ${p50(0).toFixed(2)} vs ${p50(1).toFixed(2)} ms; median block p99 from when written (uncorrected): ${up99(0).toFixed(2)} vs ${up99(1).toFixed(2)} ms`);
  for (const q of [0.5, 0.9, 0.99, 0.999]) console.log(`pooled p${(100 * q).toString().padEnd(4)} of every answer: ${pooled(0, q).toFixed(2)} vs ${pooled(1, q).toFixed(2)} ms, ratio ${(pooled(0, q) / pooled(1, q)).toFixed(3)}`);
  const logs = ps.map((p) => Math.log(p[0] / p[1]));
  const mlog = logs.reduce((s, x) => s + x, 0) / pairs;
  const sdLog = Math.sqrt(logs.reduce((s, x) => s + (x - mlog) ** 2, 0) / (pairs - 1));
  // The spread of one pair's log ratio sets how many pairs an interval of a given width needs (about
  // (2.45 × sd / half-width)², for the median-based interval below): printed to plan runs, not a verdict.
  console.log(`per-pair log ratio: sd ${sdLog.toFixed(3)}`);
  console.log(`per-pair ratio A/B of block p99s: p10 ${perPair[Math.floor(0.1 * pairs)]!.toFixed(2)}, median ${median(perPair).toFixed(2)}, p90 ${perPair[Math.floor(0.9 * pairs)]!.toFixed(2)}; A higher in ${ps.filter((p) => p[0] > p[1]).length} of ${pairs} pairs`);
  console.log(`p99 ratio ${A} / ${B}: ${ratio.toFixed(3)} (median block p99s; 95 % bootstrap interval over pairs ${lo.toFixed(3)}–${hi.toFixed(3)}) → ${verdict}`);
} finally {
  await srv.stop();
}
console.log(`\nload average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' / ')}`);
