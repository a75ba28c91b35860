import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import type { EventStore, PredictionQuery } from '../../storage/index.ts';
import type { PredictionLog } from '../../telemetry/index.ts';
import type { Guard } from '../auth.ts';
import { intParam, nextCursor, pageOrder } from '../query.ts';

interface Query {
  model?: string;
  version?: string;
  status?: string;
  requestId?: string;
  since?: string;
  until?: string;
  after?: string;
  before?: string;
  order?: string;
  limit?: string;
}

function timeParam(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(n)) throw new WardenError('WARDEN_BAD_REQUEST', `${name} must be epoch milliseconds or an ISO-8601 time`);
  return n;
}

/**
 * Paged reads of the prediction log: `GET /api/v1/predictions?model=&after=<cursor>&limit=` oldest first, or
 * `order=newest` with `before=<cursor>` newest first (the latest failures without reading the whole range).
 */
export function registerPredictionRoutes(app: FastifyInstance, deps: { events: EventStore; log?: PredictionLog; guard: Guard }): void {
  app.get<{ Querystring: Query }>('/api/v1/predictions', { onRequest: deps.guard('viewer') }, async (req) => {
    const q = req.query;
    if (q.status !== undefined && q.status !== 'ok' && q.status !== 'error' && q.status !== 'shadow') throw new WardenError('WARDEN_BAD_REQUEST', 'status must be ok, error or shadow');
    const { newestFirst: newest } = pageOrder(q);
    const limit = intParam(q.limit, 'limit', 1, 1000) ?? 100;
    const query: PredictionQuery = { limit };
    if (q.model) query.model = q.model;
    const version = intParam(q.version, 'version', 0, 1e9);
    if (version !== undefined) query.version = version;
    if (q.status) query.status = q.status;
    if (q.requestId) query.requestId = q.requestId;
    const since = timeParam(q.since, 'since');
    if (since !== undefined) query.since = since;
    const until = timeParam(q.until, 'until');
    if (until !== undefined) query.until = until;
    const after = intParam(q.after, 'after', 0, Number.MAX_SAFE_INTEGER);
    if (after !== undefined) query.afterSeq = after;
    const before = intParam(q.before, 'before', 0, Number.MAX_SAFE_INTEGER);
    if (before !== undefined) query.beforeSeq = before;
    if (newest) query.newestFirst = true;
    const events = await deps.events.queryPredictions(query);
    return { events, nextCursor: nextCursor(events.at(-1)?.seq, events.length, limit, newest, q.after) };
  });

  app.get('/api/v1/predictions/stats', { onRequest: deps.guard('viewer') }, async () => deps.log?.snapshot() ?? null);
}
