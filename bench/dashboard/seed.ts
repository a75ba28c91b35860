// Seeds a fresh data directory for the dashboard's performance target: "the first view renders in under 1 s on a
// store with 1,000,000 logged predictions and a year of hourly windows". For the two demo models (bike-demand,
// bike-busy, trained and deployed as `warden serve --demo` does) it writes, straight through the SQLite store
// adapters:
//   - 1,000,000 logged predictions spread over the last year (inputs: real 2012 rows of the UCI bike-sharing
//     data, Fanaee-T & Gama 2013; outputs: what the deployed model answers for them; 1 % refused requests);
//   - 8,760 hourly monitoring windows per deployment: four real windows are evaluated by MonitoringService (168 hours
//     of 2012 each against the 2011 reference, with labels), and each hour of the year is a copy of one of them with
//     its scores, rows and performance varied, plus three drift episodes;
//   - a year of hourly traffic buckets and 14 days of minute buckets (requests follow the 2012 hourly rentals,
//     ×8 and ×5; latencies log-normal around 1.2 ms; three incidents), and 30 days of SLI series for the
//     availability and latency SLOs it writes to slo.yaml.
// Then `node bin/warden.js serve --demo --data-dir DIR` serves it (the demo models exist, so nothing is retrained).
//   npm run bench:dashboard-seed -- --data-dir DIR [--predictions 1000000] [--now ISO]
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FEATURES, bikeRows } from '../../scripts/demo/monitoring-demo.ts';
import { createWarden } from '../../src/app.ts';
import { parseConfig } from '../../src/config.ts';
import { seedDemo } from '../../src/lifecycle/index.ts';
import { summarizeWindow, type WindowResult } from '../../src/monitoring/index.ts';
import { mulberry32 } from '../../src/random.ts';
import { PredictionBatch, SqliteEventStore, type MonitorResultRecord, type PredictionEvent, type SliCountRecord, type TrafficBucketRecord } from '../../src/storage/index.ts';
import { HISTOGRAM_LENGTH, latencyBin } from '../../src/telemetry/index.ts';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    predictions: { type: 'string', default: '1000000' },
    now: { type: 'string' },
  },
});
const dataDir = values['data-dir'] ? path.resolve(values['data-dir']) : undefined;
if (!dataDir) {
  process.stderr.write('usage: npm run bench:dashboard-seed -- --data-dir DIR [--predictions N] [--now ISO-8601]\n');
  process.exit(2);
}
if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
  process.stderr.write(`${dataDir} is not empty: the seed fills a fresh data directory; give a new or empty one\n`);
  process.exit(2);
}
const TOTAL_PREDICTIONS = Number(values.predictions);
if (!Number.isInteger(TOTAL_PREDICTIONS) || TOTAL_PREDICTIONS < 0) throw new Error('--predictions must be a whole number');

const HOUR = 3_600_000;
const MINUTE = 60_000;
const DAY = 86_400_000;
const END = Math.floor((values.now ? Date.parse(values.now) : Date.now()) / HOUR) * HOUR;
const HOURS = 8760;
const START = END - HOURS * HOUR;
const MINUTE_DAYS = 14;
const SLI_DAYS = 30;

