import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import type { OnlineFeatures } from '../../features/index.ts';
import type { Guard } from '../auth.ts';
import { actorOf } from '../actor.ts';

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
/** Entities one online read takes at most. */
const MAX_ENTITIES = 1000;

function materializeBody(body: unknown): { views?: string[]; full?: boolean } {
  if (body === undefined || body === null || body === '') return {};
  const form = 'the body is {"views"?: ["view", …], "full"?: true}';
  if (!isObject(body)) throw bad(form);
  for (const k of Object.keys(body)) if (k !== 'views' && k !== 'full') throw bad(`unknown field ${k.slice(0, 64)}; ${form}`);
  if (body.views !== undefined && (!Array.isArray(body.views) || body.views.length > 1000 || body.views.some((v) => typeof v !== 'string'))) throw bad(`views must be a list of view names; ${form}`);
  if (body.full !== undefined && typeof body.full !== 'boolean') throw bad(`full must be true or false; ${form}`);
  return { ...(body.views ? { views: body.views as string[] } : {}), ...(body.full !== undefined ? { full: body.full } : {}) };
}

/**
 * The online store (docs/features.md#online-store-and-enrichment): which feature views a deployment reads at serving
 * time, materialization runs, and reads of online values with their status.
 */
export function registerOnlineFeatureRoutes(app: FastifyInstance, deps: { online: OnlineFeatures; guard: Guard }): void {
  const { online, guard } = deps;
  const { enrichment, materializer } = online;

  app.get<{ Params: { name: string } }>('/api/v1/deployments/:name/features', { onRequest: guard('viewer') }, async (req) => {
    const b = enrichment.get(req.params.name);
    if (!b) throw new WardenError('WARDEN_NOT_FOUND', `${req.params.name} reads no feature views; name them with PUT /api/v1/deployments/${req.params.name}/features`);
    return b;
  });

  app.put<{ Params: { name: string }; Body: unknown }>('/api/v1/deployments/:name/features', { onRequest: guard('deployer') }, async (req) => {
    await online.checkDeployment(req.params.name);
    return enrichment.set(req.params.name, req.body, actorOf(req));
  });

  app.delete<{ Params: { name: string } }>('/api/v1/deployments/:name/features', { onRequest: guard('deployer') }, async (req, reply) => {
    if (!(await enrichment.delete(req.params.name))) throw new WardenError('WARDEN_NOT_FOUND', `${req.params.name} reads no feature views`);
    return reply.status(204).send();
  });

  app.post<{ Body: unknown }>('/api/v1/features/materialize', { onRequest: guard('deployer') }, async (req, reply) => {
    const { views, full } = materializeBody(req.body);
    const run = await materializer.start(views, actorOf(req), { full: full === true });
    return reply.status(202).header('location', `/api/v1/features/materialize/${run.id}`).send({ run });
  });

  app.get<{ Querystring: { views?: string } }>('/api/v1/features/materialize', { onRequest: guard('viewer') }, async (req) => ({
    views: await materializer.status(req.query.views ? req.query.views.split(',') : undefined),
  }));

  app.get<{ Params: { id: string } }>('/api/v1/features/materialize/:id', { onRequest: guard('viewer') }, async (req) => {
    const run = materializer.get(req.params.id);
    if (!run) {
      throw new WardenError(
        'WARDEN_NOT_FOUND',
        `no materialization run ${JSON.stringify(req.params.id.slice(0, 64))} on this replica (it keeps its last 20 runs); GET /api/v1/features/materialize shows every view's state from any replica`,
      );
    }
    return { run };
  });

  app.post<{ Body: unknown }>('/api/v1/features/online', { onRequest: guard('viewer') }, async (req) => {
    const body = req.body;
    const form = 'the body is {"view": "name", "entities": [{join key: value}, …], "features"?: ["name", …]}';
    if (!isObject(body)) throw bad(form);
    for (const k of Object.keys(body)) if (!['view', 'entities', 'features'].includes(k)) throw bad(`unknown field ${k.slice(0, 64)}; ${form}`);
    if (typeof body.view !== 'string') throw bad(`view must be a view name; ${form}`);
    if (!Array.isArray(body.entities) || body.entities.length === 0 || body.entities.length > MAX_ENTITIES || body.entities.some((e) => !isObject(e))) {
      throw bad(`entities must be a list of 1 to ${MAX_ENTITIES} objects of join key → value; ${form}`);
    }
    if (body.features !== undefined && (!Array.isArray(body.features) || body.features.some((f) => typeof f !== 'string'))) throw bad(`features must be a list of feature names; ${form}`);
    return online.read(body.view, body.entities as Record<string, unknown>[], body.features as string[] | undefined);
  });
}
