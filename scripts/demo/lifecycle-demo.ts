// The lifecycle demo: a linear model trained on 2011 (bike-lifecycle) serves the first half of 2012 hour by hour,
// monitored against its 2011 reference; the delayed counts arrive as labels. 2012 drifts (more riders, other
// weather), the retraining trigger fires, a gradient-boosted tree model is trained on 2011 plus the labelled 2012
// months, passes the validation gate against the stable version on the newest labelled hours and goes to shadow.
// A second run whose training data has a leaky feature (atemp replaced by the count it should predict) is stopped
// by the gate. Every step prints its numbers. Run against `npm start`:  npm run demo:lifecycle [-- --url URL]
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bikeSharingDemoOptions, BIKE_SHARING_CSV, formatMetrics, train } from '../../src/lifecycle/trainer/index.ts';
import { FEATURES, bikeRows } from './monitoring-demo.ts';

export const MODEL = 'bike-lifecycle';
const TWO_WEEKS = 14 * 24 * 3600 * 1000;
const LEAKY_TRAINER = path.resolve(import.meta.dirname, 'leaky-trainer.mjs');
/** Columns monitored for drift: the features that describe the hour's conditions, and the prediction. */
const MONITORED = ['hr', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed', 'variable'];

export interface LifecycleDemoOptions {
  url: string;
  apiKey?: string;
  /** Months of 2012 replayed and labelled (from January). */
  months: number;
  /** Seconds to wait for the retraining controller to act (it evaluates every retraining.intervalMs). */
  timeoutS: number;
  out?: (line: string) => void;
}

// The demo reads the API's answers loosely, field by field, as a user's script would; the routes' types are in docs/api.md.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

async function call(o: LifecycleDemoOptions, method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<Json> {
  const res = await fetch(`${o.url}${p}`, {
    method,
    headers: { ...(body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array) ? { 'content-type': 'application/json' } : {}), ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : body instanceof Uint8Array ? new Uint8Array(body) : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p} → ${res.status}: ${text}`);
  return text ? (JSON.parse(text) as Json) : {};
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(1) : x.toFixed(3));

async function waitForJob(o: LifecycleDemoOptions, id: number, print: (s: string) => void): Promise<Json> {
  const end = Date.now() + o.timeoutS * 1000;
  let shown = 0;
  for (;;) {
    const job = await call(o, 'GET', `/api/v1/jobs/${id}`);
    const lines = String(job.logs).split('\n').filter(Boolean);
    for (const l of lines.slice(shown)) if (!/^(read|training|trained|rows:|features:|wrote:|sha256:|train: +|tree \d)/.test(l)) print(`    ${l}`);
    shown = lines.length;
    if (['succeeded', 'rejected', 'failed', 'canceled'].includes(job.state)) return job;
    if (Date.now() > end) throw new Error(`job #${id} is still ${job.state} after ${o.timeoutS} s`);
    await sleep(300);
  }
}

export async function runLifecycleDemo(o: LifecycleDemoOptions): Promise<{ first: Json; second: Json }> {
  const print = o.out ?? ((s: string) => console.log(s));
  const health = await fetch(`${o.url}/v2/health/ready`).catch((e: Error) => {
    throw new Error(`no Warden server answers at ${o.url} (${e.message}); start one with npm start, or pass --url`);
  });
  if (!health.ok) throw new Error(`the server at ${o.url} is not ready (${health.status})`);
  const existing = await fetch(`${o.url}/api/v1/models/${MODEL}`, { headers: o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {} });
  if (existing.status === 200) throw new Error(`${MODEL} already exists on this server (an earlier run of the demo); delete it first: warden models delete ${MODEL} --force`);

  // 1. The model in production: linear, trained on 2011.
  const v1 = await train(bikeSharingDemoOptions('linear'));
  await call(o, 'POST', `/api/v1/models/${MODEL}/versions?alias=champion`, v1.onnx, { 'content-type': 'application/octet-stream' });
  print(`1. ${MODEL} v1: linear model trained on 2011 (${v1.params.rows_train} rows), holdout ${formatMetrics(v1.metrics)}`);
  const ref = bikeRows(0, true);
  const csv = [[...FEATURES, 'cnt'].join(','), ...ref.map((r) => [...FEATURES.map((f) => r.values[f]), r.cnt].join(','))].join('\n');
  await call(o, 'PUT', `/api/v1/models/${MODEL}/versions/champion/reference`, csv, {
    'content-type': 'text/csv',
    'x-warden-filename': 'bike-sharing-2011.csv',
    'x-warden-monitoring': JSON.stringify({ window: { kind: 'time', sizeMs: TWO_WEEKS }, columns: MONITORED, performance: { task: 'regression', target: 'cnt', segments: ['season'] } }),
  });
  print(`   reference: the ${ref.length} hours of 2011, two-week windows, drift on ${MONITORED.length} columns, live RMSE against offline`);

  // 2. The policy: retrain when drift is confirmed on 3 windows in a row, or when live accuracy falls below offline.
  const policy = {
    triggers: { drift: { windows: 3 }, accuracy: { windows: 2 } },
    guardrails: { cooldown: '1m', maxMachineLabelShare: 0.1 },
    // The replayed hours carry their 2012 timestamps: the data range reaches back to them.
    data: { since: '10000d', sources: ['human', 'system'], holdout: 0.2, minRows: 500, base: { csv: BIKE_SHARING_CSV, target: 'cnt', where: { yr: 0 } } },
    train: { trainer: 'gbt', options: { nEstimators: 80, maxDepth: 5, learningRate: 0.1 } },
    gate: { metrics: { mae: { minRelativeChange: 0.1 }, r2: { threshold: 0.5 } }, latencyBudgetMs: 20, segments: { maxDrop: 0.1, minRows: 50 } },
    deploy: { strategy: 'shadow', spec: { mirror: 100 } },
  };
  await call(o, 'PUT', `/api/v1/deployments/${MODEL}/retraining`, policy);
  print('2. retraining policy: drift on 3 windows in a row or live RMSE off offline on 2 → gbt (80 trees, depth 5) on 2011 + labelled 2012;');
  print('   gate: MAE ≥ 10 % better than stable, R² ≥ 0.5, p99 ≤ 20 ms, no season ≥ 10 % worse; pass → shadow');

  // 3. Traffic: the first months of 2012, a request per day with each hour's time and a key; then the labels.
  const until = Date.UTC(2012, o.months, 1);
  const rows = bikeRows(1, true).filter((r) => r.ts < until);
  const byDay = new Map<number, typeof rows>();
  for (const r of rows) byDay.set(Math.floor(r.ts / 86_400_000), [...(byDay.get(Math.floor(r.ts / 86_400_000)) ?? []), r]);
  for (const day of byDay.values()) {
    await call(o, 'POST', `/v1/models/${MODEL}:predict`, { instances: day.map((r) => r.values), parameters: { event_time: day[0]!.ts, keys: day.map((r) => `lc-${r.ts}`) } });
  }
  await sleep(300);
  for (let i = 0; i < rows.length; i += 5000) {
    await call(o, 'POST', '/api/v1/labels', { labels: rows.slice(i, i + 5000).map((r) => ({ key: `lc-${r.ts}`, value: r.cnt!, source: 'human', ts: r.ts + 86_400_000 })) });
  }
  print(`3. served ${rows.length} hours of January–${new Date(until - 1).toLocaleString('en', { month: 'long', timeZone: 'UTC' })} 2012 and sent their counts as labels`);
  let windows: Json[] = [];
  for (let i = 0; i < 50; i++) {
    await call(o, 'POST', '/api/v1/monitoring/flush', {});
    windows = (await call(o, "GET", `/api/v1/models/${MODEL}/versions/champion/monitoring/windows?limit=100&summary=true`)).windows as Json[];
    if (Array.isArray(windows) && windows.length && windows.every((w) => (w.performance?.labelled ?? 0) > 0)) break;
    await sleep(200);
  }
  print('   window      rows  drift share  live RMSE (offline ' + fmt(v1.metrics.rmse!) + ')');
  for (const w of windows) {
    const off = w.performance?.offline;
    print(`   ${new Date(w.windowStart).toISOString().slice(0, 10)}  ${String(w.rows).padStart(4)}  ${w.datasetDrift ? 'DRIFT' : 'ok   '} ${(100 * w.driftShare).toFixed(0).padStart(3)}%   ${off ? `${fmt(off.live)}${off.healthy ? '' : ' (below offline)'}` : '–'}`);
  }

  // 4. The controller evaluates the policy every interval; the trigger fires and the job runs.
  print('4. waiting for the retraining controller …');
  const end = Date.now() + o.timeoutS * 1000;
  let job: Json | undefined;
  while (!job) {
    const list = await call(o, 'GET', `/api/v1/jobs?deployment=${MODEL}&limit=1`);
    if (list.jobs.length) job = list.jobs[0];
    else if (Date.now() > end) {
      const view = await call(o, 'GET', `/api/v1/deployments/${MODEL}/retraining`);
      throw new Error(`no retraining job started within ${o.timeoutS} s: ${view.evaluation?.reason ?? view.evaluationError}`);
    } else await sleep(300);
  }
  print(`   job #${job.id} started by the ${job.trigger.trigger} trigger: ${job.trigger.reason}`);
  const first = await waitForJob(o, job.id, print);
  if (first.state !== 'succeeded') throw new Error(`job #${first.id} ended ${first.state}: ${first.error}`);
  const g = first.outputs.gate;
  print(`   ✔ job #${first.id} succeeded: v${first.outputs.version} registered (dataset #${first.inputs.dataset.id}, sha256 ${String(first.inputs.dataset.sha256).slice(0, 12)}…, parent v${first.inputs.stableVersion})`);
  print(`     holdout of ${g.holdoutRows} newest labelled hours: MAE ${fmt(g.metrics.candidate.mae)} vs stable ${fmt(g.metrics.stable.mae)}, R² ${fmt(g.metrics.candidate.r2)} vs ${fmt(g.metrics.stable.r2)}`);
  const dep = await call(o, 'GET', `/api/v1/deployments/${MODEL}`);
  print(`     ${MODEL}: stable v${dep.stable.version}, ${dep.strategy} of v${dep.candidate?.version} (mirror ${dep.candidate?.mirror} %)`);

  // 5. A second run, started by hand, whose trainer leaks the answer into a feature: the gate stops it.
  await call(o, 'PUT', `/api/v1/deployments/${MODEL}/retraining`, { ...policy, task: 'regression', train: { command: [process.execPath, LEAKY_TRAINER, '{dataset}', '{model}'], timeout: '5m' } });
  const started = await call(o, 'POST', `/api/v1/deployments/${MODEL}/retrain`, { reason: 'demo: a trainer with a leaky feature' });
  print(`5. job #${started.job.id}: a trainer command whose training set has atemp replaced by the count it predicts (a leak)`);
  const second = await waitForJob(o, started.job.id, print);
  const g2 = second.outputs.gate;
  if (second.state !== 'rejected') throw new Error(`job #${second.id} ended ${second.state}, not rejected: ${second.error ?? ''}`);
  print(`   ✘ job #${second.id} rejected by the gate: MAE ${fmt(g2.metrics.candidate.mae)} vs stable ${fmt(g2.metrics.stable.mae)}; nothing was registered or deployed`);
  for (const c of g2.checks.filter((x: Json) => !x.passed)) print(`     FAIL ${c.check}: ${c.detail}`);
  const after = await call(o, 'GET', `/api/v1/models/${MODEL}/versions`);
  print(`   ${MODEL} still has ${after.versions.length} versions; the ticket alert RetrainGateFailed names job #${second.id}`);
  return { first, second };
}

// Real paths on both sides: run through a symlinked folder, the script must still know it is the entry point.
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(import.meta.filename)) {
  const { values } = parseArgs({ options: { url: { type: 'string' }, months: { type: 'string', default: '6' }, timeout: { type: 'string', default: '120' }, help: { type: 'boolean' } } });
  if (values.help) {
    console.log(readFileSync(import.meta.filename, 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
    console.log('\noptions: --url URL (default $WARDEN_URL or http://127.0.0.1:8080)  --months N (2012 months replayed, default 6)  --timeout S (default 120)');
    process.exit(0);
  }
  const months = Number(values.months);
  if (!Number.isInteger(months) || months < 2 || months > 12) {
    console.error('--months must be an integer from 2 to 12');
    process.exit(2);
  }
  try {
    await runLifecycleDemo({ url: values.url ?? process.env.WARDEN_URL ?? 'http://127.0.0.1:8080', months, timeoutS: Number(values.timeout), ...(process.env.WARDEN_API_KEY ? { apiKey: process.env.WARDEN_API_KEY } : {}) });
  } catch (e) {
    console.error(`demo:lifecycle: ${(e as Error).message}`);
    process.exit(1);
  }
}
