import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import type { DeploymentService } from '../../rollouts/index.ts';
import { actorOf } from '../actor.ts';
import type { Guard } from '../auth.ts';

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw bad('body must be a JSON object');
  return body as Record<string, unknown>;
}

function optionalString(b: Record<string, unknown>, key: string, max = 1000): string | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > max) throw bad(`${key} must be a string of at most ${max} characters`);
  return v;
}

function versionRef(v: unknown, key: string): string | number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' || typeof v === 'string') return v;
  throw bad(`${key} must be a version number, an alias or "latest"`);
}

function timeParam(raw: string | undefined): number {
  if (raw === undefined || raw === '') throw bad('at is required: epoch milliseconds or an ISO-8601 time');
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(n)) throw bad('at must be epoch milliseconds or an ISO-8601 time');
  return n;
}

/** Deployments API (docs/rollouts.md): state, deploy, roll back, history, and the version served at a time. */
export function registerDeploymentRoutes(app: FastifyInstance, deps: { deployments: DeploymentService; guard: Guard }): void {
  const { deployments, guard } = deps;
  const base = '/api/v1/deployments';

  app.get(base, { onRequest: guard('viewer') }, async () => ({ deployments: await deployments.list() }));

  app.get<{ Params: { name: string } }>(`${base}/:name`, { onRequest: guard('viewer') }, async (req) => deployments.get(req.params.name));

  app.post<{ Params: { name: string } }>(`${base}/:name/deploy`, { onRequest: guard('deployer') }, async (req) => {
    const b = bodyObject(req.body);
    const version = versionRef(b.version, 'version');
    if (version === undefined) throw bad('body needs "version": a version number, an alias or "latest"');
    if (b.force !== undefined && typeof b.force !== 'boolean') throw bad('force must be true or false');
    const strategy = optionalString(b, 'strategy', 40);
    const reason = optionalString(b, 'reason');
    return deployments.deploy(req.params.name, {
      version,
      actor: actorOf(req),
      force: b.force === true,
      ...(strategy !== undefined ? { strategy } : {}),
      ...(reason !== undefined ? { reason } : {}),
    });
  });

  app.post<{ Params: { name: string } }>(`${base}/:name/rollback`, { onRequest: guard('deployer') }, async (req) => {
    const b = bodyObject(req.body);
    const to = versionRef(b.to, 'to');
    const reason = optionalString(b, 'reason');
    return deployments.rollback(req.params.name, { actor: actorOf(req), ...(to !== undefined ? { to } : {}), ...(reason !== undefined ? { reason } : {}) });
  });

  app.get<{ Params: { name: string }; Querystring: { after?: string; limit?: string } }>(`${base}/:name/history`, { onRequest: guard('viewer') }, async (req) => {
    const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw bad('limit must be an integer in [1, 1000]');
    const after = req.query.after === undefined || req.query.after === '' ? 0 : Number(req.query.after);
    if (!Number.isSafeInteger(after) || after < 0) throw bad('after must be a cursor from an earlier answer (an integer ≥ 0)');
    const events = await deployments.history(req.params.name, { afterId: after, limit });
    return { events, nextCursor: events.length ? String(events.at(-1)!.id) : (req.query.after ?? null) };
  });

  app.get<{ Params: { name: string }; Querystring: { at?: string } }>(`${base}/:name/served`, { onRequest: guard('viewer') }, async (req) =>
    deployments.servedAt(req.params.name, timeParam(req.query.at)),
  );
}
