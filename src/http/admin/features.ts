import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import type { FeatureService } from '../../features/index.ts';
import type { Guard } from '../auth.ts';
import { actorOf } from '../actor.ts';
import { isUploadedFile, requireContentType, withUploadSlot } from '../body.ts';

const CSV_HINT = 'send the entity rows as CSV (content-type text/csv): a header with the join keys and the time column, one row per line';

function flag(raw: string | undefined, name: string): boolean {
  if (raw === undefined || raw === '' || raw === 'false' || raw === '0') return false;
  if (raw === 'true' || raw === '1') return true;
  throw new WardenError('WARDEN_BAD_REQUEST', `${name} must be true or false`);
}

/**
 * The feature repository (docs/features.md): its definitions (read, replaced), rows pushed to push-fed views, and
 * point-in-time historical retrieval streamed as CSV.
 */
export function registerFeatureRoutes(app: FastifyInstance, deps: { features: FeatureService; guard: Guard; uploadLimitBytes: number }): void {
  const { features, guard } = deps;

  app.get('/api/v1/features', { onRequest: guard('viewer') }, async () => features.view());

  app.put<{ Body: unknown }>('/api/v1/features', { onRequest: guard('deployer') }, async (req) => features.apply(req.body, actorOf(req)));

  app.post<{ Params: { view: string }; Body: unknown }>('/api/v1/features/:view/push', { onRequest: guard('deployer') }, async (req) => {
    const body = req.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body) || !('rows' in body)) {
      throw new WardenError('WARDEN_BAD_REQUEST', 'body must be {"rows": [{join keys…, event time, created time?, features…}]}');
    }
    const extra = Object.keys(body).filter((k) => k !== 'rows');
    if (extra.length) throw new WardenError('WARDEN_BAD_REQUEST', `${extra[0]!.slice(0, 64)}: unknown field; the body is {"rows": [...]}`);
    return features.push(req.params.view, (body as { rows: unknown }).rows);
  });

  // The entity rows stream to a temp file as they arrive (like a model upload), so a million rows hold disk, not memory.
  app.post<{ Querystring: { features?: string; timestampColumn?: string; fullNames?: string }; Body: unknown }>(
    '/api/v1/features/historical',
    {
      onRequest: [guard('deployer', { upload: true }), requireContentType(['text/csv'], CSV_HINT)],
      bodyLimit: deps.uploadLimitBytes,
      config: { upload: true, bodyToFile: true },
    },
    async (req, reply) =>
      withUploadSlot(req, async () => {
        if (!isUploadedFile(req.body)) throw new WardenError('WARDEN_UNSUPPORTED_MEDIA_TYPE', CSV_HINT);
        const refs = (req.query.features ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        if (refs.length > 1000) throw new WardenError('WARDEN_BAD_REQUEST', 'features: at most 1000 references in one request');
        const run = await features.historical({
          entities: { kind: 'csv', path: req.body.path, timestampColumn: req.query.timestampColumn || 'event_timestamp' },
          features: refs,
          fullNames: flag(req.query.fullNames, 'fullNames'),
        });
        // A client that goes away stops the join (and frees its slot and files).
        reply.raw.once('close', () => run.cancel());
        const stream = Readable.from(run.chunks(), { objectMode: false });
        stream.once('error', (err) => req.log.warn({ err }, 'historical retrieval failed while streaming'));
        return reply
          .type('text/csv; charset=utf-8')
          .header('x-warden-rows', String(run.rows))
          .header('content-disposition', 'attachment; filename="historical-features.csv"')
          .send(stream);
      }),
  );
}
