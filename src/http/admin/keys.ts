import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import { createApiKey, isRole, type KeyRing } from '../../security/index.ts';
import type { MetadataStore } from '../../storage/index.ts';
import type { Guard } from '../auth.ts';

/** API key administration (admin role): create (secret shown once), list, revoke. */
export function registerKeyRoutes(app: FastifyInstance, deps: { metadata: MetadataStore; keys: KeyRing; guard: Guard }): void {
  const admin = { onRequest: deps.guard('admin') };
  app.get('/api/v1/keys', admin, async () => ({
    keys: (await deps.metadata.listApiKeys()).map(({ hash: _hash, ...rest }) => rest),
  }));
  app.post<{ Body: { name?: unknown; role?: unknown } }>('/api/v1/keys', admin, async (req, reply) => {
    const { name, role } = req.body ?? {};
    if (typeof name !== 'string') throw new WardenError('WARDEN_BAD_REQUEST', 'body needs "name" (string)');
    if (!isRole(role)) throw new WardenError('WARDEN_BAD_REQUEST', 'body needs "role": one of viewer, predictor, deployer, admin');
    const created = await createApiKey(deps.metadata, name, role);
    await deps.keys.reload();
    const { hash: _hash, ...record } = created.record;
    return reply.status(201).send({ ...record, secret: created.secret });
  });
  app.delete<{ Params: { id: string } }>('/api/v1/keys/:id', admin, async (req, reply) => {
    if (!(await deps.metadata.revokeApiKey(req.params.id, Date.now()))) throw new WardenError('WARDEN_NOT_FOUND', `no active key ${req.params.id}`);
    await deps.keys.reload();
    return reply.status(204).send();
  });
}
