import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { DeploymentService } from '../../rollouts/index.ts';
import { WardenError } from '../../errors.ts';
import type { Registry } from '../../registry/index.ts';
import type { ModelTable } from '../../serving/index.ts';
import { actorOf } from '../actor.ts';
import type { Guard } from '../auth.ts';
import { isUploadedFile, requireContentType, withUploadSlot } from '../body.ts';

const ONNX_BODY_HINT = 'send the .onnx file as the body with content-type: application/octet-stream';

export interface ModelRouteDeps {
  registry: Registry;
  table: ModelTable;
  guard: Guard;
  /** Largest model file accepted by push (server.uploadLimitBytes). */
  uploadLimitBytes: number;
  /** Shows the deployment's state beside its aliases. */
  deployments?: DeploymentService;
}

function versionNumber(raw: string): number {
  if (!/^[0-9]{1,9}$/.test(raw)) throw new WardenError('WARDEN_BAD_REQUEST', `version must be a positive integer, got ${JSON.stringify(raw.slice(0, 40))}`);
  return Number(raw);
}

function parseJsonHeader(value: unknown, header: string): unknown {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new WardenError('WARDEN_BAD_REQUEST', `header ${header} must appear once`);
  try {
    return JSON.parse(value);
  } catch (e) {
    throw new WardenError('WARDEN_BAD_REQUEST', `header ${header} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Registry REST API under /api/v1: models, versions (push), aliases. */
export function registerModelRoutes(app: FastifyInstance, deps: ModelRouteDeps): void {
  const { registry, table, guard } = deps;

  // A scoped key sees its own models only (docs/security.md#scopes).
  app.get('/api/v1/models', { onRequest: guard('viewer', { scope: 'filtered' }) }, async (req) => {
    const scopes = req.apiKey?.scopes;
    const models = (await registry.listModels()).filter((m) => scopes === undefined || scopes.includes(m.name));
    const out = [];
    for (const m of models) {
      const versions = await registry.listVersions(m.name);
      const aliases = await registry.listAliases(m.name);
      out.push({ ...m, latestVersion: versions.at(-1)?.version ?? null, versionCount: versions.length, aliases });
    }
    return { models: out };
  });

  app.post<{ Body: { name?: unknown; description?: unknown } }>('/api/v1/models', { onRequest: guard('deployer') }, async (req, reply) => {
    const body = req.body ?? {};
    if (typeof body.name !== 'string') throw new WardenError('WARDEN_BAD_REQUEST', 'body needs "name" (string)');
    if (body.description !== undefined && typeof body.description !== 'string') throw new WardenError('WARDEN_BAD_REQUEST', '"description" must be a string');
    const m = await registry.createModel(body.name, body.description);
    return reply.status(201).send(m);
  });

  app.get<{ Params: { name: string } }>('/api/v1/models/:name', { onRequest: guard('viewer') }, async (req) => {
    const m = await registry.getModel(req.params.name);
    return { ...m, versions: await registry.listVersions(m.name), aliases: await registry.listAliases(m.name) };
  });

  app.delete<{ Params: { name: string }; Querystring: { force?: string } }>(
    '/api/v1/models/:name',
    { onRequest: guard('admin') },
    async (req, reply) => {
      await registry.deleteModel(req.params.name, { force: req.query.force === 'true' });
      await table.settled();
      return reply.status(204).send();
    },
  );

  app.get<{ Params: { name: string } }>('/api/v1/models/:name/versions', { onRequest: guard('viewer') }, async (req) => ({
    versions: await registry.listVersions(req.params.name),
  }));

  // The ONNX file is the raw body; metadata and features ride in JSON headers so the upload
  // streams as bytes with no base64 or multipart overhead. It streams to a temp file (the route's
  // `bodyToFile`), so a slow or large upload holds disk, not memory, until it has fully arrived.
  app.post<{ Params: { name: string }; Querystring: { alias?: string | string[] } }>(
    '/api/v1/models/:name/versions',
    {
      onRequest: [guard('deployer', { upload: true }), requireContentType(['application/octet-stream'], ONNX_BODY_HINT)],
      bodyLimit: deps.uploadLimitBytes,
      config: { upload: true, bodyToFile: true },
    },
    async (req, reply) =>
      withUploadSlot(req, async () => {
        if (!isUploadedFile(req.body)) {
          throw new WardenError('WARDEN_UNSUPPORTED_MEDIA_TYPE', ONNX_BODY_HINT);
        }
        const aliasParam = req.query.alias;
        const aliases = aliasParam === undefined ? [] : Array.isArray(aliasParam) ? aliasParam : aliasParam.split(',').filter(Boolean);
        const description = req.headers['x-warden-description'];
        const result = await registry.push({
          model: req.params.name,
          bytes: await readFile(req.body.path),
          metadata: parseJsonHeader(req.headers['x-warden-metadata'], 'x-warden-metadata'),
          features: parseJsonHeader(req.headers['x-warden-features'], 'x-warden-features'),
          aliases,
          actor: actorOf(req),
          ...(typeof description === 'string' ? { description } : {}),
        });
        await table.settled();
        return reply.status(result.created ? 201 : 200).send(result);
      }),
  );

  app.get<{ Params: { name: string; version: string } }>('/api/v1/models/:name/versions/:version', { onRequest: guard('viewer') }, async (req) =>
    registry.resolve(req.params.name, req.params.version),
  );

  app.delete<{ Params: { name: string; version: string } }>(
    '/api/v1/models/:name/versions/:version',
    { onRequest: guard('admin') },
    async (req, reply) => {
      await registry.deleteVersion(req.params.name, versionNumber(req.params.version));
      await table.settled();
      return reply.status(204).send();
    },
  );

  app.get<{ Params: { name: string } }>('/api/v1/models/:name/aliases', { onRequest: guard('viewer') }, async (req) => {
    const aliases = await registry.listAliases(req.params.name);
    // The aliases show what the deployment serves: champion is its stable version, and a rollout's candidate beside it.
    const d = deps.deployments ? await deps.deployments.get(req.params.name) : undefined;
    return { aliases, ...(d ? { deployment: { stable: d.stable?.version ?? null, strategy: d.strategy, candidate: d.candidate } } : {}) };
  });

  app.put<{ Params: { name: string; alias: string }; Body: { version?: unknown } }>(
    '/api/v1/models/:name/aliases/:alias',
    { onRequest: guard('deployer') },
    async (req) => {
      const v = req.body?.version;
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new WardenError('WARDEN_BAD_REQUEST', 'body needs {"version": <integer>}');
      const record = await registry.setAlias(req.params.name, req.params.alias, v, { actor: actorOf(req), reason: `PUT alias ${req.params.alias}` });
      await table.settled();
      return record;
    },
  );

  app.delete<{ Params: { name: string; alias: string } }>(
    '/api/v1/models/:name/aliases/:alias',
    { onRequest: guard('deployer') },
    async (req, reply) => {
      await registry.deleteAlias(req.params.name, req.params.alias, { actor: actorOf(req) });
      await table.settled();
      return reply.status(204).send();
    },
  );
}
