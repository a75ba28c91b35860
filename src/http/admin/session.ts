import type { FastifyInstance } from 'fastify';
import { ROLES, roleAllows } from '../../security/index.ts';
import type { Role } from '../../storage/index.ts';
import type { Guard } from '../auth.ts';

/**
 * `GET /api/v1/session`: who the presented key is and what its role may do, so a client (the dashboard, a
 * script) can show only the actions it is allowed to take. With auth off every action is open.
 */
export function registerSessionRoutes(app: FastifyInstance, deps: { guard: Guard; authRequired: boolean }): void {
  // Open to scoped keys: a client needs to learn which models its key reaches.
  app.get('/api/v1/session', { onRequest: deps.guard('viewer', { scope: 'filtered' }) }, async (req) => {
    const k = req.apiKey;
    // With auth off a request without a key may do everything; one with a key is still checked (see makeGuard).
    const role: Role = k && deps.authRequired ? k.role : 'admin';
    return {
      authRequired: deps.authRequired,
      key: k ? { id: k.id, name: k.name, role: k.role, scopes: k.scopes ?? null, expiresAt: k.expiresAt ?? null } : null,
      role,
      can: Object.fromEntries(ROLES.map((r) => [r, roleAllows(role, r)])) as Record<Role, boolean>,
    };
  });
}
