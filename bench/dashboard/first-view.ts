// How long each dashboard view takes to render in Debian's Chromium against a Warden data directory (seed a big
// one with `npm run bench:dashboard-seed -- --data-dir DIR`). A view counts as rendered when every API call it
// made has answered, the DOM has stopped changing and the next frame has been painted: measured in the page from
// navigation start (Resource Timing, a MutationObserver and a requestAnimationFrame loop installed before the app
// loads), so it needs no marker in the views' code. Prints figures; it is not a timed test.
//   npm run bench:dashboard-view -- --data-dir DIR [--reps 5] [--views /,/oncall,/debug] [--settle SECONDS]
import { parseArgs } from 'node:util';
import os from 'node:os';
import { openBrowser } from '../../test/e2e/browser.ts';
import { startChild } from '../serving/child.ts';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    reps: { type: 'string', default: '5' },
    views: { type: 'string', default: '/,/oncall,/debug,/registry,/delivery,/labeling' },
    // Seconds to wait after the server is up before measuring (0: measure a server that has just started).
    settle: { type: 'string', default: '0' },
  },
});
const dataDir = values['data-dir'];
if (!dataDir) {
  process.stderr.write('usage: npm run bench:dashboard-view -- --data-dir DIR [--reps N] [--views /,/oncall]\n');
  process.exit(2);
}
const reps = Number(values.reps);
const views = values.views!.split(',');

const { child, url } = await startChild(process.execPath, ['bin/warden.js', 'serve', '--demo', '--port', '0', '--data-dir', dataDir], { WARDEN_LOG_LEVEL: 'info' });
await new Promise((r) => setTimeout(r, Number(values.settle) * 1000));
const session = await openBrowser();
const { page } = session;
await page.addInitScript(() => {
  const w = window as unknown as { __lastMutation: number; __frames: number[] };
  w.__lastMutation = 0;
  w.__frames = [];
  new MutationObserver(() => (w.__lastMutation = performance.now())).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  const loop = (t: number) => {
    if (w.__frames.length < 2000) w.__frames.push(t);
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
});
const load = os.loadavg();
process.stdout.write(`bench/dashboard/first-view: ${os.cpus().length} cores, Node ${process.version}, load average ${load.map((l) => l.toFixed(2)).join(' / ')}; data dir ${dataDir}\n`);

interface Sample {
  renderedMs: number;
  apiCalls: number;
  slowestCall: string;
  slowestMs: number;
  bytes: number;
}

async function measure(view: string): Promise<Sample> {
  // A fresh document each time (no bfcache, no warm JS heap); the HTTP cache keeps the hashed assets as a returning user's browser would.
  await page.goto('about:blank');
  await page.goto(`${url}/#${view}`, { waitUntil: 'load' });
  // Quiet: no API call started or pending for 300 ms.
  await page.waitForFunction(
    () => {
      const w = window as unknown as { __quietSince?: number; __lastCount?: number };
      const calls = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/'));
      const pending = calls.some((e) => (e as PerformanceResourceTiming).responseEnd === 0);
      if (pending || calls.length !== w.__lastCount) {
        w.__lastCount = calls.length;
        w.__quietSince = performance.now();
        return false;
      }
      return calls.length > 0 && performance.now() - (w.__quietSince ?? 0) > 300;
    },
    undefined,
    { polling: 20, timeout: 30_000 },
  );
  return page.evaluate(() => {
    const w = window as unknown as { __lastMutation: number; __frames: number[] };
    const calls = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/')) as PerformanceResourceTiming[];
    const settled = Math.max(w.__lastMutation, ...calls.map((c) => c.responseEnd));
    const slowest = calls.reduce((a, b) => (b.duration > a.duration ? b : a));
    // The first frame painted after the last answer and the last DOM change.
    const frame = w.__frames.find((t) => t >= settled) ?? settled;
    return {
      renderedMs: frame,
      apiCalls: calls.length,
      slowestCall: new URL(slowest.name).pathname + new URL(slowest.name).search,
      slowestMs: slowest.duration,
      bytes: calls.reduce((s, c) => s + c.transferSize, 0),
    };
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
try {
  for (const view of views) {
    await measure(view); // warm-up: assets in cache, server code paths compiled
    const samples: Sample[] = [];
    for (let i = 0; i < reps; i++) samples.push(await measure(view));
    const r = samples.map((s) => s.renderedMs);
    const worst = samples.reduce((a, b) => (b.slowestMs > a.slowestMs ? b : a));
    process.stdout.write(
      `${view.padEnd(10)} rendered in ${median(r).toFixed(0)} ms median (${r.map((x) => x.toFixed(0)).join(', ')}); ${samples[0]!.apiCalls} API calls, ${(samples[0]!.bytes / 1024).toFixed(0)} KiB; slowest call ${worst.slowestCall} ${worst.slowestMs.toFixed(0)} ms\n`,
    );
  }
} finally {
  await session.close();
  child.kill('SIGTERM');
}
