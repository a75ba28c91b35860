// The feature-store demo, on the bike-sharing daily table (data/bike-sharing/day.csv): each day's totals — the
// previous day's rentals, registered rentals and mean temperature — become a feature view keyed by date. A training
// set for an hourly demand model is built by point-in-time retrieval from that view (each 2011 hour gets the totals of
// the day before it), the model is trained and pushed, the view is materialized online, and the model is served
// 2012 by entity key: callers send the date and the hour's weather, Warden fills the previous day's totals. Then the
// source's upstream job starts writing temperatures in degrees Celsius instead of the dataset's normalized unit
// (t / 41): the online store keeps what it served, the offline store now says otherwise, and the skew check catches
// it on that feature alone; the WardenFeatureSkew alert fires. Every step prints its numbers.
// Run against a local `npm start` (the server reads the view's CSV, written by this script, from --dir):
//   npm run demo:features [-- --url URL --dir DIR]
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatMetrics, train } from '../../src/lifecycle/trainer/index.ts';

export const MODEL = 'bike-daily-features';
export const VIEW = 'daily_lag';
const ENTITY = 'day';
const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
const DAY_CSV = path.join(REPO_ROOT, 'data', 'bike-sharing', 'day.csv');
const HOUR_CSV = path.join(REPO_ROOT, 'data', 'bike-sharing', 'hour.csv');
/** The hour's own inputs, sent by the caller. */
const REQUEST_FEATURES = ['hr', 'workingday', 'weathersit', 'temp', 'hum', 'windspeed'];
/** The view's features, filled by Warden from the date. */
const VIEW_FEATURES = ['prev_cnt', 'prev_registered', 'prev_temp'];
/** day.csv's temperature is normalized: degrees Celsius divided by 41 (the dataset's Readme.txt). */
const TEMP_SCALE = 41;

export interface FeaturesDemoOptions {
  url: string;
  apiKey?: string;
  /** A folder the server can read: the view's source CSV is written there. */
  dir: string;
  /** Months of 2012 served before the unit change (from January); the next month is served after it. */
  months: number;
  /** Seconds to wait for the alert to fire (the server evaluates rules every alerting.evaluationIntervalMs). */
  timeoutS: number;
  out?: (line: string) => void;
}

// The demo reads the API's answers loosely, field by field, as a user's script would; the routes' types are in docs/api.md.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

async function request(o: FeaturesDemoOptions, method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${o.url}${p}`, {
    method,
    headers: { ...(body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array) ? { 'content-type': 'application/json' } : {}), ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : body instanceof Uint8Array ? new Uint8Array(body) : JSON.stringify(body) } : {}),
  });
}

async function call(o: FeaturesDemoOptions, method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<Json> {
  const res = await request(o, method, p, body, headers);
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p} → ${res.status}: ${text}`);
  return text ? (JSON.parse(text) as Json) : {};
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

