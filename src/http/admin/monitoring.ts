import type { FastifyInstance, FastifyRequest } from 'fastify';
import { WardenError } from '../../errors.ts';
import { formatOf, readTable, tableFromJson, type MonitoringService, type ReferenceSource } from '../../monitoring/index.ts';
import { sha256Hex } from '../../storage/index.ts';
import type { PredictionLog } from '../../telemetry/index.ts';
import type { Guard } from '../auth.ts';
import { requireContentType, withUploadSlot } from '../body.ts';

const REFERENCE_TYPES = ['text/csv', 'application/vnd.apache.parquet', 'application/x-parquet', 'application/octet-stream', 'application/json'];
const REFERENCE_HINT = 'send reference data as text/csv, application/vnd.apache.parquet or application/json';

interface VersionParams {
  name: string;
  version: string;
}

function timeValue(raw: unknown, name: string): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' ? (/^[0-9]+$/.test(raw) ? Number(raw) : Date.parse(raw)) : NaN;
  if (!Number.isFinite(n)) throw new WardenError('WARDEN_BAD_REQUEST', `${name} must be epoch milliseconds or an ISO-8601 time`);
  return n;
}

function optionalTime(raw: unknown, name: string): number | undefined {
  return raw === undefined || raw === '' ? undefined : timeValue(raw, name);
}

function monitoringOf(m: MonitoringService | undefined): MonitoringService {
  if (!m) throw new WardenError('WARDEN_CONFLICT', 'monitoring is disabled on this server (monitoring.enabled: false)');
  return m;
}

