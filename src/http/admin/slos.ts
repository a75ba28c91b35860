import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import type { SloService } from '../../slo/index.ts';
import type { Guard } from '../auth.ts';

interface NameParams {
  name: string;
}

function sloOf(s: SloService | undefined): SloService {
  if (!s) throw new WardenError('WARDEN_CONFLICT', 'SLOs are disabled on this server (slo.enabled: false)');
  return s;
}

function timeValue(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(n)) throw new WardenError('WARDEN_BAD_REQUEST', `${name} must be epoch milliseconds or an ISO-8601 time`);
  return n;
}

/**
 * SLO API: definitions (stored in slo.yaml), status (SLI, error budget, burn rates per window) and the recorded
 * good/total series. See docs/slo.md.
 */
export function registerSloRoutes(app: FastifyInstance, deps: { slo?: SloService; guard: Guard }): void {
  app.get('/api/v1/slos', { onRequest: deps.guard('viewer') }, async () => {
    const slo = sloOf(deps.slo);
    return { slos: slo.list(), file: slo.path, timeScale: slo.timeScale };
  });

  app.get<{ Params: NameParams }>('/api/v1/slos/:name', { onRequest: deps.guard('viewer') }, async (req) => sloOf(deps.slo).get(req.params.name));

  app.put<{ Params: NameParams }>('/api/v1/slos/:name', { onRequest: deps.guard('deployer') }, async (req, reply) => {
    const { slo, created } = await sloOf(deps.slo).put(req.params.name, req.body);
    return reply.status(created ? 201 : 200).send(slo);
  });

  app.delete<{ Params: NameParams }>('/api/v1/slos/:name', { onRequest: deps.guard('deployer') }, async (req, reply) => {
    await sloOf(deps.slo).remove(req.params.name);
    return reply.status(204).send();
  });

  app.get<{ Params: NameParams }>('/api/v1/slos/:name/status', { onRequest: deps.guard('viewer') }, async (req) => sloOf(deps.slo).status(req.params.name));

  app.get<{ Params: NameParams; Querystring: { since?: string; until?: string } }>(
    '/api/v1/slos/:name/series',
    { onRequest: deps.guard('viewer') },
    async (req) => {
      const slo = sloOf(deps.slo);
      const def = slo.get(req.params.name);
      const now = Date.now();
      const until = timeValue(req.query.until, 'until') ?? now + 1;
      const since = timeValue(req.query.since, 'since') ?? until - slo.lookbackMs(def);
      if (since > until) throw new WardenError('WARDEN_BAD_REQUEST', 'since must not be after until');
      return { slo: def.name, bucketMs: slo.bucketMs, points: await slo.series(def.name, { since, until }) };
    },
  );
}
