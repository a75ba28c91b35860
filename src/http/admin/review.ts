import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import { checkLabelValue, checkReviewer, type ReviewService } from '../../lifecycle/index.ts';
import type { ReviewItemStatus } from '../../storage/index.ts';
import type { Guard } from '../auth.ts';

const STATUSES: readonly ReviewItemStatus[] = ['open', 'claimed', 'labelled'];

function intParam(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) throw new WardenError('WARDEN_BAD_REQUEST', `${name} must be an integer in [${min}, ${max}]`);
  return n;
}

function itemId(raw: string): number {
  const id = intParam(raw, 'item id', 1, Number.MAX_SAFE_INTEGER);
  if (id === undefined) throw new WardenError('WARDEN_BAD_REQUEST', 'item id must be a positive integer');
  return id;
}

function body(raw: unknown): Record<string, unknown> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new WardenError('WARDEN_BAD_REQUEST', 'body must be a JSON object');
  return raw as Record<string, unknown>;
}

/**
 * Human review API: a model's review policy (`/api/v1/models/{name}/review-policy`) and the queue
 * (`/api/v1/review/items`): list, claim, label; `/api/v1/review/queues` counts every model's queue by status. Labels are forwarded to the labels store as human labels.
 */
export function registerReviewRoutes(app: FastifyInstance, deps: { review: ReviewService; guard: Guard }): void {
  const { review, guard } = deps;
  const policyPath = '/api/v1/models/:name/review-policy';

  app.put<{ Params: { name: string } }>(policyPath, { onRequest: guard('deployer') }, async (req) => review.setPolicy(req.params.name, req.body));
  app.get<{ Params: { name: string } }>(policyPath, { onRequest: guard('viewer') }, async (req) => review.getPolicy(req.params.name));
  app.delete<{ Params: { name: string } }>(policyPath, { onRequest: guard('deployer') }, async (req, reply) => {
    await review.deletePolicy(req.params.name);
    return reply.status(204).send();
  });

  app.get<{ Querystring: { model?: string; status?: string; limit?: string; after?: string } }>(
    '/api/v1/review/items',
    { onRequest: guard('viewer') },
    async (req) => {
      const q = req.query;
      if (q.status !== undefined && q.status !== '' && !STATUSES.includes(q.status as ReviewItemStatus)) {
        throw new WardenError('WARDEN_BAD_REQUEST', `status must be one of ${STATUSES.join(', ')}`);
      }
      const limit = intParam(q.limit, 'limit', 1, 1000) ?? 100;
      const after = intParam(q.after, 'after', 0, Number.MAX_SAFE_INTEGER);
      const items = await review.listItems({
        limit,
        ...(q.model ? { model: q.model } : {}),
        ...(q.status ? { status: q.status as ReviewItemStatus } : {}),
        ...(after !== undefined ? { afterId: after } : {}),
      });
      const last = items.at(-1);
      return { items, nextCursor: last ? String(last.id) : (q.after ?? null) };
    },
  );

  app.get('/api/v1/review/queues', { onRequest: guard('viewer') }, async () => ({ claimTtlMs: review.claimTtl, queues: await review.queues() }));

  app.get<{ Params: { id: string } }>('/api/v1/review/items/:id', { onRequest: guard('viewer') }, async (req) => review.getItem(itemId(req.params.id)));

  app.post<{ Params: { id: string } }>('/api/v1/review/items/:id/claim', { onRequest: guard('predictor') }, async (req) => {
    const id = itemId(req.params.id);
    return review.claim(id, checkReviewer(body(req.body).reviewer));
  });

  app.post<{ Params: { id: string } }>('/api/v1/review/items/:id/label', { onRequest: guard('predictor') }, async (req) => {
    const id = itemId(req.params.id);
    const b = body(req.body);
    return review.label(id, checkLabelValue(b.value), checkReviewer(b.reviewer));
  });
}