function headerJson(req: FastifyRequest, name: string): unknown {
  const v = req.headers[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new WardenError('WARDEN_BAD_REQUEST', `header ${name} must appear once`);
  try {
    return JSON.parse(v);
  } catch (e) {
    throw new WardenError('WARDEN_BAD_REQUEST', `header ${name} is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * Monitoring API: register a reference per model version (CSV, Parquet or JSON rows uploaded, or a time
 * range of logged traffic), read it back, list evaluated windows, and flush open windows.
 */
export function registerMonitoringRoutes(
  app: FastifyInstance,
  deps: { monitoring?: MonitoringService; log?: PredictionLog; guard: Guard; referenceLimitBytes: number },
): void {
  const base = '/api/v1/models/:name/versions/:version';

  // Reference files are parsed in memory, so they have their own, lower limit than model files and hold an upload slot.
  const referenceRoute = {
    onRequest: [deps.guard('deployer', { upload: true }), requireContentType(REFERENCE_TYPES, REFERENCE_HINT)],
    bodyLimit: deps.referenceLimitBytes,
    config: { upload: true },
  };
  app.put<{ Params: VersionParams }>(`${base}/reference`, referenceRoute, async (req, reply) =>
    withUploadSlot(req, async () => {
      const monitoring = monitoringOf(deps.monitoring);
      const type = String(req.headers['content-type'] ?? '');
      let source: ReferenceSource;
      let config: unknown;
      if (Buffer.isBuffer(req.body)) {
        const format = formatOf(type) ?? (type.includes('octet-stream') ? 'parquet' : undefined);
        if (!format) throw new WardenError('WARDEN_UNSUPPORTED_MEDIA_TYPE', REFERENCE_HINT);
        source = { kind: 'table', table: await readTable(req.body, format), name: String(req.headers['x-warden-filename'] ?? `upload.${format}`), sha256: sha256Hex(req.body) };
        config = headerJson(req, 'x-warden-monitoring');
      } else {
        const body = req.body as { rows?: unknown; columns?: unknown; traffic?: { since?: unknown; until?: unknown }; config?: unknown } | undefined;
        if (!body || typeof body !== 'object' || Array.isArray(body) || (body.rows === undefined && body.columns === undefined && body.traffic === undefined)) {
          throw new WardenError('WARDEN_BAD_REQUEST', 'body must be {"rows": [...]} , {"columns": {...}} or {"traffic": {"since", "until"}}, with optional "config"');
        }
        const headerConfig = headerJson(req, 'x-warden-monitoring');
        if (headerConfig !== undefined && body.config !== undefined) {
          throw new WardenError('WARDEN_BAD_REQUEST', 'monitoring config given both in "config" and in header x-warden-monitoring; give it once');
        }
        // The header is documented for file bodies; honour it with JSON bodies too rather than ignore it.
        config = body.config ?? headerConfig;
        if (body.traffic) {
          source = { kind: 'traffic', since: timeValue(body.traffic.since, 'traffic.since'), until: timeValue(body.traffic.until, 'traffic.until') };
        } else {
          const table = tableFromJson(body.rows !== undefined ? body.rows : { columns: body.columns });
          source = { kind: 'table', table, name: 'request.json' };
        }
      }
      const record = await monitoring.setReference(req.params.name, req.params.version, source, config);
      return reply.status(201).send(summary(record));
    }),
  );

  app.get<{ Params: VersionParams }>(`${base}/reference`, { onRequest: deps.guard('viewer') }, async (req) => {
    const monitoring = monitoringOf(deps.monitoring);
    const v = await resolveVersion(monitoring, req.params);
    const ref = monitoring.reference(req.params.name, v);
    if (!ref) throw new WardenError('WARDEN_NOT_FOUND', `model ${req.params.name} v${v} has no monitoring reference; register one with PUT ${base}/reference`);
    return { ...summary(ref.record), schema: ref.schema, profile: { rows: ref.profile.rows, columns: ref.profile.columns } };
  });

  app.delete<{ Params: VersionParams }>(`${base}/reference`, { onRequest: deps.guard('deployer') }, async (req, reply) => {
    const monitoring = monitoringOf(deps.monitoring);
    await monitoring.deleteReference(req.params.name, await resolveVersion(monitoring, req.params));
    return reply.status(204).send();
  });

  app.get<{ Params: VersionParams; Querystring: { since?: string; until?: string; limit?: string; summary?: string; order?: string } }>(
    `${base}/monitoring/windows`,
    { onRequest: deps.guard('viewer') },
    async (req, reply) => {
      const monitoring = monitoringOf(deps.monitoring);
      const v = await resolveVersion(monitoring, req.params);
      const since = optionalTime(req.query.since, 'since');
      const until = optionalTime(req.query.until, 'until');
      const s = req.query.summary;
      if (s !== undefined && s !== '' && s !== 'true' && s !== 'false') throw new WardenError('WARDEN_BAD_REQUEST', 'summary must be true or false');
      const summary = s === 'true';
      const o = req.query.order;
      if (o !== undefined && o !== '' && o !== 'oldest' && o !== 'newest') throw new WardenError('WARDEN_BAD_REQUEST', 'order must be oldest or newest (newest with limit=1 is the latest window)');
      const order = o === 'newest' ? 'newest' : 'oldest';
      // A year of hourly summaries (8,760) fits one call; full windows carry histograms and stay at 1000 by default.
      const limit = req.query.limit === undefined ? (summary ? 10_000 : 1000) : Number(req.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new WardenError('WARDEN_BAD_REQUEST', 'limit must be an integer in [1, 10000]');
      const q = { ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}), limit, order } as const;
      // Stored summaries are JSON already: sent as text, not parsed and encoded again (a year is 8,760 of them).
      if (summary) return reply.type('application/json; charset=utf-8').send(`{"windows":${await monitoring.summariesJson(req.params.name, v, q)}}`);
      const windows = await monitoring.results(req.params.name, v, q);
      return { windows };
    },
  );

  app.post('/api/v1/monitoring/flush', { onRequest: deps.guard('deployer') }, async () => {
    const monitoring = monitoringOf(deps.monitoring);
    // Queued predictions first, so they reach their windows before those close.
    await deps.log?.flush();
    await monitoring.tick({ flush: true });
    return { flushed: true };
  });
}

async function resolveVersion(monitoring: MonitoringService, p: VersionParams): Promise<number> {
  return monitoring.resolveVersion(p.name, p.version);
}

function summary(r: { model: string; version: number; source: Record<string, unknown>; createdAt: number; config: unknown; schema: unknown }) {
  const { layout: _layout, ...source } = r.source;
  const schema = r.schema as { columns: { name: string; kind: string; role: string }[] };
  return {
    model: r.model,
    version: r.version,
    source,
    createdAt: r.createdAt,
    config: r.config,
    columns: schema.columns.map((c) => ({ name: c.name, kind: c.kind, role: c.role })),
  };
}
