/**
 * Data built to leak if a point-in-time join were wrong, and an independent brute-force join to check against.
 *
 * Each source value encodes its own row (`key|event|created`), so any wrong pick shows which row leaked. The data has
 * values that change over time, late backfills created hours after their event time (and after the entity times
 * that would see them if created time were ignored), rows exactly at and just inside the TTL bound, equal event
 * times with different created times (the newer one created after some entity times), exact duplicates in both times
 * (the later row wins) and entity times equal to event times.
 */
import { writeFileSync } from 'node:fs';
import { mulberry32 } from '../../src/random.ts';

export const H = 3_600_000;
export const T0 = Date.UTC(2024, 0, 1);

export interface SourceRow {
  keys: string[];
  event: number;
  created: number;
  /** By feature name; null = empty cell. */
  values: Record<string, number | string | boolean | null>;
}

export interface EntityRow {
  keys: Record<string, string>;
  t: number;
  label: string;
}

export interface TestView {
  name: string;
  joinKeys: string[];
  ttlMs: number;
  /** Whether the source has a created-time column (else created = event). */
  created: boolean;
  features: { name: string; dtype: 'float' | 'int' | 'string' | 'bool' }[];
  rows: SourceRow[];
}

/** The brute-force rule: every row of the key, filtered by the three conditions, the greatest (event, created, position). */
export function bruteForce(view: TestView, keys: Record<string, string>, t: number): SourceRow | undefined {
  let best: SourceRow | undefined;
  let bestAt = -1;
  view.rows.forEach((r, at) => {
    if (view.joinKeys.some((k, i) => keys[k] !== r.keys[i] || keys[k] === undefined || keys[k] === '')) return;
    if (r.event > t || r.created > t) return;
    if (view.ttlMs > 0 && !(r.event > t - view.ttlMs)) return;
    if (!best || r.event > best.event || (r.event === best.event && (r.created > best.created || (r.created === best.created && at > bestAt)))) {
      best = r;
      bestAt = at;
    }
  });
  return best;
}

