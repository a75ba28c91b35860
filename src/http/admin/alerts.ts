import type { FastifyInstance, FastifyRequest } from 'fastify';
import { WardenError } from '../../errors.ts';
import type { AlertingService, AlertStatus, Severity } from '../../alerting/index.ts';
import type { Guard } from '../auth.ts';

const STATUSES: readonly AlertStatus[] = ['pending', 'firing', 'silenced', 'inhibited', 'suppressed'];
const SEVERITIES: readonly Severity[] = ['page', 'ticket'];
const KINDS = ['transition', 'notification'] as const;

function alertingOf(a: AlertingService | undefined): AlertingService {
  if (!a) throw new WardenError('WARDEN_CONFLICT', 'alerting is disabled on this server (alerting.enabled: false)');
  return a;
}

function timeParam(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(n)) throw new WardenError('WARDEN_BAD_REQUEST', `${name} must be epoch milliseconds or an ISO-8601 time`);
  return n;
}

function intParam(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) throw new WardenError('WARDEN_BAD_REQUEST', `${name} must be an integer in [${min}, ${max}]`);
  return n;
}

function oneOf<T extends string>(raw: string | undefined, name: string, values: readonly T[]): T | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!values.includes(raw as T)) throw new WardenError('WARDEN_BAD_REQUEST', `${name} must be one of ${values.join(', ')}`);
  return raw as T;
}

const flag = (raw: string | undefined) => raw === 'true' || raw === '1';
const who = (req: FastifyRequest) => req.apiKey?.name;

/**
 * Alerting API: current alerts, their history, silences, rollout suppressions and rules. Reads need viewer;
 * silences, suppressions and evaluating now need deployer; replacing the custom rules needs admin.
 */
export function registerAlertRoutes(app: FastifyInstance, deps: { alerting?: AlertingService; guard: Guard }): void {
  const viewer = { onRequest: deps.guard('viewer') };
  const deployer = { onRequest: deps.guard('deployer') };
  const base = '/api/v1/alerts';

  app.get<{ Querystring: { deployment?: string; status?: string; severity?: string } }>(base, viewer, async (req) => {
    const alerting = alertingOf(deps.alerting);
    const q = req.query;
    const status = oneOf(q.status, 'status', STATUSES);
    const severity = oneOf(q.severity, 'severity', SEVERITIES);
    return {
      alerts: alerting.alerts({ ...(q.deployment ? { deployment: q.deployment } : {}), ...(status ? { status } : {}), ...(severity ? { severity } : {}) }),
      warnings: alerting.warnings(),
    };
  });

  app.get<{ Querystring: { since?: string; until?: string; deployment?: string; alertname?: string; fingerprint?: string; kind?: string; limit?: string; after?: string } }>(
    `${base}/history`,
    viewer,
    async (req) => {
      const alerting = alertingOf(deps.alerting);
      const q = req.query;
      const since = timeParam(q.since, 'since');
      const until = timeParam(q.until, 'until');
      const after = intParam(q.after, 'after', 0, Number.MAX_SAFE_INTEGER);
      const kind = oneOf(q.kind, 'kind', KINDS);
      const entries = await alerting.history({
        limit: intParam(q.limit, 'limit', 1, 1000) ?? 100,
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
        ...(q.deployment ? { deployment: q.deployment } : {}),
        ...(q.alertname ? { alertname: q.alertname } : {}),
        ...(q.fingerprint ? { fingerprint: q.fingerprint } : {}),
        ...(kind ? { kind } : {}),
        ...(after !== undefined ? { afterId: after } : {}),
      });
      const last = entries.at(-1);
      return { entries, nextCursor: last ? String(last.id) : (q.after ?? null) };
    },
  );

  app.post(`${base}/evaluate`, deployer, async () => {
    const alerting = alertingOf(deps.alerting);
    const r = await alerting.evaluate();
    return { at: r.at, sources: r.sources, transitions: r.transitions, notifications: r.notifications.map(({ alerts, ...n }) => ({ ...n, alerts: alerts.length })) };
  });

  app.get<{ Querystring: { expired?: string } }>(`${base}/silences`, viewer, async (req) => ({
    silences: await alertingOf(deps.alerting).listSilences({ includeExpired: flag(req.query.expired) }),
  }));
  app.post(`${base}/silences`, deployer, async (req, reply) => reply.status(201).send(await alertingOf(deps.alerting).createSilence(req.body, who(req))));
  app.get<{ Params: { id: string } }>(`${base}/silences/:id`, viewer, async (req) => alertingOf(deps.alerting).getSilence(req.params.id));
  app.put<{ Params: { id: string } }>(`${base}/silences/:id`, deployer, async (req) => alertingOf(deps.alerting).updateSilence(req.params.id, req.body));
  app.delete<{ Params: { id: string } }>(`${base}/silences/:id`, deployer, async (req) => alertingOf(deps.alerting).expireSilence(req.params.id));

  app.get<{ Querystring: { ended?: string } }>(`${base}/suppressions`, viewer, async (req) => ({
    suppressions: await alertingOf(deps.alerting).listSuppressions({ includeEnded: flag(req.query.ended) }),
  }));
  app.post(`${base}/suppressions`, deployer, async (req, reply) => reply.status(201).send(await alertingOf(deps.alerting).suppress(req.body, who(req))));
  app.delete<{ Params: { id: string } }>(`${base}/suppressions/:id`, deployer, async (req) => alertingOf(deps.alerting).endSuppression(req.params.id));

  app.get(`${base}/rules`, viewer, async () => ({ rules: alertingOf(deps.alerting).rules() }));
  app.put(`${base}/rules`, { onRequest: deps.guard('admin') }, async (req) => ({ rules: await alertingOf(deps.alerting).setRules(req.body) }));
}
