import type { FastifyReply, FastifyRequest } from 'fastify';
import { WardenError } from '../errors.ts';
import { roleAllows, type KeyRing } from '../security/index.ts';
import type { ApiKeyRecord, Role } from '../storage/index.ts';

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

export type GuardHook = (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void;
export type Guard = (role: Role) => GuardHook | GuardHook[];

/**
 * Route guard factory. With auth off (allowed on loopback only) every route is open; with it on,
 * each route names the least role it needs.
 */
export function makeGuard(keys: KeyRing, required: boolean): Guard {
  const check = (req: FastifyRequest, role: Role): WardenError | undefined => {
    const secret = presentedKey(req);
    if (!secret) {
      if (!required) return undefined;
      return new WardenError('WARDEN_UNAUTHENTICATED', `this route needs an API key with role ${role} or above; send "authorization: Bearer <key>"`);
    }
    const key = keys.verify(secret);
    if (!key) return new WardenError('WARDEN_UNAUTHENTICATED', 'API key is unknown or revoked');
    req.apiKey = key;
    if (required && !roleAllows(key.role, role)) {
      return new WardenError('WARDEN_FORBIDDEN', `key ${key.id} has role ${key.role}; this route needs ${role} or above`);
    }
    return undefined;
  };
  // Callback-style hooks: on the inference route an async hook would add a promise per request.
  return (role: Role) => (req, _reply, done) => done(check(req, role));
}
