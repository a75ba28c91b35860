/** UTC calendar periods, as budgets (cost/) and quotas (security/) count them. */

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** Start of the UTC day, of the next one, of the UTC month and of the next month holding `t`. */
export function utcPeriods(t: number): { day: number; nextDay: number; month: number; nextMonth: number } {
  const d = new Date(t);
  const day = Math.floor(t / DAY_MS) * DAY_MS;
  return {
    day,
    nextDay: day + DAY_MS,
    month: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1),
    nextMonth: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
  };
}
