import type { FastifyInstance, FastifyRequest } from 'fastify';
import { WardenError } from '../../errors.ts';
import { buildModelCard, modelCardMarkdown, type ModelCardSources } from '../../registry/index.ts';
import type { Guard } from '../auth.ts';

/** `?format=` wins; otherwise an Accept that prefers Markdown gets it, and anything else JSON. */
function formatOf(req: FastifyRequest<{ Querystring: { format?: string } }>): 'md' | 'json' {
  const f = req.query.format;
  if (f !== undefined && f !== '') {
    if (f === 'md' || f === 'markdown') return 'md';
    if (f === 'json') return 'json';
    throw new WardenError('WARDEN_BAD_REQUEST', `format must be md or json, got ${JSON.stringify(f.slice(0, 40))}`);
  }
  const accept = String(req.headers.accept ?? '');
  return /text\/markdown/i.test(accept) && !/application\/json/i.test(accept) ? 'md' : 'json';
}

/** GET …/versions/{v}/card: the version's model card, generated from the stores at request time. */
export function registerModelCardRoutes(app: FastifyInstance, deps: { sources: ModelCardSources; guard: Guard }): void {
  app.get<{ Params: { name: string; version: string }; Querystring: { format?: string } }>(
    '/api/v1/models/:name/versions/:version/card',
    { onRequest: deps.guard('viewer') },
    async (req, reply) => {
      const format = formatOf(req);
      const card = await buildModelCard(deps.sources, req.params.name, req.params.version);
      if (format === 'md') return reply.type('text/markdown; charset=utf-8').send(modelCardMarkdown(card));
      return card;
    },
  );
}
