import type { FastifyInstance } from 'fastify';
import type { GameDayService } from '../../lifecycle/index.ts';
import type { Guard } from '../auth.ts';

/**
 * Game days (`/api/v1/gamedays`): start a bounded fault on a deployment (admin), read one or the recent
 * ones (viewer), stop one early (admin). See docs/gameday.md.
 */
export function registerGameDayRoutes(app: FastifyInstance, deps: { gamedays: GameDayService; guard: Guard }): void {
  const { gamedays, guard } = deps;
  app.post('/api/v1/gamedays', { onRequest: guard('admin') }, async (req, reply) => {
    const record = await gamedays.start(req.body, req.apiKey?.id);
    return reply.status(201).send(record);
  });
  app.get<{ Querystring: { deployment?: string } }>('/api/v1/gamedays', { onRequest: guard('viewer') }, async (req) => ({
    gamedays: gamedays.list(req.query.deployment ? { deployment: req.query.deployment } : {}),
  }));
  app.get<{ Params: { id: string } }>('/api/v1/gamedays/:id', { onRequest: guard('viewer') }, async (req) => gamedays.get(req.params.id));
  app.delete<{ Params: { id: string } }>('/api/v1/gamedays/:id', { onRequest: guard('admin') }, async (req) => gamedays.stop(req.params.id));
}
