import type { FastifyInstance } from 'fastify';
import type { Registry } from '../../registry/index.ts';
import type { Privacy } from '../../security/index.ts';
import type { ModelSignature } from '../../storage/index.ts';
import type { Guard } from '../auth.ts';

/**
 * The sensitive-input rules of each deployment (docs/security.md#sensitive-inputs), from config, with the names its
 * stable version (champion, else the latest) does not have: a misspelt feature is protected by nothing.
 */
export function registerPrivacyRoutes(app: FastifyInstance, deps: { privacy: Privacy; registry: Registry; guard: Guard }): void {
  app.get('/api/v1/privacy', { onRequest: deps.guard('admin') }, async () => {
    const signatures = new Map<string, ModelSignature | undefined>();
    for (const d of deps.privacy.describe(() => undefined)) {
      const v = await deps.registry.resolve(d.deployment, 'champion').catch(() => deps.registry.resolve(d.deployment, 'latest').catch(() => undefined));
      signatures.set(d.deployment, v?.signature);
    }
    return { deployments: deps.privacy.describe((m) => signatures.get(m)), hashKeySet: deps.privacy.hasKey() };
  });
}
