/**
 * The traffic series' aggregator and its SQLite buckets, on a fake clock and CPU counter: counts equal what was
 * recorded, quantiles stay within the documented bin ratio of the exact nearest-rank quantile, two writers add up,
 * minute and hour buckets agree, the CPU of an interval is split by request time, retention prunes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../src/storage/index.ts';
import { LATENCY_BIN_RATIO, MAX_ERROR_CODES, TrafficAggregator, histogramQuantile, latencyBin, trafficReport, LATENCY_MAX_MS, LATENCY_MIN_MS } from '../../src/telemetry/index.ts';
import { mulberry32 } from '../../src/random.ts';

const T0 = Date.parse('2026-03-01T00:00:00Z');
const DAY = 86_400_000;

/** Nearest-rank quantile of sorted values: what the bound is stated against. */
const nearestRank = (sorted: number[], q: number) => sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;

describe('traffic aggregator', () => {
  let dir: string;
  let store: SqliteEventStore;
  let clock: number;
  let cpuMs: number;
  const make = (events = store) =>
    new TrafficAggregator({ events, now: () => clock, cpuUsage: () => ({ user: cpuMs * 1000, system: 0 }) });

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-traffic-'));
    store = new SqliteEventStore(path.join(dir, 'events.db'));
    clock = T0;
    cpuMs = 0;
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts requests by outcome, rows, shadow copies and error codes (at most 32 codes, then other)', async () => {
    const agg = make();
    for (let i = 0; i < 50; i++) agg.request('m', 1, 'ok', 3, 2);
    for (let i = 0; i < 7; i++) agg.request('m', 1, 'client_error', 0, 1, 'WARDEN_BAD_REQUEST');
    for (let i = 0; i < 40; i++) agg.request('m', 1, 'server_error', 0, 1, `WARDEN_E${i}`);
    agg.request('m', 0, 'client_error', 0, 1, 'WARDEN_MODEL_NOT_FOUND');
    agg.shadow('m', 2, 12, 5);
    await agg.flush();
    const rows = await store.queryTraffic({ model: 'm', step: 'minute', since: T0, until: T0 + 60_000 });
    const r = trafficReport(rows, { deployment: 'm', since: T0, until: T0 + 60_000, step: 'minute' });
    expect(r.totals).toMatchObject({ requests: 98, ok: 50, clientErrors: 8, serverErrors: 40, shadow: 12, rows: 150 });
    expect(r.versions).toEqual([{ version: 0, requests: 1 }, { version: 1, requests: 97 }, { version: 2, requests: 0 }]);
    const v1 = rows.find((x) => x.version === 1)!;
    expect(Object.keys(v1.errors)).toHaveLength(MAX_ERROR_CODES);
    expect(v1.errors.WARDEN_BAD_REQUEST).toBe(7);
    expect(Object.values(v1.errors).reduce((a, b) => a + b, 0)).toBe(47);
    expect(r.totals.errors.find((e) => e.code === 'other')!.count).toBe(40 - (MAX_ERROR_CODES - 2));
    expect(r.totals.availability).toBeCloseTo(50 / 90);
    expect(r.totals.errorRate).toBeCloseTo(48 / 98);
    // Only version 2 in the answer when asked.
    const only2 = await store.queryTraffic({ model: 'm', step: 'minute', since: T0, until: T0 + 60_000, version: 2 });
    expect(only2.map((x) => [x.version, x.shadow, x.requests])).toEqual([[2, 12, 0]]);
  });

  it('quantiles lie within the bin ratio of the exact nearest-rank quantile, per bucket and over the range', async () => {
    const rand = mulberry32(7);
    const agg = make();
    const all: number[] = [];
    const perMinute: number[][] = [];
    for (let m = 0; m < 30; m++) {
      clock = T0 + m * 60_000 + 500;
      const mine: number[] = [];
      for (let i = 0; i < 700; i++) {
        // Log-uniform over 0.02 ms … 200 s, plus a dense mode around 3 ms: both ends and the open bins are hit.
        const ms = rand() < 0.5 ? Math.exp(Math.log(0.02) + rand() * (Math.log(200_000) - Math.log(0.02))) : 3 * Math.exp((rand() - 0.5) * 0.4);
        agg.request('m', 1, 'ok', 1, ms);
        mine.push(ms);
        all.push(ms);
      }
      perMinute.push(mine.sort((a, b) => a - b));
      if (m % 7 === 3) await agg.flush();
    }
    await agg.flush();
    all.sort((a, b) => a - b);
    const rows = await store.queryTraffic({ model: 'm', step: 'minute', since: T0, until: T0 + 30 * 60_000 });
    expect(rows).toHaveLength(30);
    const within = (est: number, exact: number) => {
      // The open-ended bins are bounded by the observed min/max instead of the ratio.
      if (exact < LATENCY_MIN_MS || exact >= LATENCY_MAX_MS) return true;
      return est / exact <= LATENCY_BIN_RATIO * (1 + 1e-9) && exact / est <= LATENCY_BIN_RATIO * (1 + 1e-9);
    };
    const report = trafficReport(rows, { deployment: 'm', since: T0, until: T0 + 30 * 60_000, step: 'minute' });
    for (const [q, key] of [[0.5, 'p50Ms'], [0.95, 'p95Ms'], [0.99, 'p99Ms']] as const) {
      expect(within(report.totals[key]!, nearestRank(all, q)), `${key} ${report.totals[key]} vs ${nearestRank(all, q)}`).toBe(true);
      for (const [i, p] of report.points.entries()) expect(within(p[key]!, nearestRank(perMinute[i]!, q)), `${key} minute ${i}`).toBe(true);
    }
    // Any quantile, from the merged histogram of the range.
    const merged = new Array<number>(66).fill(0);
    for (const r of rows) r.histogram.forEach((c, i) => (merged[i]! += c));
    for (let q = 0.01; q < 1; q += 0.01) expect(within(histogramQuantile(merged, q, all[0]!, all.at(-1)!)!, nearestRank(all, q)), `q=${q}`).toBe(true);
    expect(report.totals.meanMs).toBeCloseTo(all.reduce((a, b) => a + b, 0) / all.length, 2);
    expect(latencyBin(LATENCY_MIN_MS / 2)).toBe(0);
    expect(latencyBin(LATENCY_MAX_MS * 2)).toBe(65);
  });

  it('adds up what two writers (replicas) count in the same bucket', async () => {
    const other = new SqliteEventStore(path.join(dir, 'events.db'));
    const a = make();
    const b = make(other);
    for (let i = 0; i < 10; i++) a.request('m', 1, 'ok', 1, 1);
    for (let i = 0; i < 5; i++) b.request('m', 1, 'ok', 2, 100);
    b.request('m', 1, 'server_error', 0, 0.5, 'WARDEN_INTERNAL');
    await Promise.all([a.flush(), b.flush()]);
    a.request('m', 1, 'ok', 1, 1);
    await a.flush();
    const [row] = await store.queryTraffic({ model: 'm', step: 'minute', since: T0, until: T0 + 60_000 });
    expect(row).toMatchObject({ requests: 17, ok: 16, serverErrors: 1, rows: 21, minMs: 0.5, maxMs: 100, errors: { WARDEN_INTERNAL: 1 } });
    expect(row!.latencySumMs).toBeCloseTo(11 + 500 + 0.5);
    expect(row!.histogram.reduce((s, c) => s + c, 0)).toBe(17);
    expect(row!.histogram[latencyBin(100)]).toBe(5);
    const [hour] = await store.queryTraffic({ model: 'm', step: 'hour', since: T0, until: T0 + 3_600_000 });
    expect(hour!.requests).toBe(17);
    await other.close();
  });

  it('minute and hour buckets agree, across minute boundaries between flushes', async () => {
    const agg = make();
    const rand = mulberry32(3);
    for (let s = 0; s < 3 * 3600; s += 7) {
      clock = T0 + 1800_000 + s * 1000;
      const n = Math.floor(rand() * 3);
      for (let i = 0; i < n; i++) agg.request('m', 1 + (s % 2), rand() < 0.9 ? 'ok' : 'server_error', 1, rand() * 20, 'WARDEN_INTERNAL');
      if (s % 101 === 0) await agg.flush();
    }
    await agg.flush();
    const range = { model: 'm', since: T0, until: T0 + 5 * 3_600_000 };
    const minutes = await store.queryTraffic({ ...range, step: 'minute' });
    const hours = await store.queryTraffic({ ...range, step: 'hour' });
    expect(hours.length).toBeGreaterThanOrEqual(6);
    for (const h of hours) {
      const mine = minutes.filter((m) => m.version === h.version && m.ts >= h.ts && m.ts < h.ts + 3_600_000);
      const sum = (k: 'requests' | 'ok' | 'serverErrors' | 'rows') => mine.reduce((s, m) => s + m[k], 0);
      expect({ requests: h.requests, ok: h.ok, serverErrors: h.serverErrors, rows: h.rows }).toEqual({ requests: sum('requests'), ok: sum('ok'), serverErrors: sum('serverErrors'), rows: sum('rows') });
      expect(h.latencySumMs).toBeCloseTo(mine.reduce((s, m) => s + m.latencySumMs, 0), 6);
      const hist = new Array<number>(66).fill(0);
      for (const m of mine) m.histogram.forEach((c, i) => (hist[i]! += c));
      expect([...h.histogram, ...new Array(66 - h.histogram.length).fill(0)]).toEqual(hist);
    }
    // The report's totals are the same at either step.
    const byMinute = trafficReport(minutes, { deployment: 'm', ...range, step: 'minute' }).totals;
    const byHour = trafficReport(hours, { deployment: 'm', ...range, step: 'hour' }).totals;
    expect(byHour).toEqual(byMinute);
  });

  it('splits the CPU time of each flush interval by request time', async () => {
    const agg = make();
    cpuMs = 1000;
    agg.start();
    cpuMs = 1500;
    agg.request('a', 1, 'ok', 1, 30);
    agg.request('b', 1, 'ok', 1, 10);
    await agg.close();
    const [a] = await store.queryTraffic({ model: 'a', step: 'minute', since: T0, until: T0 + 60_000 });
    const [b] = await store.queryTraffic({ model: 'b', step: 'minute', since: T0, until: T0 + 60_000 });
    expect(a!.cpuMs).toBeCloseTo(375);
    expect(b!.cpuMs).toBeCloseTo(125);
    const r = trafficReport([a!], { deployment: 'a', since: T0, until: T0 + 60_000, step: 'minute', costPerCpuHour: 3.6 });
    expect(r.totals.cpuMsPer1k).toBeCloseTo(375_000);
    expect(r.totals.costPer1k).toBeCloseTo((375_000 / 3_600_000) * 3.6);
  });

  it('prunes minute buckets after their retention and hour buckets after theirs', async () => {
    const agg = new TrafficAggregator({ events: store, now: () => clock, minuteRetentionDays: 14, hourRetentionDays: 400 });
    for (const ageDays of [500, 100, 15, 13, 0]) {
      clock = T0 - ageDays * DAY;
      agg.request('m', 1, 'ok', 1, 1);
      await agg.flush();
    }
    clock = T0 + 1;
    await agg.prune();
    const minutes = await store.queryTraffic({ model: 'm', step: 'minute', since: 0, until: T0 + DAY });
    const hours = await store.queryTraffic({ model: 'm', step: 'hour', since: 0, until: T0 + DAY });
    expect(minutes.map((m) => Math.round((T0 - m.ts) / DAY))).toEqual([13, 0]);
    expect(hours.map((m) => Math.round((T0 - m.ts) / DAY))).toEqual([100, 15, 13, 0]);
    expect(await agg.prune()).toBe(0);
  });

  it('prunes from its timer, not only when asked', async () => {
    await store.addTraffic([{ model: 'm', version: 1, step: 'minute', ts: T0 - 20 * DAY, requests: 1, ok: 1, clientErrors: 0, serverErrors: 0, shadow: 0, rows: 1, latencySumMs: 1, minMs: 1, maxMs: 1, cpuMs: 0, histogram: [1], errors: {} }]);
    const agg = new TrafficAggregator({ events: store, now: () => clock, flushIntervalMs: 20 });
    agg.start();
    await new Promise((r) => setTimeout(r, 200));
    await agg.close();
    expect(await store.queryTraffic({ model: 'm', step: 'minute', since: 0, until: T0 })).toEqual([]);
  });

  it('keeps counting when the store refuses a write, and writes them at the next flush', async () => {
    let fail = true;
    const flaky = new Proxy(store, {
      get(t, p, r) {
        if (p === 'addTraffic' && fail) return async () => { throw new Error('disk full'); };
        return Reflect.get(t, p, r) as unknown;
      },
    });
    const agg = make(flaky);
    agg.request('m', 1, 'ok', 1, 1);
    await agg.flush();
    fail = false;
    agg.request('m', 1, 'ok', 1, 1);
    await agg.flush();
    const [row] = await store.queryTraffic({ model: 'm', step: 'minute', since: T0, until: T0 + 60_000 });
    expect(row!.requests).toBe(2);
  });
});
