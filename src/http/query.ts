import { WardenError } from '../errors.ts';

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/**
 * An optional time query parameter: epoch milliseconds or an ISO-8601 time. Date.parse alone takes odd forms ("-5"
 * is a year), so an ISO time must start with its date.
 */
export function optionalTimeParam(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : NaN;
  if (!Number.isFinite(n) || n < 0) throw bad(`${name} must be epoch milliseconds or an ISO-8601 time, e.g. ${name}=2026-01-31T00:00:00Z`);
  return n;
}

/** An optional integer query parameter in [min, max]. */
export function intParam(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw bad(`${name} must be an integer in [${min}, ${max}]`);
  return n;
}

/**
 * Which way a listing pages: oldest first with `after=<cursor>` (the default) or, with `order=newest`, newest first
 * with `before=<cursor>`. Refuses a cursor of the other direction; the cursors themselves are each route's to parse.
 */
export function pageOrder(q: { order?: string; after?: string; before?: string }): { newestFirst: boolean } {
  if (q.order !== undefined && q.order !== '' && q.order !== 'oldest' && q.order !== 'newest') throw bad('order must be oldest or newest');
  const newestFirst = q.order === 'newest';
  if (newestFirst && q.after !== undefined && q.after !== '') throw bad('with order=newest page with before=<nextCursor>, not after');
  if (!newestFirst && q.before !== undefined && q.before !== '') throw bad('before pages newest first: add order=newest (or page oldest first with after)');
  return { newestFirst };
}

/**
 * The cursor of the next page: newest first, a short page was the last (null); oldest first, the last item's, or
 * the caller's own `after` when nothing newer has arrived yet (it waits for newer items).
 */
export function nextCursor(last: number | undefined, count: number, limit: number, newestFirst: boolean, after: string | undefined): string | null {
  if (newestFirst) return last !== undefined && count === limit ? String(last) : null;
  return last !== undefined ? String(last) : (after ?? null);
}
