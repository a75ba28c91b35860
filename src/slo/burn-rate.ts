/**
 * Error budgets and burn rates: pure functions of a recorded SLI series and an injected `now`.
 *
 * The alerting policy is the multi-window, multi-burn-rate one of the Google SRE Workbook, chapter 5
 * "Alerting on SLOs" (https://sre.google/workbook/alerting-on-slos/, table 5-8): for a 30-day SLO, page when
 * 2% of the budget burns in an hour (burn rate 14.4 over 1h, confirmed over 5m) or 5% in six hours (6 over 6h
 * and 30m); open a ticket when 10% burns in a day (3 over 1d and 2h) or in three days (1 over 3d and 6h).
 * The short window (1/12 of the long one) makes the alert stop soon after the burn stops.
 */
import type { Severity } from '../alerting/index.ts';
import { periodMs, type SloDefinition } from './definition.ts';

/** Good and total events of one SLO in one bucket that starts at `ts` (epoch ms). */
export interface SliPoint {
  ts: number;
  good: number;
  total: number;
}

/** Names of the workbook's window pairs (long/short); they name alerts whatever the period and time scale. */
export type BurnWindowName = '1h/5m' | '6h/30m' | '1d/2h' | '3d/6h';

/** One row of the multi-window policy, with its windows scaled to an SLO's period and the time scale. */
export interface BurnWindow {
  name: BurnWindowName;
  severity: Severity;
  /** Burn rate both windows must exceed. */
  factor: number;
  longMs: number;
  shortMs: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The period the workbook's windows are written for. */
export const WORKBOOK_PERIOD_MS = 30 * DAY;

/** The workbook's policy for a 30-day SLO (table 5-8). */
export const WORKBOOK_WINDOWS: readonly BurnWindow[] = [
  { name: '1h/5m', severity: 'page', factor: 14.4, longMs: HOUR, shortMs: 5 * MINUTE },
  { name: '6h/30m', severity: 'page', factor: 6, longMs: 6 * HOUR, shortMs: 30 * MINUTE },
  { name: '1d/2h', severity: 'ticket', factor: 3, longMs: DAY, shortMs: 2 * HOUR },
  { name: '3d/6h', severity: 'ticket', factor: 1, longMs: 3 * DAY, shortMs: 6 * HOUR },
];

/** Options every time-dependent function takes. */
export interface TimeOptions {
  /**
   * Multiplies every duration (period, burn windows, buckets, retention): 0.001 runs a 30-day SLO in 43.2
   * minutes and its 1h/5m windows in 3.6 s / 0.3 s, for tests and game days. Default 1.
   */
  timeScale?: number;
}

/**
 * The policy's windows for an SLO of `periodMs`: the workbook's 30-day windows scaled by period / 30d (a 7-day
 * SLO pages on 14.4× over 14 minutes) and by the time scale. The factors stay: each row still means the same
 * share of the budget (2%, 5%, 10%, 10%) burnt within its long window.
 */
export function burnWindows(periodMs: number, opts: TimeOptions = {}): BurnWindow[] {
  const k = (periodMs / WORKBOOK_PERIOD_MS) * (opts.timeScale ?? 1);
  return WORKBOOK_WINDOWS.map((w) => ({ ...w, longMs: Math.max(1, Math.round(w.longMs * k)), shortMs: Math.max(1, Math.round(w.shortMs * k)) }));
}

/** The SLO's period after time scaling (ms). */
export function scaledPeriodMs(slo: Pick<SloDefinition, 'period'>, opts: TimeOptions = {}): number {
  return Math.max(1, Math.round(periodMs(slo) * (opts.timeScale ?? 1)));
}

/** Good and total events of the buckets that start in [now − windowMs, now). */
export function windowCounts(series: readonly SliPoint[], windowMs: number, now: number): { good: number; total: number } {
  const from = now - windowMs;
  let good = 0;
  let total = 0;
  for (const p of series) {
    if (p.ts < from || p.ts >= now) continue;
    good += p.good;
    total += p.total;
  }
  return { good, total };
}

/**
 * How fast the budget burns over the window: the window's error rate divided by the error rate the objective
 * allows (1 − objective). 1 spends exactly the budget over the period; 14.4 spends a 30-day budget in 50 hours.
 * A window without events burns nothing (0).
 */
export function burnRate(series: readonly SliPoint[], windowMs: number, now: number, objective: number): number {
  const { good, total } = windowCounts(series, windowMs, now);
  if (total <= 0) return 0;
  return (total - good) / total / (1 - objective);
}

/** The error budget of an SLO over its rolling period. */
export interface ErrorBudget {
  /** good / total over the period (1 with no events). */
  sli: number;
  good: number;
  total: number;
  /** total − good. */
  bad: number;
  /** Error rate the objective allows: 1 − objective (0.001 for 99.9%). */
  budget: number;
  /** Bad events the budget allows so far: budget × total. */
  allowedBad: number;
  /** Share of the budget spent: bad / allowedBad (above 1 once overspent; 0 with no events). */
  consumed: number;
  /** 1 − consumed: the share left (negative once overspent). */
  remaining: number;
}

/** Error budget over the (time-scaled) period ending at `now`: buckets starting in [now − period, now). */
export function errorBudget(slo: Pick<SloDefinition, 'objective' | 'period'>, series: readonly SliPoint[], now: number, opts: TimeOptions = {}): ErrorBudget {
  return errorBudgetOf(slo, windowCounts(series, scaledPeriodMs(slo, opts), now));
}

/** The error budget from the period's good and total counts. */
export function errorBudgetOf(slo: Pick<SloDefinition, 'objective'>, { good, total }: { good: number; total: number }): ErrorBudget {
  const budget = 1 - slo.objective;
  const bad = total - good;
  const allowedBad = budget * total;
  const consumed = total > 0 ? bad / allowedBad : 0;
  return { sli: total > 0 ? good / total : 1, good, total, bad, budget, allowedBad, consumed, remaining: 1 - consumed };
}

/** The decision of one policy row at `now`. */
export interface BurnAlert extends BurnWindow {
  longBurnRate: number;
  shortBurnRate: number;
  /** Events in the long window (a burn rate over few events is noisy). */
  longTotal: number;
  /** Both windows burn faster than the factor. */
  firing: boolean;
}

/**
 * The multi-window, multi-burn-rate decisions for an SLO at `now`: one entry per policy row, firing when the
 * burn rate over the long window and over the short window both exceed the row's factor (strictly, as the
 * PromQL `>` of the exported rules).
 */
export function multiWindowAlerts(slo: Pick<SloDefinition, 'objective' | 'period'>, series: readonly SliPoint[], now: number, opts: TimeOptions = {}): BurnAlert[] {
  return multiWindowAlertsOf(slo, (windowMs) => windowCounts(series, windowMs, now), opts);
}

/** As multiWindowAlerts, from the good and total counts of each window ending now (`counts(windowMs)`). */
export function multiWindowAlertsOf(slo: Pick<SloDefinition, 'objective' | 'period'>, counts: (windowMs: number) => { good: number; total: number }, opts: TimeOptions = {}): BurnAlert[] {
  const rate = ({ good, total }: { good: number; total: number }) => (total <= 0 ? 0 : (total - good) / total / (1 - slo.objective));
  return burnWindows(periodMs(slo), opts).map((w) => {
    const long = counts(w.longMs);
    const longBurnRate = rate(long);
    const shortBurnRate = rate(counts(w.shortMs));
    return { ...w, longBurnRate, shortBurnRate, longTotal: long.total, firing: longBurnRate > w.factor && shortBurnRate > w.factor };
  });
}

/** Recording resolution: one bucket per minute, scaled (at least 10 ms). */
export function bucketMs(opts: TimeOptions = {}): number {
  return Math.max(10, Math.round(MINUTE * (opts.timeScale ?? 1)));
}
