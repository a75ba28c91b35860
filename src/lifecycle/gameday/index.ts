/**
 * Game days: a bounded fault (latency, errors, drift, nulls, schema) injected into one deployment's live
 * traffic for at most an hour, so a team can check that its alerts fire, and how fast. The injection itself
 * lives on the request path (serving's FaultInjector); this module starts, bounds, stops and records game
 * days. See docs/gameday.md.
 */
export { GameDayService, parseGameDayRequest, MAX_GAMEDAY_MS, MIN_GAMEDAY_MS, MAX_INTENSITY, GAMEDAY_HISTORY } from './service.ts';
export type { GameDayRecord, GameDayServiceDeps, GameDayState } from './service.ts';
