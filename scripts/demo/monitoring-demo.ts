// The monitoring demo: register 2011 as the reference of the bike-demand model, replay 2012 hour by hour
// through the HTTP API with each row's real timestamp, optionally inject faults, and print what each
// weekly window showed. Run against `npm start`:  npm run demo:monitoring [-- --faults] [--url URL]
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { tableFromCsv, type WindowResult } from '../../src/monitoring/index.ts';

export const WEEK_MS = 7 * 24 * 3600 * 1000;
const CSV = path.resolve(import.meta.dirname, '../../data/bike-sharing/hour.csv');
export const FEATURES = ['season', 'mnth', 'hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed'];

/**
 * Columns the demo monitors: every feature but `season` and `mnth`, which differ between any week and a
 * whole-year reference by construction, plus the prediction.
 */
export const MONITORED = ['hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed', 'variable'];

/** The faults the demo can inject, each starting in its own week of 2012. */
export const FAULTS = {
  // Windows are aligned to the Unix epoch, a Thursday: each fault starts with a window.
  fahrenheit: { week: '2012-03-01', what: 'temp sent in °F (a unit bug upstream)' },
  null_humidity: { week: '2012-05-31', what: 'hum sent as null for the whole week (a broken sensor)' },
  new_weather: { week: '2012-08-30', what: 'weathersit 5, a category the model never saw' },
} as const;

export type FaultName = keyof typeof FAULTS;

interface Row {
  ts: number;
  values: Record<string, number | null>;
  /** The true hourly count, when asked for. */
  cnt?: number;
}

/** 2011 or 2012 rows of the bundled dataset with their timestamps (dteday + hr, UTC). */
export function bikeRows(year: 0 | 1, withCount = false): Row[] {
  const t = tableFromCsv(readFileSync(CSV));
  const col = (n: string) => t.names.indexOf(n);
  return t.rows
    .filter((r) => r[col('yr')] === year)
    .map((r) => {
      const [m, d, y] = String(r[col('dteday')]).split('/').map(Number) as [number, number, number];
      const ts = Date.UTC(2000 + y, m - 1, d, r[col('hr')] as number);
      const values = Object.fromEntries(FEATURES.map((f) => [f, r[col(f)] as number]));
      return withCount ? { ts, values, cnt: r[col('cnt')] as number } : { ts, values };
    });
}

function faultFor(ts: number, faults: readonly FaultName[]): FaultName | undefined {
  for (const f of faults) {
    const start = Date.parse(`${FAULTS[f].week}T00:00:00Z`);
    if (ts >= start && ts < start + WEEK_MS) return f;
  }
  return undefined;
}

function applyFault(f: FaultName | undefined, v: Record<string, number | null>): Record<string, number | null> {
  if (f === 'fahrenheit') return { ...v, temp: ((v.temp as number) * 41 * 9) / 5 + 32 };
  if (f === 'null_humidity') return { ...v, hum: null };
  if (f === 'new_weather') return { ...v, weathersit: 5 };
  return v;
}

export interface DemoOptions {
  url: string;
  model?: string;
  apiKey?: string;
  faults?: readonly FaultName[];
  log?: (msg: string) => void;
}

async function call(o: DemoOptions, method: string, p: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${o.url}${p}`, {
    method,
    headers: { 'content-type': 'application/json', ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as unknown };
}

/** Registers the 2011 reference with weekly windows, replays 2012, flushes, and returns the windows. */
export async function runMonitoringDemo(o: DemoOptions) {
  const model = o.model ?? 'bike-demand';
  const log = o.log ?? (() => undefined);
  const ref = bikeRows(0);
  const csv = [FEATURES.join(','), ...ref.map((r) => FEATURES.map((f) => r.values[f]).join(','))].join('\n');
  const put = await fetch(`${o.url}/api/v1/models/${model}/versions/champion/reference`, {
    method: 'PUT',
    headers: {
      'content-type': 'text/csv',
      'x-warden-filename': 'bike-sharing-2011.csv',
      'x-warden-monitoring': JSON.stringify({ window: { kind: 'time', sizeMs: WEEK_MS }, columns: MONITORED }),
      ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}),
    },
    body: csv,
  });
  if (put.status !== 201) throw new Error(`reference registration failed: ${put.status} ${await put.text()}`);
  log(`registered the 2011 reference (${ref.length} rows) for ${model}`);

  const rows = bikeRows(1);
  let served = 0;
  let refused = 0;
  // One request per day (and fault state): all of a request's rows share its event_time, so a request
  // never straddles a window boundary.
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const key = `${Math.floor(r.ts / 86_400_000)}:${faultFor(r.ts, o.faults ?? []) ?? 'none'}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  let done = 0;
  for (const [key, group] of groups) {
    const f = key.split(':')[1]!;
    const fault = f === 'none' ? undefined : (f as FaultName);
    const res = await call(o, 'POST', `/v1/models/${model}:predict`, {
      instances: group.map((r) => applyFault(fault, r.values)),
      parameters: { event_time: group[0]!.ts },
    });
    if (res.status === 200) served += group.length;
    else refused += group.length;
    done += group.length;
    if (done % 1440 < group.length) log(`replayed ${done}/${rows.length} rows of 2012`);
  }
  log(`replay done: ${served} rows served, ${refused} refused`);
  // Let the prediction log hand its last batch to monitoring, then close every open window.
  await new Promise((r) => setTimeout(r, 600));
  await call(o, 'POST', '/api/v1/monitoring/flush', {});
  const res = await call(o, 'GET', `/api/v1/models/${model}/versions/champion/monitoring/windows?limit=1000`, undefined as never);
  return { served, refused, windows: (res.body as { windows: WindowResult[] }).windows };
}

function summary(windows: WindowResult[], faults: readonly FaultName[]): string {
  const lines = ['week        rows  drift share  temp W   drifted                          quality failures'];
  for (const w of windows) {
    const start = new Date(w.windowStart).toISOString().slice(0, 10);
    const temp = w.drift.columns.find((c) => c.column === 'temp');
    const drifted = w.drift.columns.filter((c) => c.drift).map((c) => c.column).join(' ');
    const failed = w.quality.checks.filter((c) => c.failed).map((c) => `${c.column}:${c.metric}=${Number(c.value.toPrecision(3))}`);
    const fault = faults.find((f) => Date.parse(FAULTS[f].week) >= w.windowStart && Date.parse(FAULTS[f].week) < w.windowEnd);
    lines.push(
      `${start}  ${String(w.rows).padStart(4)}  ${w.drift.datasetDrift ? 'DRIFT' : 'ok   '} ${(100 * w.drift.driftShare).toFixed(0).padStart(3)}%  ${Number(temp?.score ?? NaN).toFixed(3).padStart(6)}   ${drifted.padEnd(32)} ${failed.join(' ')}${fault ? `   <- fault: ${FAULTS[fault].what}` : ''}`,
    );
  }
  return lines.join('\n');
}

// Real paths on both sides: run through a symlinked folder, the script must still know it is the entry point.
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(import.meta.filename)) {
  const args = process.argv.slice(2);
  const url = args.includes('--url') ? args[args.indexOf('--url') + 1]! : (process.env.WARDEN_URL ?? 'http://127.0.0.1:8080');
  const faults = args.includes('--faults') ? (Object.keys(FAULTS) as FaultName[]) : [];
  const result = await runMonitoringDemo({ url, faults, ...(process.env.WARDEN_API_KEY ? { apiKey: process.env.WARDEN_API_KEY } : {}), log: (m) => console.error(m) });
  console.log(summary(result.windows, faults));
}
