/**
 * The cost meter on a real SQLite store with an injected price, load (traffic buckets as replicas write them) and
 * clock: spend by day and month, cost per 1,000, budgets at 50 / 80 / 100 % with the cap each period decides,
 * replica-hour sharing, and the anomaly against the deployment's own hours — each checked against arithmetic done
 * here by hand.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { anomaly, CostMeter, checkBudget, priceHours, type CostSettings } from '../../src/cost/index.ts';
import { parseConfig } from '../../src/config.ts';
import { openStores, type Stores, type TrafficBucketRecord } from '../../src/storage/index.ts';

const H = 3_600_000;
// 2026-03-31 10:30 UTC: the month's last day, so the next day is also the next month.
const NOW = Date.UTC(2026, 2, 31, 10, 30);
const HOUR = Math.floor(NOW / H) * H;

const bucket = (model: string, ts: number, cpuMs: number, ok = 10, version = 1): TrafficBucketRecord => ({
  model, version, step: 'hour', ts, requests: ok, ok, clientErrors: 0, serverErrors: 0, shadow: 0, rows: ok,
  latencySumMs: ok, minMs: 1, maxMs: 1, cpuMs, histogram: [], errors: {},
});

const settings = (over: Partial<CostSettings> = {}): CostSettings => ({
  model: 'cpu', pricePerCpuHour: 3600, replicas: 1, currency: 'EUR', refreshMs: 1000,
  anomaly: { factor: 3, baselineHours: 24, minBaselineHours: 6, minSpend: 0 }, deployments: {}, ...over,
});

describe('cost meter', () => {
  let dir: string;
  let stores: Stores;
  let now = NOW;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-cost-'));
    stores = openStores(dir);
    now = NOW;
  });
  afterEach(async () => {
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const meter = (s: CostSettings) => new CostMeter({ events: stores.events, metadata: stores.metadata, settings: s, now: () => now, versionExists: (_d, v) => v === 1 });

  it('prices CPU time by the hour: spend today, this month and per 1,000 inferences', async () => {
    // At 3600 per CPU-hour, 1 ms of CPU costs 0.001.
    await stores.events.addTraffic([
      bucket('bike', HOUR, 500, 100),
      bucket('bike', HOUR - H, 250, 50, 2),
      bucket('bike', Date.UTC(2026, 2, 2), 4000, 1000), // earlier this month, outside the last 24 h
      bucket('bike', Date.UTC(2026, 1, 27), 9000, 9000), // last month
      bucket('taxi', HOUR, 100, 1000),
    ]);
    const r = await meter(settings()).refresh();
    expect(r.currency).toBe('EUR');
    const bike = r.deployments.find((d) => d.deployment === 'bike')!;
    expect(bike.spend.today).toBeCloseTo(0.75, 12);
    expect(bike.spend.month).toBeCloseTo(4.75, 12);
    expect(bike.spend.currentHour).toBeCloseTo(0.5, 12);
    expect(bike.inferences).toEqual({ today: 150, month: 1150, last24h: 150 });
    expect(bike.costPer1k).toBeCloseTo((0.75 / 150) * 1000, 12);
    expect(bike.costPerInference).toBeCloseTo(0.005, 12);
    expect(bike.versions.map((v) => [v.version, +v.today.toFixed(6), v.costPer1k === null ? null : +v.costPer1k.toFixed(6)])).toEqual([[1, 0.5, 5], [2, 0.25, 5]]);
    expect(r.deployments.find((d) => d.deployment === 'taxi')!.costPer1k).toBeCloseTo(0.1, 12);
    expect(bike.budget).toBeNull();
    expect(bike.capped).toBeNull();
  });

  it('alerts at the highest of 50, 80 and 100 % crossed, and a throttle cap holds until the period starts again', async () => {
    const m = meter(settings({ deployments: { bike: { daily: 1, cap: 'throttle' } } }));
    const firing = async () => (await m.alertSource().evaluate(now)).filter((a) => a.alertname === 'WardenCostBudget').map((a) => [a.labels.period, a.labels.threshold, a.severity]);
    await stores.events.addTraffic([bucket('bike', HOUR, 400)]);
    expect(await firing()).toEqual([]);
    await stores.events.addTraffic([bucket('bike', HOUR, 100)]);
    expect(await firing()).toEqual([['day', '50', 'ticket']]);
    expect(m.capOf('bike')).toBeUndefined();
    await stores.events.addTraffic([bucket('bike', HOUR, 300)]);
    expect(await firing()).toEqual([['day', '80', 'ticket']]);
    await stores.events.addTraffic([bucket('bike', HOUR, 200)]);
    const alerts = await m.alertSource().evaluate(now);
    expect(alerts.map((a) => [a.labels.threshold, a.severity, a.runbookUrl])).toEqual([['100', 'page', 'docs/runbooks/cost-runaway.md']]);
    expect(alerts[0]!.description).toContain('throttles it');
    expect(m.capOf('bike')).toEqual({ action: 'throttle', period: 'day', until: Date.UTC(2026, 3, 1) });
    expect(m.capOf('taxi')).toBeUndefined();
    // The next UTC day (here also the next month): nothing spent yet, the cap lifts.
    now = Date.UTC(2026, 3, 1, 0, 5);
    await m.refresh();
    expect(m.capOf('bike')).toBeUndefined();
  });

  it('a monthly budget outranks the daily one; a route cap names its version, and throttles when the version is gone', async () => {
    await stores.events.addTraffic([bucket('bike', Date.UTC(2026, 2, 3), 2000), bucket('aqua', HOUR, 2000)]);
    const m = meter(settings({ deployments: { bike: { daily: 100, monthly: 2, cap: 'route', capVersion: 1 }, aqua: { monthly: 1, cap: 'route', capVersion: 7 } } }));
    const r = await m.refresh();
    expect(m.capOf('bike')).toEqual({ action: 'route', version: 1, period: 'month', until: Date.UTC(2026, 3, 1) });
    expect(r.deployments.find((d) => d.deployment === 'bike')!.used).toEqual({ day: 0, month: 1 });
    expect(m.capOf('aqua')?.action).toBe('throttle');
    expect(r.deployments.find((d) => d.deployment === 'aqua')!.problem).toContain('cap version 7 of aqua does not exist');
  });

  it('a budget set by the API replaces the config file\'s for its deployment', async () => {
    await stores.events.addTraffic([bucket('bike', HOUR, 600)]);
    const m = meter(settings({ deployments: { bike: { daily: 100, cap: 'none' } } }));
    expect((await m.refresh()).deployments[0]!.used.day).toBeCloseTo(0.006, 12);
    await stores.metadata.saveCostBudget({ deployment: 'bike', daily: 0.5, cap: 'throttle', updatedAt: 1, updatedBy: 'ana' });
    const d = (await m.refresh()).deployments[0]!;
    expect(d.budget).toMatchObject({ daily: 0.5, cap: 'throttle', source: 'api', updatedBy: 'ana' });
    expect(d.used.day).toBeCloseTo(1.2, 12);
    expect(m.capOf('bike')?.action).toBe('throttle');
  });

  it('shares replica-hours by each hour\'s CPU time; an hour without traffic is idle', async () => {
    // Two replicas at 2 per replica-hour: each complete hour costs 4; the current one 2 so far (half past).
    await stores.events.addTraffic([bucket('a', HOUR - H, 300), bucket('b', HOUR - H, 100), bucket('a', HOUR, 50)]);
    const r = await meter(settings({ model: 'replica', pricePerReplicaHour: 2, replicas: 2 })).refresh();
    const a = r.deployments.find((d) => d.deployment === 'a')!;
    const b = r.deployments.find((d) => d.deployment === 'b')!;
    expect(a.spend.today).toBeCloseTo(3 + 2, 12);
    expect(b.spend.today).toBeCloseTo(1, 12);
    // 10.5 hours of the day at 4 an hour, less the 6 attributed.
    expect(r.idle!.today).toBeCloseTo(10.5 * 4 - 6, 9);
    expect(r.model).toEqual({ kind: 'replica', pricePerReplicaHour: 2, replicas: 2 });
  });

  it('an hour costing 3× the deployment\'s mean hour is an anomaly; a young deployment has no baseline', async () => {
    const hours = Array.from({ length: 24 }, (_, i) => bucket('bike', HOUR - (i + 1) * H, 100 + (i % 2) * 20));
    await stores.events.addTraffic([...hours, bucket('bike', HOUR, 200), bucket('new', HOUR - H, 10), bucket('new', HOUR, 1000)]);
    const m = meter(settings());
    let alerts = (await m.alertSource().evaluate(now)).filter((a) => a.alertname === 'WardenCostAnomaly');
    expect(alerts).toEqual([]);
    const r = await m.report();
    expect(r.deployments.find((d) => d.deployment === 'bike')!.anomaly.baseline).toBeCloseTo(0.11, 12);
    expect(r.deployments.find((d) => d.deployment === 'new')!.anomaly).toMatchObject({ active: false, baseline: null });
    await stores.events.addTraffic([bucket('bike', HOUR, 150)]);
    alerts = (await m.alertSource().evaluate(now)).filter((a) => a.alertname === 'WardenCostAnomaly');
    expect(alerts.map((a) => [a.labels.deployment, a.severity])).toEqual([['bike', 'ticket']]);
    expect(alerts[0]!.value).toBeCloseTo(0.35, 12);
    expect(alerts[0]!.description).toContain('over the 24 hours before');
  });

  it('judges against a brute-force mean over random histories', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let t = 0; t < 200; t++) {
      const spend = new Map<number, number>();
      const start = 1 + Math.floor(rand() * 30);
      for (let i = start; i >= 1; i--) if (rand() < 0.8) spend.set(HOUR - i * H, rand());
      spend.set(HOUR, rand() * 3);
      const s = { factor: 2, baselineHours: 24, minBaselineHours: 3, minSpend: 0 };
      const v = anomaly(spend, NOW, s);
      // Brute force for the current hour: mean over the hours from the first with spend in the 24 before.
      const window = Array.from({ length: 24 }, (_, k) => spend.get(HOUR - (24 - k) * H) ?? 0);
      const first = window.findIndex((x) => x > 0);
      const n = first < 0 ? 0 : 24 - first;
      const mean = n > 0 ? window.slice(first).reduce((a, b) => a + b, 0) / n : 0;
      const current = n >= 3 && spend.get(HOUR)! >= 2 * mean;
      if (current) expect(v).toMatchObject({ active: true, hour: HOUR });
      if (v.active && v.hour === HOUR) {
        expect(current).toBe(true);
        expect(v.baseline).toBeCloseTo(mean, 12);
      }
    }
  });

  it('replica pricing splits by requests where no CPU time was measured', () => {
    const rows = [
      { model: 'a', version: 1, ts: HOUR - H, requests: 3, ok: 3, shadow: 0, cpuMs: 0 },
      { model: 'b', version: 1, ts: HOUR - H, requests: 1, ok: 1, shadow: 0, cpuMs: 0 },
    ];
    const priced = priceHours(rows, { kind: 'replica', pricePerReplicaHour: 8, replicas: 1 }, NOW);
    expect(priced.map((p) => p.amount)).toEqual([6, 2]);
  });

  it('refuses a budget below zero, a cap without its version and unknown fields, with what to send', () => {
    expect(() => checkBudget({ daily: -1 })).toThrow('"daily" must be above 0, not -1');
    expect(() => checkBudget({ monthly: 'ten' })).toThrow('"monthly" must be a number');
    expect(() => checkBudget({})).toThrow('give "daily", "monthly" or both');
    expect(() => checkBudget({ daily: 1, cap: 'route' })).toThrow('needs "capVersion"');
    expect(() => checkBudget({ daily: 1, cap: 'stop' })).toThrow('"cap" must be');
    expect(() => checkBudget({ daily: 1, limit: 3 })).toThrow('unknown field "limit"');
    expect(checkBudget({ monthly: 30, cap: 'route', capVersion: 2 })).toEqual({ monthly: 30, cap: 'route', capVersion: 2 });
    expect(() => parseConfig({ cost: { pricePerCpuHour: 1, deployments: { bike: { daily: -5 } } } })).toThrow(/daily must be above 0/);
    expect(() => parseConfig({ cost: { pricePerCpuHour: 1, deployments: { bike: { daily: 5, cap: 'route' } } } })).toThrow(/capVersion/);
  });
});
