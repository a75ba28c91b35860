import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import type { Registry } from '../../registry/index.ts';
import { codeStatus } from '../../slo/index.ts';
import type { EventStore, TrafficStep } from '../../storage/index.ts';
import { STEP_MS, trafficReport, type TrafficAggregator } from '../../telemetry/index.ts';
import type { Guard } from '../auth.ts';
import { optionalTimeParam } from '../query.ts';

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/** Most points one answer may hold: the range divided by the step. */
export const TRAFFIC_MAX_POINTS = 50_000;
const DAY = 86_400_000;

interface TrafficQuerystring {
  since?: string;
  until?: string;
  step?: string;
  version?: string;
}

/**
 * GET /api/v1/deployments/{name}/traffic: the deployment's request series from the minute and hour buckets the
 * request path counts (telemetry/traffic), never from logged prediction rows.
 */
export function registerTrafficRoutes(
  app: FastifyInstance,
  deps: { events: EventStore; registry: Registry; guard: Guard; traffic?: TrafficAggregator; costPerCpuHour?: number | undefined },
): void {
  app.get<{ Params: { name: string }; Querystring: TrafficQuerystring }>('/api/v1/deployments/:name/traffic', { onRequest: deps.guard('viewer') }, async (req) => {
    const q = req.query;
    for (const k of Object.keys(q)) if (!['since', 'until', 'step', 'version'].includes(k)) throw bad(`unknown parameter "${k.slice(0, 40)}"; traffic takes since, until, step and version`);
    const now = Date.now();
    const until = optionalTimeParam(q.until, 'until') ?? now;
    const since = optionalTimeParam(q.since, 'since') ?? until - DAY;
    if (since >= until) throw bad(`since (${new Date(since).toISOString()}) must be before until (${new Date(until).toISOString()})`);
    if (q.step !== undefined && q.step !== '' && q.step !== 'minute' && q.step !== 'hour') throw bad('step must be "minute" or "hour"');
    const step: TrafficStep = q.step === 'minute' || q.step === 'hour' ? q.step : until - since <= 2 * DAY ? 'minute' : 'hour';
    const points = Math.ceil((until - since) / STEP_MS[step]);
    if (points > TRAFFIC_MAX_POINTS) {
      throw bad(`the range holds ${points} ${step}s; at most ${TRAFFIC_MAX_POINTS} points per call: narrow since/until${step === 'minute' ? ' or use step=hour' : ''}`);
    }
    let version: number | undefined;
    if (q.version !== undefined && q.version !== '') {
      version = Number(q.version);
      if (!Number.isSafeInteger(version) || version < 0) throw bad('version must be a version number (an integer ≥ 1; 0 counts requests that failed before a version was chosen)');
    }
    // 404 for a name that is not a deployment, as the other deployment routes answer.
    await deps.registry.getModel(req.params.name);
    // This replica's counts since its last flush, so an answer includes every request it has answered.
    await deps.traffic?.flush();
    // Buckets are aligned to the step: one starting before `since` still overlaps the range.
    const from = since - (since % STEP_MS[step]);
    const records = await deps.events.queryTraffic({ model: req.params.name, step, since: from, until, ...(version !== undefined ? { version } : {}) });
    const report = trafficReport(records, { deployment: req.params.name, since, until, step, costPerCpuHour: deps.costPerCpuHour });
    // Each code's HTTP status, so a reader tells failing (5xx) from refused (4xx) without a copy of the catalogue.
    return { ...report, totals: { ...report.totals, errors: report.totals.errors.map((e) => ({ ...e, status: codeStatus(e.code) })) } };
  });
}
