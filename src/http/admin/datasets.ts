import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { WardenError } from '../../errors.ts';
import { DatasetExport, type DatasetExportDeps } from '../../lifecycle/index.ts';
import type { Guard } from '../auth.ts';
import { actorOf } from '../actor.ts';
import { intParam, optionalTimeParam } from '../query.ts';

/** Exports streaming at once per process: each holds a store reader and a batch in memory. */
export const MAX_CONCURRENT_EXPORTS = 2;

const time = z.union([z.number().int().nonnegative(), z.string().min(1).max(64)]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  try {
    return optionalTimeParam(v, 'time')!;
  } catch {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be epoch milliseconds or an ISO-8601 time, e.g. 2026-01-31T00:00:00Z' });
    return z.NEVER;
  }
});

const exportBody = z
  .object({
    model: z.string().min(1).max(256),
    versions: z.array(z.number().int().min(1).max(1e9)).min(1).max(1000).optional(),
    since: time.optional(),
    until: time.optional(),
    sources: z.array(z.enum(['human', 'system', 'model'])).min(1).max(3).optional(),
    format: z.enum(['csv', 'parquet']).default('csv'),
    segments: z.array(z.string().min(1).max(256)).max(20).optional(),
    features: z.array(z.string().min(1).max(300)).min(1).max(1000).optional(),
    featureKeys: z.record(z.string().min(1).max(128), z.string().min(1).max(300)).optional(),
    fullNames: z.boolean().optional(),
  })
  .strict();

function parseBody(body: unknown): z.infer<typeof exportBody> {
  const r = exportBody.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new WardenError('WARDEN_BAD_REQUEST', `${issue.path.join('.') || 'body'}: ${issue.message}`);
}

/**
 * Training sets from the prediction log (docs/lifecycle.md): `POST /api/v1/datasets` streams the file and records it
 * as lineage; the records are read back by id or listed newest first.
 */
export function registerDatasetRoutes(app: FastifyInstance, deps: DatasetExportDeps & { guard: Guard }): void {
  const { guard, metadata } = deps;
  let running = 0;

  app.post<{ Body: unknown }>('/api/v1/datasets', { onRequest: guard('deployer') }, async (req, reply) => {
    const body = parseBody(req.body);
    if (running >= MAX_CONCURRENT_EXPORTS) {
      throw new WardenError('WARDEN_RATE_LIMITED', `${MAX_CONCURRENT_EXPORTS} dataset exports are already streaming from this server; retry when one has finished`);
    }
    running++;
    let released = false;
    const release = () => {
      if (!released) running--;
      released = true;
    };
    let exp: DatasetExport;
    try {
      exp = await DatasetExport.open(deps, {
        ...body,
        ...(body.features ? { features: body.features } : {}),
        ...(body.featureKeys ? { featureKeys: body.featureKeys } : {}),
        actor: actorOf(req),
      });
    } catch (e) {
      release();
      throw e;
    }
    const { id } = exp.record;
    const stream = Readable.from(exp.chunks(), { objectMode: false });
    stream.once('close', release);
    stream.once('error', (err) => req.log.warn({ err, dataset: id }, 'dataset export failed while streaming'));
    // With joined features every row has been read: the count is known before the first byte.
    if (exp.rows !== undefined) void reply.header('x-warden-rows', String(exp.rows));
    return reply
      .type(exp.contentType)
      .header('x-warden-dataset-id', String(id))
      .header('content-disposition', `attachment; filename="${body.model.replace(/[^A-Za-z0-9._-]/g, '_')}-dataset-${id}.${body.format}"`)
      .send(stream);
  });

  app.get<{ Querystring: { model?: string; before?: string; limit?: string } }>('/api/v1/datasets', { onRequest: guard('viewer') }, async (req) => {
    const limit = intParam(req.query.limit, 'limit', 1, 1000) ?? 100;
    const before = intParam(req.query.before, 'before', 1, Number.MAX_SAFE_INTEGER);
    const datasets = await metadata.listDatasets({ limit, ...(req.query.model ? { model: req.query.model } : {}), ...(before !== undefined ? { beforeId: before } : {}) });
    return { datasets, nextCursor: datasets.length === limit ? String(datasets.at(-1)!.id) : null };
  });

  app.get<{ Params: { id: string } }>('/api/v1/datasets/:id', { onRequest: guard('viewer') }, async (req) => {
    const id = intParam(req.params.id, 'id', 1, Number.MAX_SAFE_INTEGER)!;
    const d = await metadata.getDataset(id);
    if (!d) throw new WardenError('WARDEN_NOT_FOUND', `no dataset ${id}; list them with GET /api/v1/datasets`);
    return d;
  });
}
