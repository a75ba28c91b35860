import type { FastifyInstance } from 'fastify';
import { WardenError } from '../../errors.ts';
import type { RetrainService } from '../../lifecycle/index.ts';
import type { JobRecord, JobState } from '../../storage/index.ts';
import type { Guard } from '../auth.ts';
import { actorOf } from '../actor.ts';
import { intParam } from '../query.ts';

const STATES: readonly JobState[] = ['awaiting-approval', 'queued', 'running', 'succeeded', 'rejected', 'failed', 'canceled'];
const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

function jobId(raw: string): number {
  const id = intParam(raw, 'job id', 1, Number.MAX_SAFE_INTEGER);
  if (id === undefined) throw bad('job id must be a positive integer');
  return id;
}

function reasonOf(body: unknown): string | undefined {
  if (body === undefined || body === null || body === '') return undefined;
  if (typeof body !== 'object' || Array.isArray(body)) throw bad('body must be an object, e.g. {"reason": "…"}');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (k !== 'reason') throw bad(`unknown field ${k}; the body takes reason`);
  if (b.reason !== undefined && (typeof b.reason !== 'string' || b.reason.length > 1000)) throw bad('reason must be a string of at most 1000 characters');
  return b.reason as string | undefined;
}

/** The list shape: everything but the log, which `GET /api/v1/jobs/{id}` returns. */
const brief = (j: JobRecord) => {
  const { logs, inputs, ...rest } = j;
  void inputs;
  return { ...rest, logBytes: logs.length };
};

/**
 * Retraining (docs/lifecycle.md#retraining): a deployment's policy with its triggers evaluated now, runs started by
 * hand, and the stored jobs with their state, inputs, gate report and log.
 */
export function registerRetrainingRoutes(app: FastifyInstance, deps: { retraining: RetrainService; guard: Guard }): void {
  const { retraining, guard } = deps;

  app.get('/api/v1/retraining', { onRequest: guard('viewer') }, async () => ({ policies: await retraining.listPolicies() }));

  app.get<{ Params: { name: string } }>('/api/v1/deployments/:name/retraining', { onRequest: guard('viewer') }, async (req) => {
    const view = await retraining.getPolicy(req.params.name);
    if (!view) throw new WardenError('WARDEN_NOT_FOUND', `${req.params.name} has no retraining policy; set one with PUT /api/v1/deployments/${req.params.name}/retraining`);
    return view;
  });

  app.put<{ Params: { name: string }; Body: unknown }>('/api/v1/deployments/:name/retraining', { onRequest: guard('deployer') }, async (req) =>
    retraining.setPolicy(req.params.name, req.body, actorOf(req)),
  );

  app.delete<{ Params: { name: string } }>('/api/v1/deployments/:name/retraining', { onRequest: guard('deployer') }, async (req, reply) => {
    await retraining.deletePolicy(req.params.name);
    return reply.status(204).send();
  });

  app.post<{ Params: { name: string }; Body: unknown }>('/api/v1/deployments/:name/retrain', { onRequest: guard('deployer') }, async (req, reply) => {
    const job = await retraining.startJob(req.params.name, actorOf(req), reasonOf(req.body));
    return reply.status(202).send({ job });
  });

  app.get<{ Querystring: { deployment?: string; state?: string; before?: string; limit?: string } }>('/api/v1/jobs', { onRequest: guard('viewer') }, async (req) => {
    const q = req.query;
    const states = q.state ? q.state.split(',') : undefined;
    const wrong = states?.find((s) => !(STATES as readonly string[]).includes(s));
    if (wrong !== undefined) throw bad(`state ${JSON.stringify(wrong)} is not a job state; use ${STATES.join(', ')}`);
    const limit = intParam(q.limit, 'limit', 1, 1000) ?? 100;
    const beforeId = intParam(q.before, 'before', 1, Number.MAX_SAFE_INTEGER);
    const jobs = await retraining.listJobs({
      limit,
      ...(q.deployment ? { deployment: q.deployment } : {}),
      ...(states ? { states: states as JobState[] } : {}),
      ...(beforeId !== undefined ? { beforeId } : {}),
    });
    return { jobs: jobs.map(brief), nextCursor: jobs.length === limit ? String(jobs.at(-1)!.id) : null };
  });

  app.get<{ Params: { id: string } }>('/api/v1/jobs/:id', { onRequest: guard('viewer') }, async (req) => retraining.getJob(jobId(req.params.id)));

  app.post<{ Params: { id: string }; Body: unknown }>('/api/v1/jobs/:id/approve', { onRequest: guard('deployer') }, async (req) => {
    reasonOf(req.body);
    return { job: await retraining.approve(jobId(req.params.id), actorOf(req)) };
  });

  app.post<{ Params: { id: string }; Body: unknown }>('/api/v1/jobs/:id/cancel', { onRequest: guard('deployer') }, async (req) => {
    reasonOf(req.body);
    return { job: await retraining.cancel(jobId(req.params.id), actorOf(req)) };
  });
}
