import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import { checkLimit, checkQuota, createApiKey, isRole, parseDuration, publicKey, rotateApiKey, type KeyRing, type QuotaCounter, type RateLimiter } from '../../security/index.ts';
import type { MetadataStore } from '../../storage/index.ts';
import { actorOf } from '../actor.ts';
import type { Guard } from '../auth.ts';

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/**
 * API key administration (admin role): create (secret shown once, optionally scoped and expiring), list, rotate,
 * revoke; and the rate limits per key and deployment. Every change is read back by this replica before it answers.
 */
export function registerKeyRoutes(app: FastifyInstance, deps: { metadata: MetadataStore; keys: KeyRing; guard: Guard; rateLimits?: RateLimiter; quotas?: QuotaCounter }): void {
  const admin = { onRequest: deps.guard('admin') };
  app.get('/api/v1/keys', admin, async () => ({
    keys: (await deps.metadata.listApiKeys()).map((k) => {
      // This replica's newest use may not be written yet.
      const seen = deps.keys.unflushedUse(k.id);
      const lastUsedAt = Math.max(k.lastUsedAt ?? -Infinity, seen ?? -Infinity);
      return { ...publicKey(k), ...(Number.isFinite(lastUsedAt) ? { lastUsedAt } : {}) };
    }),
  }));
  app.post<{ Body: { name?: unknown; role?: unknown; scopes?: unknown; expiresAt?: unknown; expiresIn?: unknown } }>('/api/v1/keys', admin, async (req, reply) => {
    const { name, role, scopes, expiresAt, expiresIn } = req.body ?? {};
    if (typeof name !== 'string') throw bad('body needs "name" (string)');
    if (!isRole(role)) throw bad('body needs "role": one of viewer, predictor, deployer, admin');
    if (expiresAt !== undefined && expiresIn !== undefined) throw bad('give "expiresAt" (a time) or "expiresIn" (a duration), not both');
    if (expiresIn !== undefined && typeof expiresIn !== 'string') throw bad('"expiresIn" must be a duration such as "30d"');
    const created = await createApiKey(deps.metadata, name, role, { scopes, expires: expiresAt ?? expiresIn });
    await deps.keys.reload();
    return reply.status(201).send({ ...publicKey(created.record), secret: created.secret });
  });
  app.post<{ Params: { id: string }; Body: { overlap?: unknown } | null }>('/api/v1/keys/:id/rotate', admin, async (req) => {
    const raw = req.body?.overlap ?? '0';
    const overlapMs = parseDuration(raw, '"overlap"');
    const rotated = await rotateApiKey(deps.metadata, req.params.id, overlapMs);
    await deps.keys.reload();
    return { ...publicKey(rotated.record), secret: rotated.secret };
  });
  app.delete<{ Params: { id: string } }>('/api/v1/keys/:id', admin, async (req, reply) => {
    if (!(await deps.metadata.revokeApiKey(req.params.id, Date.now()))) throw new WardenError('WARDEN_NOT_FOUND', `no active key ${req.params.id}`);
    await deps.keys.reload();
    return reply.status(204).send();
  });

  // Rate limits and quotas are both set on a key (by id) or a deployment (by model name).
  const scopeIn = (what: string, route: string) => (raw: string): 'key' | 'deployment' => {
    if (raw !== 'key' && raw !== 'deployment') throw bad(`${what} scope ${JSON.stringify(raw.slice(0, 40))} is unknown; use /api/v1/${route}/key/{id} or /api/v1/${route}/deployment/{name}`);
    return raw;
  };
  const mustExist = async (scope: 'key' | 'deployment', name: string, what: string): Promise<void> => {
    if (scope === 'key' && !(await deps.metadata.listApiKeys()).some((k) => k.id === name && k.revokedAt === undefined)) {
      throw new WardenError('WARDEN_NOT_FOUND', `no active key ${name}; 'warden keys list' shows key ids`);
    }
    if (scope === 'deployment' && !(await deps.metadata.getModel(name))) throw new WardenError('WARDEN_MODEL_NOT_FOUND', `no model ${name}; a deployment's ${what} is set by its model's name`);
  };

  const limits = deps.rateLimits;
  const scopeOf = scopeIn('rate limit', 'rate-limits');
  const notConfigured = () => new WardenError('WARDEN_NOT_FOUND', 'rate limits are not enabled on this server');
  app.get('/api/v1/rate-limits', admin, async () => {
    if (!limits) throw notConfigured();
    return limits.list();
  });
  app.put<{ Params: { scope: string; name: string }; Body: unknown }>('/api/v1/rate-limits/:scope/:name', admin, async (req) => {
    if (!limits) throw notConfigured();
    const scope = scopeOf(req.params.scope);
    const { name } = req.params;
    const limit = checkLimit(req.body);
    await mustExist(scope, name, 'limit');
    const record = { scope, name, ...limit, updatedAt: Date.now(), updatedBy: actorOf(req) };
    await deps.metadata.saveRateLimit(record);
    await limits.reload();
    return record;
  });
  app.delete<{ Params: { scope: string; name: string } }>('/api/v1/rate-limits/:scope/:name', admin, async (req, reply) => {
    if (!limits) throw notConfigured();
    const scope = scopeOf(req.params.scope);
    if (!(await deps.metadata.deleteRateLimit(scope, req.params.name))) {
      throw new WardenError('WARDEN_NOT_FOUND', `no rate limit set by the API for ${scope} ${req.params.name} (limits from the config file are changed there)`);
    }
    await limits.reload();
    return reply.status(204).send();
  });

  const quotas = deps.quotas;
  const quotaScope = scopeIn('quota', 'quotas');
  const noQuotas = () => new WardenError('WARDEN_NOT_FOUND', 'quotas are not enabled on this server');
  app.get('/api/v1/quotas', admin, async () => {
    if (!quotas) throw noQuotas();
    // This replica's latest counts are written and the fleet's read first, so the figures are current.
    await quotas.flush().catch(() => undefined);
    return quotas.list();
  });
  app.put<{ Params: { scope: string; name: string }; Body: unknown }>('/api/v1/quotas/:scope/:name', admin, async (req) => {
    if (!quotas) throw noQuotas();
    const scope = quotaScope(req.params.scope);
    const { name } = req.params;
    const quota = checkQuota(req.body);
    await mustExist(scope, name, 'quota');
    const record = { scope, name, ...quota, updatedAt: Date.now(), updatedBy: actorOf(req) };
    await deps.metadata.saveQuota(record);
    await quotas.reload();
    return record;
  });
  app.delete<{ Params: { scope: string; name: string } }>('/api/v1/quotas/:scope/:name', admin, async (req, reply) => {
    if (!quotas) throw noQuotas();
    const scope = quotaScope(req.params.scope);
    if (!(await deps.metadata.deleteQuota(scope, req.params.name))) {
      throw new WardenError('WARDEN_NOT_FOUND', `no quota set by the API for ${scope} ${req.params.name} (quotas from the config file are changed there)`);
    }
    await quotas.reload();
    return reply.status(204).send();
  });
}
