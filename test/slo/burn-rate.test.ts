/**
 * Error budgets, burn rates and the multi-window, multi-burn-rate decisions (Google SRE Workbook ch. 5, table
 * 5-8) as pure functions of synthetic series and an injected `now`. Every expected value is worked out by hand
 * in the comment next to it.
 */
import { describe, expect, it } from 'vitest';
import {
  bucketMs,
  burnRate,
  burnWindows,
  errorBudget,
  multiWindowAlerts,
  scaledPeriodMs,
  windowCounts,
  type SliPoint,
} from '../../src/slo/index.ts';

const M = 60_000;
const H = 60 * M;
const D = 24 * H;
/** A minute boundary, so buckets line up with windows. */
const T0 = 28_333_333 * M;

/** `n` buckets of `step` ms ending just before `end`: bucket i (oldest first) has `total` events and `bad(i)` bad ones. */
function series(end: number, n: number, total: number, bad: (i: number) => number, step = M): SliPoint[] {
  return Array.from({ length: n }, (_, i) => ({ ts: end - (n - i) * step, good: total - bad(i), total }));
}

const names = (alerts: { name: string; firing: boolean }[]) => alerts.filter((a) => a.firing).map((a) => a.name);

describe('windowCounts and burnRate', () => {
  const now = T0 + H;
  // 60 one-minute buckets of 1000 events; the last 5 have 20 bad events each (2%).
  const s = series(now, 60, 1000, (i) => (i >= 55 ? 20 : 0));

  it('sums the buckets that start in [now − window, now)', () => {
    expect(windowCounts(s, 5 * M, now)).toEqual({ good: 4900, total: 5000 });
    // The bucket starting exactly at now − 5m is in; one starting at now is out.
    const edge = [...s, { ts: now, good: 0, total: 1000 }];
    expect(windowCounts(edge, 5 * M, now)).toEqual({ good: 4900, total: 5000 });
    // A bucket counts whole or not at all: by its start.
    expect(windowCounts(s, 6 * M - 1, now).total).toBe(5000);
    expect(windowCounts(s, 6 * M, now).total).toBe(6000);
    expect(windowCounts(s, 5 * M - 1, now).total).toBe(4000);
    expect(windowCounts([], H, now)).toEqual({ good: 0, total: 0 });
  });

  it('is the error rate over the window divided by the error rate the objective allows', () => {
    // 5m: 100 bad / 5000 = 2% error rate; the 99.9% objective allows 0.1% → burn rate 20.
    expect(burnRate(s, 5 * M, now, 0.999)).toBeCloseTo(20, 9);
    // 1h: 100 / 60000 = 0.1667% → 1.6667.
    expect(burnRate(s, H, now, 0.999)).toBeCloseTo(100 / 60000 / 0.001, 9);
    // A 99% objective allows 1%: the same 2% burns at 2.
    expect(burnRate(s, 5 * M, now, 0.99)).toBeCloseTo(2, 9);
    // Before the bad minutes: nothing burns.
    expect(burnRate(s, 5 * M, now - 5 * M, 0.999)).toBe(0);
  });

  it('burns nothing over a window without events (no traffic is not an outage)', () => {
    expect(burnRate(s, 5 * M, now + 2 * H, 0.999)).toBe(0);
    expect(burnRate([], H, now, 0.999)).toBe(0);
  });
});

describe('errorBudget', () => {
  const slo = { objective: 0.999, period: '30d' };

  it('accounts the budget over the rolling period', () => {
    const now = T0 + H;
    const s = series(now, 60, 1000, (i) => (i >= 55 ? 20 : 0));
    const b = errorBudget(slo, s, now);
    // 60,000 events, 100 bad: SLI 59,900 / 60,000 = 99.8333%; the budget allows 0.1% of 60,000 = 60 bad events,
    // so 100 / 60 = 166.7% of it is spent and −66.7% remains.
    expect(b.total).toBe(60_000);
    expect(b.good).toBe(59_900);
    expect(b.bad).toBe(100);
    expect(b.sli).toBeCloseTo(59_900 / 60_000, 12);
    expect(b.budget).toBeCloseTo(0.001, 12);
    expect(b.allowedBad).toBeCloseTo(60, 9);
    expect(b.consumed).toBeCloseTo(100 / 60, 9);
    expect(b.remaining).toBeCloseTo(1 - 100 / 60, 9);
  });

  it('counts only the period: older buckets fall out', () => {
    // One bucket 31 days ago with 1000 bad events, then 1000 good events a day ago.
    const now = T0 + 40 * D;
    const s: SliPoint[] = [
      { ts: now - 31 * D, good: 0, total: 1000 },
      { ts: now - D, good: 999, total: 1000 },
    ];
    const b = errorBudget(slo, s, now);
    // Only the last bucket: 1 bad of 1000 allowed 1 → exactly spent.
    expect(b.total).toBe(1000);
    expect(b.consumed).toBeCloseTo(1, 9);
    expect(b.remaining).toBeCloseTo(0, 9);
    // A 7-day period sees the same; a 90-day one sees both: 1001 bad of 2 allowed.
    expect(errorBudget({ objective: 0.999, period: '90d' }, s, now).consumed).toBeCloseTo(1001 / 2, 6);
  });

  it('has the whole budget left with no events', () => {
    expect(errorBudget(slo, [], T0)).toEqual({ sli: 1, good: 0, total: 0, bad: 0, budget: 1 - 0.999, allowedBad: 0, consumed: 0, remaining: 1 });
  });
});

