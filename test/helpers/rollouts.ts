/** What the rollout tests share: real 2011 rows of the bike CSV as `:predict` instances, and waiting on a condition. */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { BIKE_SHARING_CSV } from '../../src/lifecycle/index.ts';

export const BIKE_ROWS_2011 = (parse(readFileSync(BIKE_SHARING_CSV), { columns: true }) as Record<string, string>[]).filter((r) => r.yr === '0');
export const BIKE_FEATURES = ['season', 'mnth', 'hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed'];

/** Row i (cycling) of 2011 as a named-feature instance. */
export const bikeInstance = (i: number): Record<string, number> =>
  Object.fromEntries(BIKE_FEATURES.map((f) => [f, Number(BIKE_ROWS_2011[i % BIKE_ROWS_2011.length]![f])]));

/** Polls `fn` every 100 ms until it returns a value; fails naming `what` after `ms`. */
export async function until<T>(fn: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