const t0 = performance.now();
const log = (msg: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
const rand = mulberry32(20_261_203);
const gauss = () => {
  const u = Math.max(1e-12, rand());
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
};

interface Deployment {
  name: string;
  task: 'regression' | 'binary';
  /** Requests per hour = 2012 rentals of that hour × this. */
  scale: number;
  /** Share of the logged predictions. */
  share: number;
  output: string;
  threshold?: number;
}
const DEPLOYMENTS: Deployment[] = [
  { name: 'bike-demand', task: 'regression', scale: 8, share: 0.6, output: 'variable' },
  { name: 'bike-busy', task: 'binary', scale: 5, share: 0.4, output: 'probability' },
];

/** Incidents: [start hours before END, length in hours, what]. */
const INCIDENTS = [
  { ago: 20 * 24 + 3, hours: 2, serverErrors: 0.08, latency: 4, clientErrors: 0 },
  { ago: 5 * 24 + 10, hours: 1, serverErrors: 0, latency: 1, clientErrors: 0.2 },
  { ago: 200 * 24, hours: 4, serverErrors: 0.01, latency: 6, clientErrors: 0 },
];
const incidentAt = (ts: number) => INCIDENTS.find((i) => ts >= END - i.ago * HOUR && ts < END - (i.ago - i.hours) * HOUR);

// ---- 1. The demo models, their references, and four real windows evaluated by MonitoringService ----
log(`seeding ${dataDir}: ${HOURS} hours from ${new Date(START).toISOString()} to ${new Date(END).toISOString()}`);
const config = parseConfig({
  storage: { dataDir },
  auth: { required: false },
  logLevel: 'warn',
  predictionLog: { flushIntervalMs: 50 },
  // The series below are synthetic; nothing else may count into them while the real windows are evaluated.
  traffic: { enabled: false },
  slo: { enabled: false },
  alerting: { enabled: false },
});
const warden = createWarden(config);
await warden.start();
await seedDemo(warden.registry, warden.logger);
log('demo models trained and deployed (bike-demand, bike-busy)');

const rows2012 = bikeRows(1, true);
const rows2011 = bikeRows(0, true);
const inject = async (method: 'GET' | 'PUT' | 'POST', url: string, payload: unknown, headers: Record<string, string> = {}) => {
  const res = await warden.http.inject({ method, url, payload: payload as string, headers: { 'content-type': 'application/json', ...headers } });
  if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode}: ${res.body.slice(0, 500)}`);
  return JSON.parse(res.body) as unknown;
};

/**
 * Four real windows, each 168 hours of 2012 drawn at random across the year (a single week against a whole-year
 * reference drifts on every weather feature, which would drown the episodes below), each stamped with its own hour.
 */
const SAMPLE_HOURS = ['2012-01-09', '2012-01-16', '2012-01-23', '2012-01-30'].map((d) => Date.parse(`${d}T00:00:00Z`));
const shuffled = bikeRows(1, true);
for (let i = shuffled.length - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
}
const samples = SAMPLE_HOURS.map((_, k) => shuffled.slice(k * 168, (k + 1) * 168));
const templates = new Map<string, MonitorResultRecord[]>();
/** Model outputs for each 2012 hour row, by deployment: what logged predictions carry. */
const outputs = new Map<string, Float32Array>();

for (const d of DEPLOYMENTS) {
  const version = (await inject('GET', `/api/v1/models/${d.name}/versions/champion`, undefined)) as { version: number; metadata: { params?: { threshold?: number } } };
  d.threshold = version.metadata.params?.threshold;
  const performance = d.task === 'binary' ? { task: 'binary', target: 'cnt', targetThreshold: d.threshold, segments: ['weathersit'] } : { task: 'regression', target: 'cnt' };
  const csv = [[...FEATURES, 'cnt'].join(','), ...rows2011.map((r) => [...FEATURES.map((f) => r.values[f]), r.cnt].join(','))].join('\n');
  await inject('PUT', `/api/v1/models/${d.name}/versions/champion/reference`, csv, {
    'content-type': 'text/csv',
    'x-warden-filename': 'bike-sharing-2011.csv',
    'x-warden-monitoring': JSON.stringify({
      window: { kind: 'time', sizeMs: HOUR },
      // season and mnth differ between any one window and a whole-year reference by construction.
      columns: ['hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed', d.output],
      performance,
    }),
  });
  // Each real window holds one sample of 2012 rows, all stamped with one hour.
  for (const [k, from] of SAMPLE_HOURS.entries()) {
    const rows = samples[k]!;
    await inject('POST', `/v1/models/${d.name}:predict`, {
      instances: rows.map((r) => r.values),
      parameters: { event_time: from, keys: rows.map((r) => `seed-${d.name}-${r.ts}`) },
    });
    await inject('POST', '/api/v1/labels', {
      labels: rows.map((r) => ({ key: `seed-${d.name}-${r.ts}`, value: d.task === 'binary' ? (r.cnt! > d.threshold! ? 1 : 0) : r.cnt!, ts: from + HOUR })),
    });
  }
  // Outputs for every 2012 hour, in one model run.
  const lv = await warden.table.load(d.name, version.version);
  const data = new Float32Array(rows2012.length * FEATURES.length);
  rows2012.forEach((r, i) => FEATURES.forEach((f, j) => (data[i * FEATURES.length + j] = r.values[f] as number)));
  const inputName = lv.record.signature.inputs[0]!.name;
  const [out] = await lv.runtime.run([{ name: inputName, datatype: 'FP32', dims: [rows2012.length, FEATURES.length], data }]);
  outputs.set(d.name, Float32Array.from(out!.data as ArrayLike<number>));
}
await warden.log!.flush();
await warden.monitoring!.tick({ flush: true });
// The labels join on the next tick, and the windows are evaluated again with realized performance.
await warden.monitoring!.tick({ flush: true });
for (const d of DEPLOYMENTS) {
  const real = await warden.stores.events.listMonitorResults({ model: d.name, version: 1 });
  if (real.length !== SAMPLE_HOURS.length) throw new Error(`expected ${SAMPLE_HOURS.length} evaluated windows of ${d.name}, got ${real.length}`);
  templates.set(d.name, real);
  const perf = (real[0]!.report as WindowResult).performance;
  log(`${d.name}: ${real.length} real windows evaluated (${real[0]!.rows} rows each; performance ${perf?.realized ? 'realized' : 'missing'}; report ${(JSON.stringify(real[0]!.report).length / 1024).toFixed(1)} KiB)`);
}
const inputName = warden.table.peek('bike-demand', 1)!.record.signature.inputs[0]!.name;
await warden.close();

// ---- 2. Straight into events.db through the store adapter ----
const events = new SqliteEventStore(path.join(dataDir, 'events.db'));

/** 2012 rows by hour of the year (0 … 8783), for the traffic shape and the logged inputs. */
const byHourOfYear: number[] = [];
const JAN1 = Date.UTC(2012, 0, 1);
rows2012.forEach((r, i) => (byHourOfYear[Math.floor((r.ts - JAN1) / HOUR)] = i));
const rowFor = (ts: number): number => {
  const d = new Date(ts);
  let h = Math.floor((Date.UTC(2012, d.getUTCMonth(), d.getUTCDate(), d.getUTCHours()) - JAN1) / HOUR);
  for (let k = 0; k < 48; k++, h = (h + 1) % 8784) if (byHourOfYear[h] !== undefined) return byHourOfYear[h]!;
  return 0;
};

/** The latency of one request (ms): log-normal around 1.2 ms, a slow tail, slower during an incident. */
const latency = (slow: number) => Math.exp(Math.log(1.2) + 0.45 * gauss()) * slow + (rand() < 0.01 ? rand() * 30 : 0);

// Traffic: per deployment, per hour (and per minute for the last 30 days).
const sliRecords: SliCountRecord[] = [];
let trafficRequests = 0;
for (const d of DEPLOYMENTS) {
  const hourly: TrafficBucketRecord[] = [];
  const minutes: TrafficBucketRecord[] = [];
  for (let ts = START; ts < END; ts += HOUR) {
    const base = (rows2012[rowFor(ts)]!.cnt ?? 100) * d.scale;
    const inc = incidentAt(ts);
    const fine = ts >= END - SLI_DAYS * DAY;
    const hour = emptyBucket(d.name, 'hour', ts);
    const perMinute = fine ? 60 : 1;
    for (let m = 0; m < perMinute; m++) {
      const n = Math.max(0, Math.round((base / perMinute) * (1 + 0.15 * gauss())));
      const b = emptyBucket(d.name, 'minute', ts + m * MINUTE);
      let good25 = 0;
      for (let i = 0; i < n; i++) {
        const r = rand();
        const ms = latency(inc?.latency ?? 1);
        b.requests++;
        b.latencySumMs += ms;
        b.minMs = b.requests === 1 ? ms : Math.min(b.minMs, ms);
        b.maxMs = Math.max(b.maxMs, ms);
        b.histogram[latencyBin(ms)]!++;
        if (r < (inc?.serverErrors ?? 0.002)) {
          b.serverErrors++;
          b.errors.WARDEN_INFERENCE_FAILED = (b.errors.WARDEN_INFERENCE_FAILED ?? 0) + 1;
        } else if (r < (inc?.serverErrors ?? 0.002) + (inc?.clientErrors || 0.01)) {
          b.clientErrors++;
          const code = rand() < 0.7 ? 'WARDEN_INVALID_INPUT' : 'WARDEN_BAD_REQUEST';
          b.errors[code] = (b.errors[code] ?? 0) + 1;
        } else {
          b.ok++;
          b.rows++;
          if (ms <= 25) good25++;
        }
      }
      b.cpuMs = b.latencySumMs * 0.9;
      addInto(hour, b);
      if (fine) {
        if (b.ts >= END - MINUTE_DAYS * DAY) minutes.push(b);
        sliRecords.push({ slo: `${d.name}-availability`, ts: b.ts, source: 'traffic', good: b.ok, total: b.ok + b.serverErrors });
        sliRecords.push({ slo: `${d.name}-latency`, ts: b.ts, source: 'traffic', good: good25, total: b.ok });
      }
    }
    trafficRequests += hour.requests;
    hourly.push(hour);
  }
  for (let i = 0; i < hourly.length; i += 2000) await events.addTraffic(hourly.slice(i, i + 2000));
  for (let i = 0; i < minutes.length; i += 2000) await events.addTraffic(minutes.slice(i, i + 2000));
  log(`${d.name}: traffic ${hourly.length} hour buckets, ${minutes.length} minute buckets`);
}
for (let i = 0; i < sliRecords.length; i += 10_000) await events.addSliCounts(sliRecords.slice(i, i + 10_000));
log(`traffic: ${trafficRequests.toLocaleString('en')} requests counted; SLI series: ${sliRecords.length} minute buckets`);

function emptyBucket(model: string, step: 'minute' | 'hour', ts: number): TrafficBucketRecord {
  return { model, version: 1, step, ts, requests: 0, ok: 0, clientErrors: 0, serverErrors: 0, shadow: 0, rows: 0, latencySumMs: 0, minMs: 0, maxMs: 0, cpuMs: 0, histogram: new Array<number>(HISTOGRAM_LENGTH).fill(0), errors: {} };
}

function addInto(into: TrafficBucketRecord, b: TrafficBucketRecord): void {
  if (b.requests > 0) into.minMs = into.requests > 0 ? Math.min(into.minMs, b.minMs) : b.minMs;
  into.requests += b.requests;
  into.ok += b.ok;
  into.clientErrors += b.clientErrors;
  into.serverErrors += b.serverErrors;
  into.rows += b.rows;
  into.latencySumMs += b.latencySumMs;
  into.maxMs = Math.max(into.maxMs, b.maxMs);
  into.cpuMs += b.cpuMs;
  b.histogram.forEach((c, i) => (into.histogram[i]! += c));
  for (const [k, v] of Object.entries(b.errors)) into.errors[k] = (into.errors[k] ?? 0) + v;
}

// Logged predictions: spread over the hours in proportion to the traffic, on real 2012 rows.
const weights = Array.from({ length: HOURS }, (_, h) => rows2012[rowFor(START + h * HOUR)]!.cnt ?? 100);
const weightSum = weights.reduce((a, b) => a + b, 0);
/** Logged predictions per deployment and hour: the windows' row counts. */
const loggedRows = new Map<string, Uint32Array>();
let written = 0;
for (const d of DEPLOYMENTS) {
  const target = Math.round(TOTAL_PREDICTIONS * d.share);
  const perHour = new Uint32Array(HOURS);
  let left = target;
  for (let h = 0; h < HOURS && left > 0; h++) {
    const n = h === HOURS - 1 ? left : Math.min(left, Math.round((target * weights[h]!) / weightSum));
    perHour[h] = n;
    left -= n;
  }
  if (left > 0) perHour[HOURS - 1]! += left;
  loggedRows.set(d.name, perHour);
  const out = outputs.get(d.name)!;
  let batch: PredictionEvent[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await events.appendBatch(PredictionBatch.of(batch));
    written += batch.length;
    batch = [];
    if (written % 100_000 < 5000) log(`predictions: ${written.toLocaleString('en')} / ${TOTAL_PREDICTIONS.toLocaleString('en')}`);
  };
  for (let h = 0; h < HOURS; h++) {
    const hourTs = START + h * HOUR;
    const row = rowFor(hourTs);
    for (let i = 0; i < perHour[h]!; i++) {
      // A neighbouring hour's row now and then: not every request of an hour sends the same weather.
      const r = Math.min(rows2012.length - 1, Math.max(0, row + Math.round(gauss() * 2)));
      const ts = hourTs + Math.floor(rand() * HOUR);
      const refused = rand() < 0.01;
      const instance = FEATURES.map((f) => rows2012[r]!.values[f] as number);
      const e: PredictionEvent = {
        requestId: `${ts.toString(16)}-${Math.floor(rand() * 2 ** 32).toString(16).padStart(8, '0')}`,
        ts,
        model: d.name,
        version: 1,
        status: refused ? 'error' : 'ok',
        latencyMs: latency(incidentAt(ts)?.latency ?? 1),
        inputs: refused ? [Object.fromEntries(FEATURES.map((f, j) => [f, f === 'temp' ? instance[j]! * 41 * 1.8 + 32 : instance[j]]))] : [{ name: inputName, datatype: 'FP32', shape: [1, FEATURES.length], data: instance }],
        outputs: refused ? null : [{ name: d.output, datatype: 'FP32', shape: [1, 1], data: [out[r]!] }],
        ...(refused ? { error: 'WARDEN_INVALID_INPUT: instances[0].temp = 84.2 is above the allowed maximum 1.0 (from the reference); send temp normalised to [0, 1]' } : {}),
      };
      batch.push(e);
      if (batch.length >= 5000) await flush();
    }
  }
  await flush();
}
log(`predictions: ${written.toLocaleString('en')} written`);

// Monitoring windows: each hour a varied copy of its season's real window.
/** Drift episodes: [start hours before END, length in hours, column, factor on its distance / p-value]. */
const EPISODES = [
  { model: 'bike-busy', ago: 3 * 24, hours: 30, column: 'hum', factor: 6 },
  { model: 'bike-demand', ago: 5 * 24 + 10, hours: 1, column: 'temp', factor: 8 },
  { model: 'bike-demand', ago: 90 * 24, hours: 72, column: 'windspeed', factor: 5 },
];
let windowsWritten = 0;
for (const d of DEPLOYMENTS) {
  const real = templates.get(d.name)!;
  const perHour = loggedRows.get(d.name)!;
  for (let h = 0; h < HOURS; h++) {
    const ts = START + h * HOUR;
    // A week on each real window in turn: the hour-to-hour variation comes from the noise below.
    const template = real[Math.floor(h / 168) % real.length]!;
    const report = structuredClone(template.report) as WindowResult;
    const rows = Math.max(1, perHour[h]!);
    const episode = EPISODES.find((e) => e.model === d.name && ts >= END - e.ago * HOUR && ts < END - (e.ago - e.hours) * HOUR);
    for (const c of report.drift.columns) {
      const push = episode?.column === c.column ? episode.factor : 1;
      if (c.scoreKind === 'p_value') c.score = Math.min(1, (c.score * Math.exp(0.6 * gauss())) / push ** 3);
      else c.score = c.score * Math.exp(0.2 * gauss()) * push;
      c.drift = c.scoreKind === 'p_value' ? c.score < c.threshold : c.score >= c.threshold;
      c.currentRows = rows;
    }
    const feats = report.drift.columns.filter((c) => c.role === 'feature');
    report.drift.driftShare = feats.filter((c) => c.drift).length / Math.max(1, feats.length);
    report.drift.datasetDrift = report.drift.driftShare >= report.drift.datasetDriftShare;
    report.drift.predictionDrift = report.drift.columns.some((c) => c.role === 'prediction' && c.drift);
    for (const hist of report.histograms) hist.current = hist.current.map((n) => Math.round((n * rows) / Math.max(1, template.rows)));
    if (report.performance) varyPerformance(report.performance, ts, rows);
    const qualityFailures = episode?.column === 'temp' ? 1 : rand() < 0.01 ? 1 : 0;
    const record: MonitorResultRecord = {
      model: d.name,
      version: 1,
      windowStart: ts,
      windowEnd: ts + HOUR,
      rows,
      datasetDrift: report.drift.datasetDrift,
      qualityFailures,
      report: { drift: report.drift, quality: report.quality, extraFeatures: report.extraFeatures, ...(report.performance ? { performance: report.performance } : {}), histograms: report.histograms },
      createdAt: ts + HOUR + 5_000,
    };
    record.summary = summarizeWindow(record, record.report);
    await events.saveMonitorResult(record);
    windowsWritten++;
    if (windowsWritten % 2000 === 0) log(`windows: ${windowsWritten} / ${HOURS * DEPLOYMENTS.length}`);
  }
}
log(`windows: ${windowsWritten} written`);

/** Realized metrics move a little hour to hour; the last day has no labels yet (the estimate only). */
function varyPerformance(p: NonNullable<WindowResult['performance']>, ts: number, rows: number): void {
  const jitter = (v: number, rel: number, unit = false) => {
    const x = v * (1 + rel * gauss());
    return unit ? Math.min(1, Math.max(0, x)) : Math.max(0, x);
  };
  const scale = (m: Record<string, unknown> | undefined, rel: number) => {
    if (!m) return;
    for (const [k, v] of Object.entries(m)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || Number.isInteger(v)) continue;
      m[k] = jitter(v, rel, ['accuracy', 'precision', 'recall', 'f1', 'auc', 'rocAuc', 'r2'].includes(k) && v <= 1);
    }
  };
  scale(p.realized as unknown as Record<string, unknown>, 0.02);
  scale(p.estimated as unknown as Record<string, unknown>, 0.02);
  delete p.segments;
  if (ts >= END - DAY) {
    delete p.realized;
    delete p.offline;
    p.labelled = 0;
    p.labelsBySource = { human: 0, system: 0, model: 0 };
  } else {
    p.labelled = Math.round(rows * 0.8);
    p.labelsBySource = { human: 0, system: p.labelled, model: 0 };
    if (p.realized) (p.realized as { n: number }).n = p.labelled;
    if (p.offline && p.realized) {
      const live = (p.realized as unknown as Record<string, number>)[p.offline.metric];
      if (typeof live === 'number') {
        p.offline.live = live;
        p.offline.gap = live - p.offline.offline;
        p.offline.healthy = Math.abs(p.offline.gap) <= 0.05 * Math.abs(p.offline.offline);
      }
    }
  }
}
await events.close();

// ---- 3. SLOs over the recorded series ----
writeFileSync(
  path.join(dataDir, 'slo.yaml'),
  `# Written by bench/dashboard/seed.ts: SLOs over the seeded series.
slos:
${DEPLOYMENTS.map(
  (d) => `  - name: ${d.name}-availability
    deployment: ${d.name}
    sli: { kind: availability }
    objective: 0.999
    period: 30d
  - name: ${d.name}-latency
    deployment: ${d.name}
    sli: { kind: latency, thresholdMs: 25 }
    objective: 0.99
    period: 30d`,
).join('\n')}
`,
);
log(`done: serve it with  node bin/warden.js serve --demo --data-dir ${dataDir}`);
