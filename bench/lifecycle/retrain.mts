// Retraining run cost and its effect on serving: one Warden (embedded SQLite, in this process) serves `--rows` real
// 2012 hours (cycling) of a linear bike model, all labelled; a retraining job (gbt, `--trees` trees of depth 4, on
// 2011 + the traffic) is started by hand. Prints each step's time from the job's log, the whole run, and the
// latency of single-row :predict requests sent back to back while the job runs next to the same with no job
// (p50/p99), so what a run costs the requests beside it shows.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse } from 'csv-parse/sync';
import { BIKE_SHARING_CSV, bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { startTestServer } from '../../test/helpers/server.ts';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '20000' }, trees: { type: 'string', default: '100' } } });
const TOTAL = Number(values.rows);
const PER_REQUEST = 250;
const FEATURES = ['season', 'mnth', 'hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed'];
const rows2012 = (parse(readFileSync(BIKE_SHARING_CSV), { columns: true }) as Record<string, string>[]).filter((r) => r.yr === '1');
const instance = (i: number) => Object.fromEntries(FEATURES.map((f) => [f, Number(rows2012[i % rows2012.length]![f])]));

const srv = await startTestServer({ predictionLog: { flushIntervalMs: 50 }, retraining: { intervalMs: 3_600_000 } });
try {
  const { onnx } = await train(bikeSharingDemoOptions('linear'));
  await fetch(`${srv.url}/api/v1/models/bike/versions?alias=champion`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(onnx) });
  await srv.warden.table.settled();
  const t0 = performance.now();
  for (let r = 0; r * PER_REQUEST < TOTAL; r++) {
    const idx = Array.from({ length: Math.min(PER_REQUEST, TOTAL - r * PER_REQUEST) }, (_, i) => r * PER_REQUEST + i);
    const res = await srv.json('POST', '/v1/models/bike:predict', { instances: idx.map(instance), parameters: { keys: idx.map((i) => `k${i}`) } });
    if (res.status !== 200) throw new Error(`predict ${res.status}: ${JSON.stringify(res.body)}`);
  }
  await srv.warden.log!.flush();
  for (let i = 0; i < TOTAL; i += 5000) {
    const labels = Array.from({ length: Math.min(5000, TOTAL - i) }, (_, j) => ({ key: `k${i + j}`, value: Number(rows2012[(i + j) % rows2012.length]!.cnt), source: 'human' }));
    const res = await srv.json('POST', '/api/v1/labels', { labels });
    if (res.status !== 200) throw new Error(`labels ${res.status}`);
  }
  console.log(`seeded ${TOTAL} labelled predictions in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const put = await srv.json('PUT', '/api/v1/deployments/bike/retraining', {
    triggers: { labels: { min: 100_000_000 } },
    data: { base: { csv: BIKE_SHARING_CSV, target: 'cnt', where: { yr: 0 } } },
    train: { trainer: 'gbt', options: { nEstimators: Number(values.trees), maxDepth: 4 } },
    gate: { metrics: { mae: { threshold: 1e9 } } },
    deploy: { strategy: 'shadow' },
  });
  if (put.status !== 200) throw new Error(`policy ${put.status}: ${JSON.stringify(put.body)}`);

  const probe = async (whileRunning: () => boolean, max: number) => {
    const lat: number[] = [];
    for (let i = 0; lat.length < max && whileRunning(); i++) {
      const s = performance.now();
      const r = await srv.json('POST', '/v1/models/bike:predict', { instances: [instance(i)] });
      if (r.status !== 200) throw new Error(`probe ${r.status}`);
      lat.push(performance.now() - s);
    }
    lat.sort((a, b) => a - b);
    const q = (p: number) => lat[Math.min(lat.length - 1, Math.ceil(p * lat.length) - 1)]!;
    return `${lat.length} requests, p50 ${q(0.5).toFixed(2)} ms, p99 ${q(0.99).toFixed(2)} ms, max ${lat.at(-1)!.toFixed(1)} ms`;
  };
  console.log(`serving with no job:    ${await probe(() => true, 2000)}`);

  const start = performance.now();
  const job = (await srv.json('POST', '/api/v1/deployments/bike/retrain')).body.job as { id: number };
  let ended = false;
  const done = (async () => {
    await srv.warden.retraining!.tick();
    await srv.warden.retraining!.idle();
    ended = true;
  })();
  const during = await probe(() => !ended, 1_000_000);
  await done;
  const total = (performance.now() - start) / 1000;
  const rec = (await srv.json('GET', `/api/v1/jobs/${job.id}`)).body as { state: string; logs: string; inputs: { trainRows: number; holdoutRows: number } };
  console.log(`serving during the job: ${during}`);
  console.log(`job #${job.id} ${rec.state} in ${total.toFixed(2)} s: ${rec.inputs.trainRows} training rows, ${rec.inputs.holdoutRows} holdout rows`);
  for (const m of rec.logs.matchAll(/^(\w+): done in ([\d.]+) s$/gm)) console.log(`  ${m[1]!.padEnd(9)} ${m[2]} s`);
  const fit = /fitted (\d+) trees in ([\d.]+) s/.exec(rec.logs);
  if (fit) console.log(`  (the trainer fitted ${fit[1]} trees in ${fit[2]} s of its ${/train: done in ([\d.]+) s/.exec(rec.logs)?.[1]} s, the rest is starting Node and reading the CSV)`);
} finally {
  await srv.close();
}
