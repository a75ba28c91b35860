import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import type { DeploymentService, RolloutService } from '../../rollouts/index.ts';
import type { EventStore, OutcomeInput } from '../../storage/index.ts';
import { actorOf } from '../actor.ts';
import type { AuditLog } from '../../security/index.ts';
import type { Guard } from '../auth.ts';
import { nextCursor, optionalTimeParam, pageOrder } from '../query.ts';

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

/** The cursors of a listing paged either way (pageOrder), as the store's ids. */
function paging(q: { after?: string; before?: string; order?: string }): { afterId?: number; beforeId?: number; newestFirst: boolean } {
  const { newestFirst } = pageOrder(q);
  const cursor = (raw: string | undefined, name: string): number | undefined => {
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0) throw bad(`${name} must be a cursor from an earlier answer (an integer ≥ 0)`);
    return n;
  };
  const after = cursor(q.after, 'after');
  const before = cursor(q.before, 'before');
  return { ...(after !== undefined ? { afterId: after } : {}), ...(before !== undefined ? { beforeId: before } : {}), newestFirst };
}

/** Most outcomes one call may post. */
export const OUTCOME_BATCH_LIMIT = 5000;
const METRIC_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$/;

function outcomeOf(raw: unknown, i: number, now: number): OutcomeInput {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad(`outcomes[${i}] must be an object with key, metric and value`);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!['key', 'metric', 'value', 'ts'].includes(k)) throw bad(`outcomes[${i}]: unknown field "${k.slice(0, 40)}"; an outcome has key, metric, value and ts`);
  if (typeof o.key !== 'string' || o.key.length === 0 || o.key.length > 256) throw bad(`outcomes[${i}].key must be the caller key (parameters.keys) of the prediction, 1 to 256 characters`);
  if (typeof o.metric !== 'string' || !METRIC_NAME.test(o.metric)) throw bad(`outcomes[${i}].metric must be a metric name (letters, digits, _.:-, at most 64), e.g. "conversion"`);
  const value = typeof o.value === 'boolean' ? Number(o.value) : o.value;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(`outcomes[${i}].value must be a finite number (1/0 for a conversion, an amount for revenue)`);
  let ts = now;
  if (o.ts !== undefined) {
    ts = typeof o.ts === 'number' ? o.ts : typeof o.ts === 'string' ? Date.parse(o.ts) : NaN;
    if (!Number.isFinite(ts) || ts < 0 || ts > now + 86_400_000) throw bad(`outcomes[${i}].ts must be epoch milliseconds or an ISO-8601 time, not in the future`);
  }
  return { key: o.key, metric: o.metric, value, ts };
}

