import type { FastifyReply, FastifyRequest } from 'fastify';
import { WardenError } from '../errors.ts';
import { roleAllows, type KeyEntry, type KeyRing, type QuotaCounter, type RateLimiter } from '../security/index.ts';
import type { ApiKeyRecord, Role } from '../storage/index.ts';
import { bodyPending, type UploadSlots } from './body.ts';

declare module 'fastify' {
  interface FastifyRequest {
    apiKey?: ApiKeyRecord;
  }
}

function presentedKey(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7).trim();
  const header = req.headers['x-api-key'];
  return typeof header === 'string' ? header.trim() : undefined;
}

/**
 * Whether a browser sent this request from another site's page. Browsers mark cross-site requests with
 * `sec-fetch-site` and `origin`; curl, the CLI and other scripts send neither. A page elsewhere can send a keyless
 * "simple" POST (a form, or fetch with mode no-cors) to a server on loopback, so with auth off such a request
 * would change state: it is refused instead (CSRF). Navigations and other GETs stay allowed: they change nothing.
 */
function crossSite(req: FastifyRequest): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return false;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site !== 'same-origin' && site !== 'none';
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

export type GuardHook = (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void;

/** The model (deployment) a request is about, read from its params; undefined when it names none. */
export type ScopeRule = (req: FastifyRequest) => string | undefined;

export interface GuardOptions {
  /** The route takes uploads, so once the caller is let in the guard takes one of `server.maxUploads` slots. */
  upload?: boolean;
  /**
   * How the route treats keys scoped to models: a rule naming the one model it is about (a scoped key outside it is
   * refused), or `filtered` (the route answers with the key's models only). Absent: the route is not about one
   * model and refuses scoped keys, so a new route is closed to them until it says otherwise.
   */
  scope?: ScopeRule | 'filtered';
  /** Inference: the deployment's rate limit applies too (to the model the scope rule names). */
  deploymentLimit?: boolean;
}
export type Guard = (role: Role, opts?: GuardOptions) => GuardHook;

/**
 * The model of a model or deployment route: `:name`, or the `{name}:predict` segment of the `:predict` routes.
 * Reads req.params, which Fastify has parsed by onRequest, and allocates only for `:predict`.
 */
export const modelOfRequest: ScopeRule = (req) => {
  const p = req.params as { name?: string; target?: string };
  if (p.name !== undefined) return p.name;
  const t = p.target;
  return t !== undefined && t.endsWith(':predict') ? t.slice(0, -8) : undefined;
};

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Route guard factory. Guards are `onRequest` hooks: they run before a byte of the body is read, so a caller without
 * the right key costs the server nothing but the headers. With auth off (allowed on loopback only) every route is
 * open; with it on, each route names the least role it needs, and a scoped key reaches only its models. Rate limits
 * come after the key is accepted (a refused key spends no token). An upload route's guard then takes an upload slot.
 */
/** Cost caps as the guard reads them (cost/CostMeter). */
export interface BudgetCaps {
  capOf(deployment: string): { action: 'throttle' | 'route'; version?: number; period: 'day' | 'month'; until: number } | undefined;
  countRefused(deployment: string): void;
}

/** The version or alias an inference request names (`/versions/:version/…`, `/versions/{v}:predict`), if any. */
function versionOfRequest(req: FastifyRequest): string | undefined {
  const p = req.params as { name?: string; version?: string; target?: string };
  if (p.version !== undefined) return p.version;
  return p.name !== undefined && p.target !== undefined && p.target.endsWith(':predict') ? p.target.slice(0, -8) : undefined;
}

export function makeGuard(keys: KeyRing, required: boolean, uploads: UploadSlots, limits?: RateLimiter, caps?: BudgetCaps, quotas?: QuotaCounter): Guard {
  const limited = (reply: FastifyReply, wait: number, what: string): WardenError => {
    const l = limits?.lastLimit;
    void reply.header('retry-after', String(wait));
    return new WardenError(
      'WARDEN_RATE_LIMITED',
      `${what} is over its rate limit${l ? ` of ${l.rate}/s (burst ${l.burst}${l.size !== l.burst ? `, ${l.perMs * 1000}/s and ${l.size} on this replica` : ''})` : ''}; retry after ${wait} s`,
    );
  };
  // A deployment past its budget: throttled, or (a route cap) open only to requests that name no other version.
  const overBudget = (req: FastifyRequest, reply: FastifyReply, model: string, now: number): WardenError | undefined => {
    const cap = caps!.capOf(model);
    if (cap === undefined) return undefined;
    const named = cap.action === 'route' ? versionOfRequest(req) : undefined;
    if (cap.action === 'route' && (named === undefined || named === String(cap.version))) return undefined;
    const wait = Math.max(1, Math.ceil((cap.until - now) / 1000));
    void reply.header('retry-after', String(wait));
    caps!.countRefused(model);
    const budget = cap.period === 'day' ? 'daily' : 'monthly';
    return new WardenError(
      'WARDEN_BUDGET_EXCEEDED',
      cap.action === 'route'
        ? `deployment ${model} has spent its ${budget} cost budget and serves only version ${cap.version} until ${iso(cap.until)}; name no version (or version ${cap.version}), or raise the budget (warden cost budget ${model} …)`
        : `deployment ${model} has spent its ${budget} cost budget and is throttled until ${iso(cap.until)}; retry then, or raise the budget (warden cost budget ${model} …)`,
    );
  };
  const overQuota = (reply: FastifyReply, keyId: string | undefined, model: string | undefined, now: number): WardenError | undefined => {
    const r = quotas!.admit(keyId, model, now);
    if (r === undefined) return undefined;
    void reply.header('retry-after', String(r.wait));
    return new WardenError(
      'WARDEN_QUOTA_EXCEEDED',
      `${r.scope === 'key' ? 'key' : 'deployment'} ${r.name} has used its quota of ${r.limit} inference requests this ${r.period === 'day' ? 'UTC day' : 'month'}; retry after ${r.wait} s, when the ${r.period} starts again, or ask an admin to raise it (PUT /api/v1/quotas/${r.scope}/${r.name})`,
    );
  };
  // Inference: the deployment's budget, rate limit and quota, then the quotas count the request (key's and
  // deployment's together, so a request refused by one is counted by neither).
  const limitDeployment = (req: FastifyRequest, reply: FastifyReply, scope: ScopeRule | 'filtered' | undefined, now: number, keyId?: string): WardenError | undefined => {
    const model = typeof scope === 'function' ? scope(req) : undefined;
    if (model !== undefined) {
      // The budget first: a refused request spends no token.
      const over = caps !== undefined ? overBudget(req, reply, model, now) : undefined;
      if (over !== undefined) return over;
      if (limits !== undefined) {
        const wait = limits.takeDeployment(model, now);
        if (wait > 0) return limited(reply, wait, `deployment ${model}`);
      }
    }
    return quotas !== undefined && quotas.active ? overQuota(reply, keyId, model, now) : undefined;
  };
  const decide = (req: FastifyRequest, reply: FastifyReply, role: Role, o: GuardOptions, entry: KeyEntry | undefined): WardenError | undefined => {
    if (!entry) return new WardenError('WARDEN_UNAUTHENTICATED', 'API key is unknown or revoked');
    const key = entry.key;
    const now = keys.now();
    if (now >= entry.until) {
      return new WardenError(
        'WARDEN_KEY_EXPIRED',
        entry.ends === 'rotated'
          ? `this secret of key ${key.id} was replaced by a rotation and stopped working at ${iso(entry.until)}; use the new secret`
          : `API key ${key.id} expired at ${iso(entry.until)}; ask an admin for a new key ('warden keys create')`,
      );
    }
    req.apiKey = key;
    if (required) {
      if (!roleAllows(key.role, role)) return new WardenError('WARDEN_FORBIDDEN', `key ${key.id} has role ${key.role}; this route needs ${role} or above`);
      const scopes = entry.scopes;
      if (scopes !== undefined && o.scope !== 'filtered') {
        const model = o.scope === undefined ? undefined : o.scope(req);
        if (model === undefined || !scopes.has(model)) {
          return new WardenError(
            'WARDEN_FORBIDDEN',
            model === undefined
              ? `key ${key.id} is scoped to models ${[...scopes].join(', ')}; this route is not about one model, so it needs an unscoped key`
              : `key ${key.id} is scoped to models ${[...scopes].join(', ')}, not ${JSON.stringify(model)}`,
          );
        }
      }
    }
    keys.touch(key.id, now);
    if (limits !== undefined) {
      const wait = limits.takeKey(key.id, now);
      if (wait > 0) return limited(reply, wait, `key ${key.id}`);
    }
    if (o.deploymentLimit && (limits !== undefined || caps !== undefined || quotas !== undefined)) {
      const err = limitDeployment(req, reply, o.scope, now, key.id);
      if (err) return err;
    }
    return o.upload === true ? uploads.takeUploadSlot(req, reply) : undefined;
  };
  const finish = (req: FastifyRequest, reply: FastifyReply, err: WardenError | undefined, done: (err?: Error) => void) => {
    // The body of a refused request is never read: close the connection rather than drain it for keep-alive.
    if (err && bodyPending(req)) void reply.header('connection', 'close');
    done(err);
  };
  // Callback-style hooks: on the inference route an async hook would add a promise per request. The options are fixed
  // when the route is made: reading req.routeOptions would build an object per request.
  return (role: Role, opts: GuardOptions = {}) => {
    const o: GuardOptions = { ...opts };
    return (req, reply, done) => {
      const secret = presentedKey(req);
      if (!secret) {
        const err = required
          ? new WardenError('WARDEN_UNAUTHENTICATED', `this route needs an API key with role ${role} or above; send "authorization: Bearer <key>"`)
          : crossSite(req)
            ? new WardenError(
                'WARDEN_FORBIDDEN',
                "a page on another site sent this request; with auth off Warden takes changes only from its own dashboard and from clients that are not browsers (curl, the CLI); send an API key or turn auth on",
              )
            : ((o.deploymentLimit && (limits !== undefined || caps !== undefined || quotas !== undefined) ? limitDeployment(req, reply, o.scope, keys.now()) : undefined) ?? (o.upload ? uploads.takeUploadSlot(req, reply) : undefined));
        finish(req, reply, err, done);
        return;
      }
      const entry = keys.verify(secret);
      if (entry) {
        finish(req, reply, decide(req, reply, role, o, entry), done);
        return;
      }
      // Only an unknown key pays for a store read; known keys stay on the synchronous path.
      keys.verifyFresh(secret).then(
        (fresh) => finish(req, reply, decide(req, reply, role, o, fresh), done),
        (e: unknown) => done(e as Error),
      );
    };
  };
}
