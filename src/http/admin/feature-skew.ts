import type { FastifyInstance } from 'fastify';
import type { SkewMonitor } from '../../features/index.ts';
import type { Guard } from '../auth.ts';

/**
 * Training–serving skew of feature-store features (docs/features.md#skew): the last check of each view — rows
 * sampled, per feature the rows compared, differing and the rate, and a few differing rows (entity, time, served and
 * offline values). `?view=` keeps one view. The check runs on the replica holding the features-skew lease; the others
 * answer what they checked themselves (nothing, unless they held it before).
 */
export function registerFeatureSkewRoutes(app: FastifyInstance, deps: { skew: Pick<SkewMonitor, 'report'>; guard: Guard }): void {
  const { skew, guard } = deps;
  app.get<{ Querystring: { view?: string } }>('/api/v1/features/skew', { onRequest: guard('viewer') }, async (req) => {
    const view = req.query.view;
    const views = skew.report().filter((r) => view === undefined || r.view === view);
    return { views };
  });
}