/** Deployments API (docs/rollouts.md): state, deploy, roll back, history, and the version served at a time. */
export function registerDeploymentRoutes(
  app: FastifyInstance,
  deps: { deployments: DeploymentService; rollouts: RolloutService; events: EventStore; guard: Guard; audit?: Pick<AuditLog, 'list'> },
): void {
  const { deployments, rollouts, guard } = deps;
  const base = '/api/v1/deployments';

  // A scoped key sees its own deployments only (docs/security.md#scopes).
  app.get(base, { onRequest: guard('viewer', { scope: 'filtered' }) }, async (req) => {
    const scopes = req.apiKey?.scopes;
    return { deployments: (await deployments.list()).filter((d) => scopes === undefined || scopes.includes(d.name)) };
  });

  app.get<{ Params: { name: string } }>(`${base}/:name`, { onRequest: guard('viewer') }, async (req) => deployments.get(req.params.name));

  app.post<{ Params: { name: string } }>(`${base}/:name/deploy`, { onRequest: guard('deployer') }, async (req) => {
    const b = bodyObject(req.body);
    const version = versionRef(b.version, 'version');
    if (version === undefined) throw bad('body needs "version": a version number, an alias or "latest"');
    if (b.force !== undefined && typeof b.force !== 'boolean') throw bad('force must be true or false');
    for (const k of Object.keys(b)) if (!['version', 'strategy', 'reason', 'force', 'spec', 'inheritMonitoring'].includes(k)) throw bad(`unknown field "${k.slice(0, 40)}"; a deploy takes version, strategy, reason, force, spec and inheritMonitoring`);
    if (b.inheritMonitoring !== undefined && typeof b.inheritMonitoring !== 'boolean') throw bad('inheritMonitoring must be true or false');
    const strategy = optionalString(b, 'strategy', 40);
    const reason = optionalString(b, 'reason');
    return deployments.deploy(req.params.name, {
      version,
      actor: actorOf(req),
      force: b.force === true,
      ...(b.spec !== undefined ? { spec: b.spec } : {}),
      ...(b.inheritMonitoring === false ? { inheritMonitoring: false } : {}),
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

  app.get<{ Params: { name: string }; Querystring: { after?: string; before?: string; order?: string; since?: string; until?: string; limit?: string } }>(
    `${base}/:name/history`,
    { onRequest: guard('viewer') },
    async (req) => {
      const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw bad('limit must be an integer in [1, 1000]');
      const page = paging(req.query);
      const since = optionalTimeParam(req.query.since, 'since');
      const until = optionalTimeParam(req.query.until, 'until');
      if (since !== undefined && until !== undefined && since > until) throw bad('since must not be after until');
      const events = await deployments.history(req.params.name, { ...page, ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}), limit });
      return { events, nextCursor: nextCursor(events.at(-1)?.id, events.length, limit, page.newestFirst, req.query.after) };
    },
  );

  app.get<{ Params: { name: string } }>(`${base}/:name/rollout`, { onRequest: guard('viewer') }, async (req) => rollouts.status(req.params.name));

  app.get<{ Params: { name: string }; Querystring: { after?: string; before?: string; order?: string; limit?: string; rollout?: string } }>(
    `${base}/:name/rollout/decisions`,
    { onRequest: guard('viewer') },
    async (req) => {
      const limit = req.query.limit === undefined ? 500 : Number(req.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 5000) throw bad('limit must be an integer in [1, 5000]');
      const page = paging(req.query);
      const rollout = req.query.rollout === undefined ? undefined : Number(req.query.rollout);
      if (rollout !== undefined && (!Number.isSafeInteger(rollout) || rollout < 1)) throw bad('rollout must be a rollout id');
      const out = await rollouts.decisionsOf(req.params.name, { ...page, limit, ...(rollout !== undefined ? { rollout } : {}) });
      return { ...out, nextCursor: nextCursor(out.decisions.at(-1)?.id, out.decisions.length, limit, page.newestFirst, req.query.after) };
    },
  );

  for (const action of ['promote', 'pause', 'resume', 'abort'] as const) {
    app.post<{ Params: { name: string } }>(`${base}/:name/rollout/${action}`, { onRequest: guard('deployer') }, async (req) => {
      const b = bodyObject(req.body);
      for (const k of Object.keys(b)) if (!['reason', ...(action === 'promote' ? ['full'] : [])].includes(k)) throw bad(`unknown field "${k.slice(0, 40)}"; ${action} takes reason${action === 'promote' ? ' and full' : ''}`);
      if (b.full !== undefined && typeof b.full !== 'boolean') throw bad('full must be true or false');
      const reason = optionalString(b, 'reason');
      const o = { actor: actorOf(req), ...(reason !== undefined ? { reason } : {}) };
      const rollout =
        action === 'promote'
          ? await rollouts.promote(req.params.name, { ...o, full: b.full === true })
          : action === 'pause'
            ? await rollouts.pause(req.params.name, o)
            : action === 'resume'
              ? await rollouts.resume(req.params.name, o)
              : await rollouts.abort(req.params.name, o);
      return { rollout, deployment: await deployments.get(req.params.name) };
    });
  }

  app.get<{ Params: { name: string } }>(`${base}/:name/experiment`, { onRequest: guard('viewer') }, async (req) => rollouts.experiment(req.params.name));

  app.get<{ Querystring: { deployment?: string; limit?: string } }>('/api/v1/rollouts', { onRequest: guard('viewer') }, async (req) => {
    const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw bad('limit must be an integer in [1, 1000]');
    return { rollouts: await rollouts.list({ limit, ...(req.query.deployment ? { deployment: req.query.deployment } : {}) }) };
  });

  app.post('/api/v1/outcomes', { onRequest: guard('predictor') }, async (req) => {
    const b = bodyObject(req.body);
    if (!Array.isArray(b.outcomes)) throw bad('body must be {"outcomes": [{"key", "metric", "value", "ts"?}, …]}');
    if (b.outcomes.length === 0 || b.outcomes.length > OUTCOME_BATCH_LIMIT) throw bad(`send 1 to ${OUTCOME_BATCH_LIMIT} outcomes per call, got ${b.outcomes.length}`);
    const now = Date.now();
    const outcomes = b.outcomes.map((o, i) => outcomeOf(o, i, now));
    const result = await deps.events.appendOutcomes(outcomes, now);
    rollouts.countOutcomes(result.matched, result.unmatched);
    return result;
  });

  // "Which version served D at T, and who put it there": the change's audit entries (key id and role, or the loop)
  // are found by the request id the change's event carries.
  app.get<{ Params: { name: string }; Querystring: { at?: string } }>(`${base}/:name/served`, { onRequest: guard('viewer') }, async (req) => {
    const served = await deployments.servedAt(req.params.name, timeParam(req.query.at));
    const requestId = served.event?.data.requestId;
    const audit = deps.audit && typeof requestId === 'string' ? await deps.audit.list({ requestId, order: 'asc', limit: 20 }) : [];
    return {
      ...served,
      by: audit.length ? { actor: audit[0]!.actor, requestId, at: audit[0]!.at, entries: audit.map((e) => ({ seq: e.seq, action: e.action, object: e.object })) } : null,
    };
  });
}
