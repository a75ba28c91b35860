import type { FastifyInstance } from 'fastify';
import type { SkewMonitor } from '../../features/index.ts';
import type { Guard } from '../auth.ts';
import { WardenError } from '../../errors.ts';

/**
 * Training–serving skew of feature-store features (docs/features.md#skew): the last check of each view — rows
 * sampled, per feature the rows compared, differing and the rate, and a few differing rows (entity, time, served and
 * offline values). `?view=` keeps one view. The check runs on the replica holding the features-skew lease; the others
 * answer what they checked themselves (nothing, unless they held it before). `POST …/skew/check` runs a check now on
 * the sample this replica holds, instead of waiting for features.skewEveryMs (after a source change, in a demo).
 */
export function registerFeatureSkewRoutes(app: FastifyInstance, deps: { skew: Pick<SkewMonitor, 'report' | 'run'>; guard: Guard }): void {
  const { skew, guard } = deps;
  app.get<{ Querystring: { view?: string } }>('/api/v1/features/skew', { onRequest: guard('viewer') }, async (req) => {
    const view = req.query.view;
    const views = skew.report().filter((r) => view === undefined || r.view === view);
    return { views };
  });

  app.post<{ Body: unknown }>('/api/v1/features/skew/check', { onRequest: guard('deployer') }, async (req) => {
    const body = req.body;
    if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body) || Object.keys(body).length > 0)) {
      throw new WardenError('WARDEN_BAD_REQUEST', 'body must be empty or {}: a check takes every view sampled since the last one');
    }
    const views = await skew.run();
    return { views, ...(views.length === 0 ? { message: 'no served rows of a feature view were sampled since the last check: serve requests by entity key first' } : {}) };
  });
}
