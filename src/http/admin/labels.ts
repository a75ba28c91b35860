import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import type { Registry } from '../../registry/index.ts';
import type { EventStore, LabelInput, LabelledQuery } from '../../storage/index.ts';
import type { Guard } from '../auth.ts';
import { intParam } from '../query.ts';

/** Most labels one `POST /api/v1/labels` takes: one call stays one short transaction on the serving thread. */
export const LABEL_BATCH_LIMIT = 10_000;

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

function timeParam(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(n)) throw bad(`${name} must be epoch milliseconds or an ISO-8601 time`);
  return n;
}

/**
 * Delayed labels (ground truth): ingest (predictor role — labels come from the systems that predict), counters,
 * and labels joined to their logged predictions, per model version. See docs/labels.md.
 */
export function registerLabelRoutes(app: FastifyInstance, deps: { events: EventStore; registry: Registry; guard: Guard }): void {
  const { events, registry, guard } = deps;

  app.post<{ Body: unknown }>('/api/v1/labels', { onRequest: guard('predictor') }, async (req) => {
    const body = req.body as { labels?: unknown; lateAfterMs?: unknown } | null | undefined;
    if (body === null || typeof body !== 'object' || Array.isArray(body) || !Array.isArray(body.labels)) {
      throw bad('body must be {"labels": [{"requestId" or "key", "row", "value", "ts", "source"}, …]}');
    }
    if (body.labels.length > LABEL_BATCH_LIMIT) {
      throw new WardenError(
        'WARDEN_TOO_MANY_LABELS',
        `${body.labels.length} labels in one call; send at most ${LABEL_BATCH_LIMIT} per call ('warden labels import' sends 5000 at a time)`,
      );
    }
    const { lateAfterMs } = body;
    if (lateAfterMs !== undefined && (typeof lateAfterMs !== 'number' || !Number.isSafeInteger(lateAfterMs) || lateAfterMs < 0)) {
      throw bad('lateAfterMs must be an integer number of milliseconds ≥ 0');
    }
    // Each item is checked by the store and reported by index; nothing here drops any.
    return events.appendLabels(body.labels as LabelInput[], Date.now(), lateAfterMs === undefined ? {} : { lateAfterMs });
  });

  app.get<{ Querystring: { model?: string; version?: string } }>('/api/v1/labels/stats', { onRequest: guard('viewer') }, async (req) => {
    const version = intParam(req.query.version, 'version', 0, 1e9);
    return events.labelStats({ ...(req.query.model ? { model: req.query.model } : {}), ...(version !== undefined ? { version } : {}) });
  });

  app.get<{ Params: { name: string; version: string }; Querystring: { since?: string; until?: string; limit?: string; after?: string } }>(
    '/api/v1/models/:name/versions/:version/labels',
    { onRequest: guard('viewer') },
    async (req) => {
      const { name, version: ref } = req.params;
      // A number is taken as is: labels outlive a deleted version. Aliases and `latest` resolve through the registry.
      const version = /^[0-9]{1,9}$/.test(ref) ? Number(ref) : (await registry.resolve(name, ref)).version;
      const q: LabelledQuery = { model: name, version, limit: intParam(req.query.limit, 'limit', 1, 1000) ?? 100 };
      const since = timeParam(req.query.since, 'since');
      if (since !== undefined) q.since = since;
      const until = timeParam(req.query.until, 'until');
      if (until !== undefined) q.until = until;
      const after = intParam(req.query.after, 'after', 0, Number.MAX_SAFE_INTEGER);
      if (after !== undefined) q.afterId = after;
      const rows = await events.queryLabelled(q);
      return { model: name, version, rows, nextCursor: rows.length ? String(rows.at(-1)!.id) : (req.query.after ?? null) };
    },
  );
}
