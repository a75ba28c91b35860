// bench/rollouts/shadow-clock: the shadow thread's model run times, as the analysis's latency check reads them,
// on a quiet machine and on one kept busy by CPU-bound processes at normal priority (the thread runs at nice 10).
// A run's time is its wall time less the time the thread waited for a CPU meanwhile (src/thread-clock.ts), so
// the two should agree; with wall time alone the busy machine's runs were stretched (docs/benchmarks.md).
// One `warden serve`, a 100 % shadow of bike v2, paced load for --secs at --rate, first with no spinners, then with
// --spin of them; figures from warden_shadow_duration_seconds (its buckets bound the quantiles).
// Usage: npm run bench:shadow-clock [-- --rate 3000 --secs 20 --spin 4]
// Prints figures; it is not a test.
import { spawn } from 'node:child_process';
import { pacedLoad, postRequest } from './paced-load.ts';
import { flag, machine, maxLoad, MODEL, oipBody, pushBikeVersions, startRollout, startWarden } from './routing.ts';

const rate = flag('rate', 3000);
const secs = flag('secs', 20);
const spin = flag('spin', 4);

interface Hist {
  buckets: [number, number][];
  count: number;
  sum: number;
}
function histogram(text: string): Hist {
  const lines = text.split('\n').filter((l) => l.startsWith('warden_shadow_duration_seconds'));
  const value = (l: string) => Number(l.split(' ').at(-1));
  // A labelled histogram has no series before its first run.
  if (!lines.some((l) => l.includes('_count'))) return { buckets: [], count: 0, sum: 0 };
  const buckets = lines
    .filter((l) => l.includes('_bucket'))
    .map((l): [number, number] => {
      const le = /le="([^"]+)"/.exec(l)![1]!;
      return [le === '+Inf' ? Infinity : Number(le), value(l)];
    });
  return { buckets, count: value(lines.find((l) => l.includes('_count'))!), sum: value(lines.find((l) => l.includes('_sum'))!) };
}
const between = (a: Hist, b: Hist): Hist => ({ buckets: b.buckets.map(([le, c], i) => [le, c - (a.buckets[i]?.[1] ?? 0)]), count: b.count - a.count, sum: b.sum - a.sum });
const upTo = (h: Hist, q: number) => h.buckets.find(([, c]) => c >= q * h.count)![0] * 1000;

console.log(`bench/rollouts/shadow-clock: ${machine()}`);
const srv = await startWarden();
try {
  await pushBikeVersions(srv.url);
  await maxLoad(srv.url, 3, 64); // warm-up
  await startRollout(srv.url, 'shadow', { mirror: 100 });
  const u = new URL(srv.url);
  const request = postRequest(u.hostname, Number(u.port), `/v2/models/${MODEL}/infer`, oipBody);
  const metrics = async () => histogram(await (await fetch(`${srv.url}/metrics`)).text());
  for (const n of [0, spin]) {
    const spinners = Array.from({ length: n }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    try {
      const a = await metrics();
      await pacedLoad({ host: u.hostname, port: Number(u.port), connections: 64, rate, warmupMs: 0, blockMs: secs * 1000, blocks: 1, requests: [request], kindOf: () => 0 });
      const h = between(a, await metrics());
      console.log(
        `${n} spinning processes, ${rate} req/s for ${secs} s: ${h.count} shadow runs, mean ${((1000 * h.sum) / h.count).toFixed(3)} ms, p50 ≤ ${upTo(h, 0.5)} ms, p99 ≤ ${upTo(h, 0.99)} ms, longest ≤ ${upTo(h, 1)} ms`,
      );
    } finally {
      for (const s of spinners) s.kill();
    }
  }
} finally {
  await srv.stop();
}