function readCsv(file: string): { header: string[]; rows: string[][] } {
  const [head, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  return { header: head!.split(','), rows: lines.map((l) => l.split(',')) };
}

/** The view's rows: for each day D (key `date`; event time `as_of`, D 00:00 UTC, when D − 1 is complete), the totals of D − 1. */
export function dailyLagCsv(tempScale = 1): string {
  const { header, rows } = readCsv(DAY_CSV);
  const col = (name: string) => header.indexOf(name);
  const [date, cnt, registered, temp] = [col('dteday'), col('cnt'), col('registered'), col('temp')];
  const out = ['date,as_of,prev_cnt,prev_registered,prev_temp'];
  for (let i = 1; i < rows.length; i++) {
    const prev = rows[i - 1]!;
    // Rounded as an upstream job would write them; the normalized unit keeps the dataset's 6 digits.
    const t = Number(prev[temp]) * tempScale;
    out.push([rows[i]![date], `${rows[i]![date]}T00:00:00Z`, prev[cnt], prev[registered], tempScale === 1 ? prev[temp] : t.toFixed(4)].join(','));
  }
  return `${out.join('\n')}\n`;
}

interface Hour {
  date: string;
  ts: number;
  values: Record<string, number>;
  cnt: number;
}

/** hour.csv writes dates as M/D/YY (1/1/11), day.csv as YYYY-MM-DD: both become the latter. */
function isoDate(s: string): string {
  const m = /^(\d{1,2})\/(\d{1,2})\/(\d{2})$/.exec(s);
  return m ? `20${m[3]}-${m[1]!.padStart(2, '0')}-${m[2]!.padStart(2, '0')}` : s;
}

function hours(year: 0 | 1): Hour[] {
  const { header, rows } = readCsv(HOUR_CSV);
  const col = (name: string) => header.indexOf(name);
  const out: Hour[] = [];
  for (const r of rows) {
    if (Number(r[col('yr')]) !== year) continue;
    const date = isoDate(r[col('dteday')]!);
    const hr = Number(r[col('hr')]);
    out.push({ date, ts: Date.parse(`${date}T00:00:00Z`) + hr * 3_600_000, values: Object.fromEntries(REQUEST_FEATURES.map((f) => [f, Number(r[col(f)])])), cnt: Number(r[col('cnt')]) });
  }
  return out;
}

/** Merges the demo's entity and view into the server's definitions, leaving everything else as it is. */
function withDemoDefinitions(current: Json, source: string): Json {
  const entities = (current.entities ?? []).filter((e: Json) => e.name !== ENTITY);
  const featureViews = (current.featureViews ?? []).filter((v: Json) => v.name !== VIEW);
  return {
    entities: [...entities, { name: ENTITY, joinKeys: ['date'], description: 'a calendar day (UTC)' }],
    featureViews: [
      ...featureViews,
      {
        name: VIEW,
        entities: [ENTITY],
        source: { kind: 'file', path: source, format: 'csv' },
        timestampField: 'as_of',
        // A row keyed by its own date never goes stale: the totals of the day before D are D's for good.
        ttl: 0,
        schema: [
          { name: 'prev_cnt', dtype: 'int', description: 'rentals the day before' },
          { name: 'prev_registered', dtype: 'int', description: 'rentals by registered users the day before' },
          { name: 'prev_temp', dtype: 'float', description: 'mean temperature the day before, normalized (°C / 41)' },
        ],
        owner: 'demo',
        tags: { dataset: 'uci-bike-sharing', table: 'day.csv' },
      },
    ],
  };
}

async function materialize(o: FeaturesDemoOptions): Promise<Json> {
  const started = await call(o, 'POST', '/api/v1/features/materialize', { views: [VIEW] });
  for (let i = 0; ; i++) {
    const run = (await call(o, 'GET', `/api/v1/features/materialize/${started.run.id}`)).run;
    if (run.state !== 'running' && run.state !== 'queued') {
      const v = run.views[0];
      if (v.state !== 'succeeded') throw new Error(`materializing ${VIEW} ended ${v.state}: ${v.error ?? ''}`);
      return v;
    }
    if (i > 600) throw new Error(`materializing ${VIEW} is still ${run.state} after a minute`);
    await sleep(100);
  }
}

/** Serves the hours day by day, one request per day: the date and each hour's weather, no feature-store values. */
async function serve(o: FeaturesDemoOptions, rows: Hour[]): Promise<{ requests: number; predictions: number[] }> {
  const byDay = new Map<string, Hour[]>();
  for (const r of rows) byDay.set(r.date, [...(byDay.get(r.date) ?? []), r]);
  const predictions: number[] = [];
  for (const [date, day] of byDay) {
    const res = await call(o, 'POST', `/v1/models/${MODEL}:predict`, { instances: day.map((r) => ({ date, ...r.values })) });
    predictions.push(...(res.predictions as number[]));
  }
  return { requests: byDay.size, predictions };
}

const mae = (p: number[], y: number[]) => p.reduce((s, x, i) => s + Math.abs(x - y[i]!), 0) / p.length;

export async function runFeaturesDemo(o: FeaturesDemoOptions): Promise<{ before: Json; after: Json; alert: Json | undefined }> {
  const print = o.out ?? ((s: string) => console.log(s));
  const health = await fetch(`${o.url}/v2/health/ready`).catch((e: Error) => {
    throw new Error(`no Warden server answers at ${o.url} (${e.message}); start one with npm start, or pass --url`);
  });
  if (!health.ok) throw new Error(`the server at ${o.url} is not ready (${health.status})`);
  const existing = await request(o, 'GET', `/api/v1/models/${MODEL}`);
  if (existing.status === 200) throw new Error(`${MODEL} already exists on this server (an earlier run of the demo); delete it first: warden models delete ${MODEL} --force`);

  // 1. The feature view: the previous day's totals, from day.csv, keyed by date.
  mkdirSync(o.dir, { recursive: true });
  const source = path.join(realpathSync(o.dir), 'daily-lag.csv');
  writeFileSync(source, dailyLagCsv());
  const current = await call(o, 'GET', '/api/v1/features');
  await call(o, 'PUT', '/api/v1/features', withDemoDefinitions(current, source));
  print(`1. feature view ${VIEW} (entity ${ENTITY}, join key date): ${VIEW_FEATURES.join(', ')} of the day before, 730 rows from day.csv → ${source}`);

  // 2. A training set by point-in-time retrieval: every 2011 hour with the totals known at its time.
  const train2011 = hours(0);
  const entityCsv = ['date,event_timestamp,' + REQUEST_FEATURES.join(',') + ',cnt', ...train2011.map((r) => [r.date, new Date(r.ts).toISOString(), ...REQUEST_FEATURES.map((f) => r.values[f]), r.cnt].join(','))].join('\n') + '\n';
  const t0 = performance.now();
  const hist = await request(o, 'POST', `/api/v1/features/historical?features=${VIEW}&timestampColumn=event_timestamp`, entityCsv, { 'content-type': 'text/csv' });
  const joined = await hist.text();
  if (!hist.ok) throw new Error(`POST /api/v1/features/historical → ${hist.status}: ${joined}`);
  const lines = joined.trim().split('\n');
  const head = lines[0]!.split(',');
  const featureCols = VIEW_FEATURES.map((f) => head.indexOf(f));
  // 2011-01-01 has no day before it in the table: its hours get empty values and are left out.
  const complete = lines.slice(1).filter((l) => featureCols.every((c) => l.split(',')[c] !== ''));
  print(`2. training set: ${lines.length - 1} hours of 2011 joined point-in-time with ${VIEW} in ${Math.round(performance.now() - t0)} ms; ${lines.length - 1 - complete.length} hours of 2011-01-01 have no day before and are left out`);
  mkdirSync(path.join(o.dir, 'train'), { recursive: true });
  const trainCsv = path.join(o.dir, 'train', 'training-set.csv');
  writeFileSync(trainCsv, [lines[0], ...complete].join('\n') + '\n');

  // 3. Train with and without the view's features; push the one that reads them.
  // Ridership grew by half in 2012: inputs are allowed up to a range's width beyond 2011's (rangeMargin 1), so the
  // busier days are served, not refused at the door.
  const common = { csvPath: trainCsv, target: 'cnt', model: 'gbt' as const, nEstimators: 60, maxDepth: 5, learningRate: 0.1, rangeMargin: 1 };
  const withView = await train({ ...common, features: [...REQUEST_FEATURES, ...VIEW_FEATURES] });
  const without = await train({ ...common, features: REQUEST_FEATURES });
  print(`3. gbt (60 trees, depth 5) on ${withView.params.rows_train} hours, holdout of ${withView.params.rows_holdout}:`);
  print(`   with the previous day's totals ${formatMetrics(withView.metrics)}`);
  print(`   without them                   ${formatMetrics(without.metrics)}`);
  await call(o, 'POST', `/api/v1/models/${MODEL}/versions?alias=champion`, withView.onnx, { 'content-type': 'application/octet-stream' });
  await call(o, 'PUT', `/api/v1/deployments/${MODEL}/features`, { views: [VIEW] });
  print(`   ${MODEL} v1 pushed; the deployment reads ${VIEW}: callers send date + ${REQUEST_FEATURES.join(', ')}`);

  // 4. Materialize the view online.
  const m1 = await materialize(o);
  print(`4. materialized ${VIEW}: ${m1.rowsRead} rows read, ${m1.rowsWritten} written, watermark ${new Date(m1.watermark).toISOString().slice(0, 10)}`);
  const probe = await call(o, 'POST', '/api/v1/features/online', { view: VIEW, entities: [{ date: '2012-06-01' }, { date: '2010-06-01' }] });
  for (const r of probe.results) {
    print(`   online ${r.entity.date}: ${Object.entries(r.features).map(([k, f]) => `${k}=${(f as Json).value ?? '–'} (${(f as Json).status})`).join(', ')}`);
  }

  // 5. Serve 2012 by entity key.
  const until = Date.UTC(2012, o.months, 1);
  const served2012 = hours(1);
  const first = served2012.filter((r) => r.ts < until);
  const s1 = await serve(o, first);
  print(`5. served ${first.length} hours of 2012 (January–${new Date(until - 1).toLocaleString('en', { month: 'long', timeZone: 'UTC' })}) in ${s1.requests} requests, features filled by date: MAE ${mae(s1.predictions, first.map((r) => r.cnt)).toFixed(1)} rentals`);
  const missing = await request(o, 'POST', `/v1/models/${MODEL}:predict`, { instances: [{ date: '2013-01-01', ...first[0]!.values }] });
  print(`   a date the view has no row for (2013-01-01) → ${missing.status}: ${((await missing.json()) as Json).error}`);
  const before = (await call(o, 'POST', '/api/v1/features/skew/check', {})).views.find((v: Json) => v.view === VIEW);
  if (!before) throw new Error('the skew check sampled no served rows of the view');
  print(`   skew check on ${before.rows} sampled rows: ${before.features.map((f: Json) => `${f.feature} ${pct(f.rate)}`).join(', ')}`);

  // 6. The unit change: the upstream job rewrites the table with temperatures in °C.
  writeFileSync(source, dailyLagCsv(TEMP_SCALE));
  const m2 = await materialize(o);
  print(`6. the source is rewritten with prev_temp in °C (×${TEMP_SCALE}); materialize: ${m2.rowsRead} rows read, ${m2.rowsWritten} written (created times did not move: the online store keeps the normalized values)`);
  const next = served2012.filter((r) => r.ts >= until && r.ts < Date.UTC(2012, o.months + 1, 1));
  const s2 = await serve(o, next);
  const after = (await call(o, 'POST', '/api/v1/features/skew/check', {})).views.find((v: Json) => v.view === VIEW);
  if (!after) throw new Error('the skew check sampled no served rows of the view');
  print(`   served ${next.length} more hours in ${s2.requests} requests; skew check on ${after.rows} sampled rows: ${after.features.map((f: Json) => `${f.feature} ${pct(f.rate)}`).join(', ')}`);
  const ex = after.examples.find((e: Json) => e.feature === 'prev_temp');
  if (ex) print(`   e.g. prev_temp for date=${ex.joinKeys.date}: served ${ex.served}, offline store ${ex.offline}`);

  // 7. The alert.
  const end = Date.now() + o.timeoutS * 1000;
  let alert: Json | undefined;
  while (!alert && Date.now() < end) {
    const alerts = (await call(o, 'GET', '/api/v1/alerts?status=firing')).alerts as Json[];
    alert = alerts.find((a) => a.labels?.alertname === 'WardenFeatureSkew' && a.labels?.view === VIEW);
    if (!alert) await sleep(500);
  }
  if (alert) print(`7. alert WardenFeatureSkew firing (${alert.labels.severity}) for ${alert.labels.view}:${alert.labels.feature}; runbook ${alert.annotations?.runbook_url ?? ''}`);
  else print(`7. WardenFeatureSkew has not fired within ${o.timeoutS} s (rules are evaluated every alerting.evaluationIntervalMs)`);
  return { before, after, alert };
}

// Real paths on both sides: run through a symlinked folder, the script must still know it is the entry point.
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(import.meta.filename)) {
  const { values } = parseArgs({ options: { url: { type: 'string' }, dir: { type: 'string' }, months: { type: 'string', default: '5' }, timeout: { type: 'string', default: '40' }, help: { type: 'boolean' } } });
  if (values.help) {
    console.log(readFileSync(import.meta.filename, 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
    console.log(`\noptions: --url URL (default $WARDEN_URL or http://127.0.0.1:8080)  --dir DIR (default ${path.join(tmpdir(), 'warden-features-demo')})  --months N (2012 months served before the change, default 5)  --timeout S (default 40)`);
    process.exit(0);
  }
  const months = Number(values.months);
  if (!Number.isInteger(months) || months < 1 || months > 11) {
    console.error('--months must be an integer from 1 to 11');
    process.exit(2);
  }
  try {
    await runFeaturesDemo({
      url: values.url ?? process.env.WARDEN_URL ?? 'http://127.0.0.1:8080',
      dir: path.resolve(values.dir ?? path.join(tmpdir(), 'warden-features-demo')),
      months,
      timeoutS: Number(values.timeout),
      ...(process.env.WARDEN_API_KEY ? { apiKey: process.env.WARDEN_API_KEY } : {}),
    });
  } catch (e) {
    console.error(`demo:features: ${(e as Error).message}`);
    process.exit(1);
  }
}
