/**
 * Audits state-changing API calls (docs/audit.md#what-is-recorded): every POST, PUT, PATCH and DELETE under /api/v1
 * but the few that only read (listed below) gets an audit context for its run, and the call, when it succeeded, one
 * entry per change the domains noted (or one for the call), written before the answer goes out. Hooks are attached
 * per route when routes are made, so inference routes carry none.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { bodySummary, currentAudit, entriesOfNotes, openAuditContext, type AuditContext, type AuditLog } from '../security/index.ts';
import type { AuditActor } from '../storage/index.ts';
import { isUploadedFile } from './body.ts';

/** POST routes that change nothing (they read, compute or run a check): not audited. */
const READ_ONLY = new Set([
  'POST /api/v1/features/historical',
  'POST /api/v1/features/online',
  'POST /api/v1/features/skew/check',
  'POST /api/v1/models/:name/explain',
  'POST /api/v1/monitoring/flush',
  'POST /api/v1/alerts/evaluate',
]);

const CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Whether a route's calls are audited. */
export function auditedRoute(method: string, url: string): boolean {
  return CHANGING.has(method) && url.startsWith('/api/v1/') && !READ_ONLY.has(`${method} ${url}`);
}

/** Collections whose first parameter names an object of that kind: `/api/v1/models/:name/…` → `model:NAME`. */
const KINDS: Record<string, string> = {
  models: 'model',
  deployments: 'deployment',
  keys: 'key',
  slos: 'slo',
  silences: 'silence',
  suppressions: 'suppression',
  jobs: 'job',
  features: 'feature-view',
  gamedays: 'gameday',
  items: 'review-item',
  budgets: 'deployment',
};

/** The object a route's call is about, from its first parameter (`model:bike-demand`), or the collection. */
export function objectOf(url: string, params: Record<string, string> | undefined): string {
  const parts = url.split('/').slice(3);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (!p.startsWith(':')) continue;
    const value = params?.[p.slice(1)] ?? '';
    const coll = parts[i - 1] ?? '';
    return `${KINDS[coll] ?? coll}:${value}`;
  }
  return parts.join('/');
}

export function actorOfRequest(req: FastifyRequest): AuditActor {
  const k = req.apiKey;
  return k ? { kind: 'key', id: k.id, role: k.role } : { kind: 'anonymous', id: '', role: '' };
}

declare module 'fastify' {
  interface FastifyRequest {
    audit?: AuditContext;
  }
}

/** Attaches the audit hooks to every audited route defined after this call. */
export function registerAuditHooks(app: FastifyInstance, audit: AuditLog): void {
  const enter = (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const ctx: AuditContext = { requestId: String(req.id), notes: [] };
    req.audit = ctx;
    // Everything after this hook — the guard, the body, the handler — runs in the context, open until the response
    // is closed (sent, failed or aborted by the client).
    const close = openAuditContext(ctx, () => done());
    reply.raw.once('close', close);
  };
  const write = async (req: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const ctx = req.audit ?? currentAudit();
    if (!ctx || reply.statusCode >= 400) return payload;
    req.audit = undefined;
    const url = req.routeOptions.url ?? req.url;
    const params = req.params as Record<string, string> | undefined;
    const q = req.query as Record<string, unknown> | undefined;
    const length = Number(req.headers['content-length']);
    // An upload streamed to disk is kept as its size: the registry notes the digest of what it stored.
    const body = isUploadedFile(req.body) ? { upload: true, bytes: Number.isFinite(length) ? length : null } : bodySummary(req.body, Number.isFinite(length) ? length : undefined);
    const base: Record<string, unknown> = {
      status: reply.statusCode,
      ...(params && Object.keys(params).length ? { params: { ...params } } : {}),
      ...(q && Object.keys(q).length ? { query: { ...q } } : {}),
      ...(body !== undefined ? { body } : {}),
    };
    await audit.record(entriesOfNotes(ctx, `${req.method} ${url}`, objectOf(url, params), Date.now(), base, actorOfRequest(req)));
    return payload;
  };
  app.addHook('onRoute', (r: RouteOptions) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    if (!methods.some((m) => auditedRoute(m, r.url))) return;
    const pre = r.onRequest === undefined ? [] : Array.isArray(r.onRequest) ? r.onRequest : [r.onRequest];
    r.onRequest = [enter, ...pre];
    const send = r.onSend === undefined ? [] : Array.isArray(r.onSend) ? r.onSend : [r.onSend];
    r.onSend = [...send, write];
  });
}