describe('burnWindows', () => {
  it("is the workbook's table for a 30-day SLO", () => {
    expect(burnWindows(30 * D)).toEqual([
      { name: '1h/5m', severity: 'page', factor: 14.4, longMs: H, shortMs: 5 * M },
      { name: '6h/30m', severity: 'page', factor: 6, longMs: 6 * H, shortMs: 30 * M },
      { name: '1d/2h', severity: 'ticket', factor: 3, longMs: D, shortMs: 2 * H },
      { name: '3d/6h', severity: 'ticket', factor: 1, longMs: 3 * D, shortMs: 6 * H },
    ]);
  });

  it('scales the windows with the period, keeping the factors (each row still burns the same share of budget)', () => {
    // 7d / 30d = 7/30: 1h → 14 min, 5m → 70 s, 3d → 16.8 h.
    const w = burnWindows(7 * D);
    expect(w.map((x) => [x.longMs, x.shortMs])).toEqual([
      [14 * M, 70_000],
      [84 * M, 7 * M],
      [5.6 * H, 28 * M],
      [16.8 * H, 84 * M],
    ]);
    expect(w.map((x) => x.factor)).toEqual([14.4, 6, 3, 1]);
    // 14.4 × 14 min / 7 days = 2% of the budget, as 14.4 × 1h / 30 days.
    expect((14.4 * 14 * M) / (7 * D)).toBeCloseTo((14.4 * H) / (30 * D), 12);
  });

  it('scales every duration by timeScale (0.001: a 30-day SLO in 43.2 minutes)', () => {
    const w = burnWindows(30 * D, { timeScale: 0.001 });
    expect(w.map((x) => [x.longMs, x.shortMs])).toEqual([
      [3600, 300],
      [21_600, 1800],
      [86_400, 7200],
      [259_200, 21_600],
    ]);
    expect(scaledPeriodMs({ period: '30d' }, { timeScale: 0.001 })).toBe(2_592_000);
    expect(bucketMs({ timeScale: 0.001 })).toBe(60);
    expect(bucketMs()).toBe(M);
    // Buckets never go below 10 ms.
    expect(bucketMs({ timeScale: 0.0001 })).toBe(10);
  });
});

