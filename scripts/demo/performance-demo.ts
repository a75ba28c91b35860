// The performance demo: the busy/not-busy classifier (bike-busy, trained on 2011) is monitored through 2012.
// Its reference (2011, with the true counts) calibrates CBPE; 2012 is replayed with each hour's timestamp and a
// caller key; the estimated accuracy is there at once, and once the delayed labels are sent the realized accuracy
// appears next to it. Run against `npm start`:  npm run demo:performance [-- --url URL]
import { realpathSync } from 'node:fs';
import { FEATURES, bikeRows } from './monitoring-demo.ts';

const FOUR_WEEKS = 28 * 24 * 3600 * 1000;

interface Options {
  url: string;
  apiKey?: string;
  log?: (m: string) => void;
}

interface PerfWindow {
  windowStart: number;
  rows: number;
  performance?: {
    labelled: number;
    realized?: { accuracy: number };
    estimated?: { accuracy: number };
    offline?: { metric: string; gap: number; healthy: boolean };
    concept?: { labelShift: number; labelShiftAlert: boolean };
  };
}

async function call(o: Options, method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${o.url}${p}`, {
    method,
    headers: { ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}), ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p} → ${res.status}: ${text}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

async function windows(o: Options): Promise<PerfWindow[]> {
  await call(o, 'POST', '/api/v1/monitoring/flush', {});
  const res = (await call(o, 'GET', '/api/v1/models/bike-busy/versions/champion/monitoring/windows?limit=100')) as { windows: PerfWindow[] };
  return res.windows;
}

/** Runs the demo; returns the windows before and after the labels arrive. */
export async function runPerformanceDemo(o: Options) {
  const log = o.log ?? (() => undefined);
  const version = (await call(o, 'GET', '/api/v1/models/bike-busy/versions/champion')) as { metadata: { params?: { threshold?: number } } };
  const threshold = version.metadata.params?.threshold;
  if (threshold === undefined) throw new Error('bike-busy has no threshold in its params; was it trained by warden train?');

  // Reference: 2011 features plus the true count; busy = cnt > threshold.
  const raw = bikeRows(0, true);
  const csv = [[...FEATURES, 'cnt'].join(','), ...raw.map((r) => [...FEATURES.map((f) => r.values[f]), r.cnt].join(','))].join('\n');
  await call(o, 'PUT', '/api/v1/models/bike-busy/versions/champion/reference', csv, {
    'content-type': 'text/csv',
    'x-warden-filename': 'bike-sharing-2011.csv',
    'x-warden-monitoring': JSON.stringify({
      window: { kind: 'time', sizeMs: FOUR_WEEKS },
      performance: { task: 'binary', target: 'cnt', targetThreshold: threshold, segments: ['weathersit'] },
    }),
  });
  log(`registered the 2011 reference of bike-busy (busy = cnt > ${threshold})`);

  const rows = bikeRows(1, true);
  const byDay = new Map<number, typeof rows>();
  for (const r of rows) byDay.set(Math.floor(r.ts / 86_400_000), [...(byDay.get(Math.floor(r.ts / 86_400_000)) ?? []), r]);
  for (const day of byDay.values()) {
    await call(o, 'POST', '/v1/models/bike-busy:predict', {
      instances: day.map((r) => r.values),
      parameters: { event_time: day[0]!.ts, keys: day.map((r) => `hour-${r.ts}`) },
    });
  }
  log(`replayed ${rows.length} hours of 2012`);
  const before = await windows(o);

  // The truth arrives a day later, in bulk, keyed by the caller's keys.
  for (let i = 0; i < rows.length; i += 5000) {
    await call(o, 'POST', '/api/v1/labels', {
      labels: rows.slice(i, i + 5000).map((r) => ({ key: `hour-${r.ts}`, value: r.cnt! > threshold ? 1 : 0, ts: r.ts + 86_400_000 })),
    });
  }
  log('sent the 2012 labels');
  // Late labels are folded in by the monitoring loop; give it a few ticks.
  let after = await windows(o);
  for (let i = 0; i < 50 && after.some((w) => (w.performance?.labelled ?? 0) === 0 && w.rows > 0); i++) {
    await new Promise((r) => setTimeout(r, 200));
    after = await windows(o);
  }
  return { threshold, before, after };
}

const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '   –  ' : `${(100 * x).toFixed(1).padStart(5)}%`);

// Real paths on both sides: run through a symlinked folder, the script must still know it is the entry point.
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(import.meta.filename)) {
  const args = process.argv.slice(2);
  const url = args.includes('--url') ? args[args.indexOf('--url') + 1]! : (process.env.WARDEN_URL ?? 'http://127.0.0.1:8080');
  const { after } = await runPerformanceDemo({ url, ...(process.env.WARDEN_API_KEY ? { apiKey: process.env.WARDEN_API_KEY } : {}), log: (m) => console.error(m) });
  console.log('window       rows  labelled  estimated (CBPE)  realized  error   label shift');
  let sum = 0;
  let n = 0;
  for (const w of after) {
    const p = w.performance;
    const est = p?.estimated?.accuracy;
    const real = p?.realized?.accuracy;
    if (est !== undefined && real !== undefined) {
      sum += Math.abs(est - real);
      n++;
    }
    console.log(
      `${new Date(w.windowStart).toISOString().slice(0, 10)}  ${String(w.rows).padStart(4)}  ${String(p?.labelled ?? 0).padStart(8)}  ${pct(est).padStart(16)}  ${pct(real).padStart(8)}  ${est !== undefined && real !== undefined ? `${(100 * (est - real)).toFixed(1).padStart(5)}` : '   – '}   ${p?.concept ? `${p.concept.labelShift.toFixed(2)}${p.concept.labelShiftAlert ? ' ALERT' : ''}` : ''}`,
    );
  }
  console.log(`mean absolute estimation error: ${n ? (100 * (sum / n)).toFixed(1) : '–'} points over ${n} windows`);
}