/** Views and entity rows of a random but seeded world; `n` entity rows. */
export function leakyWorld(seed: number, n: number): { views: TestView[]; entities: EntityRow[] } {
  const rnd = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const stations = Array.from({ length: 12 }, (_, i) => `s${i}`);
  const riders = ['r1', 'r2', 'r3', 'r,4', 'r"5'];
  const tag = (keys: string[], event: number, created: number) => `${keys.join('+')}|${(event - T0) / H}|${(created - T0) / H}`;

  const hourly: TestView = {
    name: 'hourly',
    joinKeys: ['station_id'],
    ttlMs: 6 * H,
    created: true,
    features: [
      { name: 'cnt', dtype: 'int' },
      { name: 'origin', dtype: 'string' },
      { name: 'busy', dtype: 'bool' },
    ],
    rows: [],
  };
  for (const s of stations) {
    for (let h = 0; h < 72; h += int(1, 4)) {
      const event = T0 + h * H;
      // Most rows are known at once; some are late backfills, created 1-30 hours after their event time.
      const created = rnd() < 0.25 ? event + int(1, 30) * H : event;
      hourly.rows.push({ keys: [s], event, created, values: { cnt: h * 100 + int(0, 99), origin: tag([s], event, created), busy: rnd() < 0.5 } });
      // Equal event time, another created time (sometimes later than some entity times).
      if (rnd() < 0.2) {
        const c2 = created + int(0, 3) * H;
        hourly.rows.push({ keys: [s], event, created: c2, values: { cnt: -h, origin: `${tag([s], event, c2)}#2`, busy: null } });
      }
    }
  }
  // A duplicate in both times: the later row is the one joined.
  const d = hourly.rows[3]!;
  hourly.rows.push({ ...d, values: { ...d.values, origin: `${String(d.values.origin)}#dup` } });

  // No created-time column; TTL 0 (never expires).
  const daily: TestView = {
    name: 'daily',
    joinKeys: ['station_id'],
    ttlMs: 0,
    created: false,
    features: [{ name: 'temp', dtype: 'float' }],
    rows: [],
  };
  for (const s of stations.slice(0, 9)) for (let day = 0; day < 3; day++) daily.rows.push({ keys: [s], event: T0 + day * 24 * H, created: T0 + day * 24 * H, values: { temp: day + Number(s.slice(1)) / 100 } });

  // Two entities: a composite key; rows exactly at the TTL bound.
  const trips: TestView = {
    name: 'trips',
    joinKeys: ['station_id', 'rider_id'],
    ttlMs: 3 * H,
    created: true,
    features: [
      { name: 'trips', dtype: 'int' },
      { name: 'trip_tag', dtype: 'string' },
    ],
    rows: [],
  };
  for (let i = 0; i < 300; i++) {
    const keys = [stations[int(0, 5)]!, riders[int(0, riders.length - 1)]!];
    const event = T0 + int(0, 71) * H + (rnd() < 0.3 ? int(0, 59) * 60_000 : 0);
    const created = rnd() < 0.2 ? event + int(1, 5) * H : event;
    trips.rows.push({ keys, event, created, values: { trips: i, trip_tag: tag(keys, event, created) } });
  }

  // No entities: one global series.
  const weather: TestView = {
    name: 'weather',
    joinKeys: [],
    ttlMs: 2 * H,
    created: false,
    features: [{ name: 'rain', dtype: 'float' }],
    rows: Array.from({ length: 40 }, (_, i) => ({ keys: [], event: T0 + i * 2 * H, created: T0 + i * 2 * H, values: { rain: rnd() < 0.2 ? null : i / 10 } })),
  };

  const views = [hourly, daily, trips, weather];
  const entities: EntityRow[] = [];
  for (let i = 0; i < n; i++) {
    // Entity times on the hour (equal to event times), a minute off, and exactly at TTL bounds of existing rows.
    const pick = rnd();
    let t: number;
    if (pick < 0.3) t = T0 + int(0, 80) * H;
    else if (pick < 0.5) {
      const r = hourly.rows[int(0, hourly.rows.length - 1)]!;
      t = r.event + hourly.ttlMs + (rnd() < 0.5 ? 0 : -1);
    } else if (pick < 0.6) {
      const r = hourly.rows[int(0, hourly.rows.length - 1)]!;
      t = r.created + (rnd() < 0.5 ? 0 : -1);
    } else t = T0 + int(0, 80 * 60) * 60_000;
    const station = rnd() < 0.03 ? '' : (stations[int(0, stations.length - 1)] ?? 's0');
    entities.push({ keys: { station_id: station, rider_id: riders[int(0, riders.length - 1)]! }, t, label: `row${i}` });
  }
  return { views, entities };
}

const cell = (v: unknown) => {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};

/** Writes a view's rows as a CSV source (times as ISO-8601 or epoch ms, alternating), with a column no view reads unless `extraColumn` is false. */
export function writeSourceCsv(file: string, view: TestView, extraColumn = true): void {
  const header = [...view.joinKeys, 'event_ts', ...(view.created ? ['created_ts'] : []), ...view.features.map((f) => f.name), ...(extraColumn ? ['ignored'] : [])];
  const lines = [header.join(',')];
  view.rows.forEach((r, i) => {
    const time = (ms: number) => (i % 2 ? new Date(ms).toISOString() : String(ms));
    lines.push([...r.keys.map(cell), time(r.event), ...(view.created ? [time(r.created)] : []), ...view.features.map((f) => cell(r.values[f.name])), ...(extraColumn ? ['x'] : [])].join(','));
  });
  writeFileSync(file, `${lines.join('\r\n')}\r\n`);
}

export function writeEntitiesCsv(file: string, entities: readonly EntityRow[]): void {
  const lines = ['station_id,rider_id,ts,label'];
  for (const e of entities) lines.push([cell(e.keys.station_id), cell(e.keys.rider_id), new Date(e.t).toISOString(), e.label].join(','));
  writeFileSync(file, `${lines.join('\n')}\n`);
}