describe('multiWindowAlerts', () => {
  const slo = { objective: 0.999, period: '30d' };
  const now = T0 + 3 * D;

  it('pages on a fast burn over 1h and 5m only', () => {
    // 100 events a minute for 3 days; the last 10 minutes 20% bad (20 a minute, 200 bad in all).
    const s = series(now, 3 * 1440, 100, (i) => (i >= 3 * 1440 - 10 ? 20 : 0));
    const a = multiWindowAlerts(slo, s, now);
    const by = Object.fromEntries(a.map((x) => [x.name, x]));
    // 5m: 100 / 500 = 20% → 200; 1h: 200 / 6000 = 3.33% → 33.3 > 14.4: page.
    expect(by['1h/5m']!.shortBurnRate).toBeCloseTo(200, 6);
    expect(by['1h/5m']!.longBurnRate).toBeCloseTo(33.333, 2);
    expect(by['1h/5m']!.longTotal).toBe(6000);
    // 6h: 200 / 36000 = 0.556% → 5.56 < 6, although 30m burns at 200 / 3000 → 66.7: no page.
    expect(by['6h/30m']!.longBurnRate).toBeCloseTo(5.556, 2);
    expect(by['6h/30m']!.shortBurnRate).toBeCloseTo(66.667, 2);
    // 1d: 200 / 144000 → 1.39 < 3; 3d: 200 / 432000 → 0.46 < 1: no tickets.
    expect(by['1d/2h']!.longBurnRate).toBeCloseTo(1.389, 2);
    expect(by['3d/6h']!.longBurnRate).toBeCloseTo(0.463, 2);
    expect(names(a)).toEqual(['1h/5m']);
    expect(a.map((x) => x.severity)).toEqual(['page', 'page', 'ticket', 'ticket']);
  });

  it('opens only the slow ticket on a steady burn at 2× (budget gone in 15 of 30 days)', () => {
    // 1000 events a minute, 2 bad: 0.2% → burn 2 over every window: above 1 (3d/6h), below 3, 6 and 14.4.
    const s = series(now, 3 * 1440, 1000, () => 2);
    const a = multiWindowAlerts(slo, s, now);
    for (const x of a) {
      expect(x.longBurnRate).toBeCloseTo(2, 9);
      expect(x.shortBurnRate).toBeCloseTo(2, 9);
    }
    expect(names(a)).toEqual(['3d/6h']);
  });

  it('stops the fast page soon after the burn stops: the short window resets first', () => {
    // 20% bad for the 50 minutes from now − 60m to now − 10m (20 of 100 each), then clean again.
    const s = series(now, 3 * 1440, 100, (i) => (i >= 3 * 1440 - 60 && i < 3 * 1440 - 10 ? 20 : 0));
    const by = Object.fromEntries(multiWindowAlerts(slo, s, now).map((x) => [x.name, x]));
    // 1h: 1000 bad / 6000 → 166.7, far above 14.4, but 5m: 0 → the page has stopped.
    expect(by['1h/5m']!.longBurnRate).toBeCloseTo(166.667, 2);
    expect(by['1h/5m']!.shortBurnRate).toBe(0);
    expect(by['1h/5m']!.firing).toBe(false);
    // 6h: 1000 / 36000 → 27.8 > 6 and 30m: 400 / 3000 → 133 > 6: the slower page still fires.
    expect(by['6h/30m']!.firing).toBe(true);
    // 1d: 1000 / 144000 → 6.94 > 3, 2h: 1000 / 12000 → 83 > 3; 3d: 1000 / 432000 → 2.31 > 1, 6h as above: tickets too.
    expect(by['1d/2h']!.firing).toBe(true);
    expect(by['3d/6h']!.firing).toBe(true);
  });

  it('needs both windows strictly above the factor', () => {
    // Objective 0.5 allows an error rate of exactly 0.5 (no rounding); half the events bad burns at exactly 1.
    const half = { objective: 0.5, period: '30d' };
    const s = series(now, 3 * 1440, 2, () => 1);
    const a = multiWindowAlerts(half, s, now);
    expect(a.find((x) => x.name === '3d/6h')!.longBurnRate).toBe(1);
    expect(names(a)).toEqual([]);
    // One more bad event in the last minute tips both 3d/6h windows over 1.
    const tipped = [...s.slice(0, -1), { ts: s.at(-1)!.ts, good: 0, total: 2 }];
    expect(names(multiWindowAlerts(half, tipped, now))).toEqual(['3d/6h']);
  });

  it('takes the same decisions on a time-scaled series (timeScale 0.001: minutes become 60 ms)', () => {
    const bad = (i: number) => (i >= 3 * 1440 - 60 && i < 3 * 1440 - 10 ? 20 : 0);
    const real = multiWindowAlerts(slo, series(now, 3 * 1440, 100, bad), now);
    const scaled = multiWindowAlerts(slo, series(T0 + 259_200, 3 * 1440, 100, bad, 60), T0 + 259_200, { timeScale: 0.001 });
    expect(scaled.map((x) => [x.name, x.firing])).toEqual(real.map((x) => [x.name, x.firing]));
    scaled.forEach((x, i) => expect(x.longBurnRate).toBeCloseTo(real[i]!.longBurnRate, 9));
    // Unscaled, the 60 ms series is 4.3 minutes long: every window sees all of it (1000 bad of 432,000 → 2.31).
    expect(multiWindowAlerts(slo, series(T0 + 259_200, 3 * 1440, 100, bad, 60), T0 + 259_200)[0]!.longBurnRate).toBeCloseTo(2.315, 2);
  });

  it('scales with the SLO period: a 7-day SLO pages on 14.4× over 14 minutes and 70 seconds', () => {
    const week = { objective: 0.999, period: '7d' };
    // 20% bad in the last 10 minutes: over 14 min, 200 bad / 1400 → 142.9 > 14.4; over 70 s (two buckets) 200.
    const s = series(now, 1440, 100, (i) => (i >= 1430 ? 20 : 0));
    const a = multiWindowAlerts(week, s, now);
    expect(a[0]!.longMs).toBe(14 * M);
    expect(a[0]!.longBurnRate).toBeCloseTo(142.857, 2);
    expect(a[0]!.firing).toBe(true);
  });
});
