import type { FastifyReply, FastifyRequest } from 'fastify';
import { WardenError } from '../errors.ts';
import { roleAllows, type KeyRing } from '../security/index.ts';
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
/** `upload`: the route takes uploads, so once the caller is let in the guard takes one of `server.maxUploads` slots. */
export type Guard = (role: Role, opts?: { upload?: boolean }) => GuardHook;

/**
 * Route guard factory. Guards are `onRequest` hooks: they run before a byte of the body is read, so a caller without
 * the right key costs the server nothing but the headers. With auth off (allowed on loopback only) every route is
 * open; with it on, each route names the least role it needs. An upload route's guard then takes an upload slot.
 */
export function makeGuard(keys: KeyRing, required: boolean, uploads: UploadSlots): Guard {
  const decide = (req: FastifyRequest, reply: FastifyReply, role: Role, upload: boolean, key: ApiKeyRecord | undefined): WardenError | undefined => {
    if (!key) return new WardenError('WARDEN_UNAUTHENTICATED', 'API key is unknown or revoked');
    req.apiKey = key;
    if (required && !roleAllows(key.role, role)) {
      return new WardenError('WARDEN_FORBIDDEN', `key ${key.id} has role ${key.role}; this route needs ${role} or above`);
    }
    return upload ? uploads.takeUploadSlot(req, reply) : undefined;
  };
  const finish = (req: FastifyRequest, reply: FastifyReply, err: WardenError | undefined, done: (err?: Error) => void) => {
    // The body of a refused request is never read: close the connection rather than drain it for keep-alive.
    if (err && bodyPending(req)) void reply.header('connection', 'close');
    done(err);
  };
  // Callback-style hooks: on the inference route an async hook would add a promise per request. Whether the route
  // takes uploads is fixed when the route is made: reading req.routeOptions would build an object per request.
  return (role: Role, opts: { upload?: boolean } = {}) => {
    const upload = opts.upload === true;
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
            : upload
            ? uploads.takeUploadSlot(req, reply)
            : undefined;
        finish(req, reply, err, done);
        return;
      }
      const key = keys.verify(secret);
      if (key) {
        finish(req, reply, decide(req, reply, role, upload, key), done);
        return;
      }
      // Only an unknown key pays for a store read; known keys stay on the synchronous path.
      keys.verifyFresh(secret).then(
        (fresh) => finish(req, reply, decide(req, reply, role, upload, fresh), done),
        (e: unknown) => done(e as Error),
      );
    };
  };
}
