import os from 'node:os';
import { noteAudit, type AuditLog } from '../../security/index.ts';
import path from 'node:path';
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client';
import type { Logger } from 'pino';
import type { AlertCondition, AlertSource } from '../../alerting/index.ts';
import { WardenError } from '../../errors.ts';
import { summarizeWindow, type WindowSummary } from '../../monitoring/index.ts';
import { ACTIVE_JOB_STATES, type JobRecord, type JobState } from '../../storage/index.ts';
import { JobLog } from './command.ts';
import { parseRetrainPolicy, type RetrainPolicy } from './policy.ts';
import { checkRetrainable, runRetrain, trainerOptionNames, type RunnerDeps } from './runner.ts';
import { evaluateTriggers, type TriggerEvaluation } from './triggers.ts';

export const RETRAIN_LEASE = 'lifecycle.retrain';
export const RETRAIN_GATE_FAILED_ALERT = 'RetrainGateFailed';
export const RETRAIN_FAILED_ALERT = 'RetrainJobFailed';
/** Windows read per evaluation, newest first: more than any trigger counts. */
const MAX_WINDOWS = 2000;
/** A running job not heard from for this long was left by a replica that stopped. */
const STALE_MS = 120_000;
const HEARTBEAT_MS = 10_000;
/** A failed or rejected run raises its ticket for this long, unless a later run of the deployment succeeds. */
const ALERT_MS = 24 * 3600_000;

export interface RetrainServiceDeps extends Omit<RunnerDeps, 'jobsDir' | 'now'> {
  logger: Logger;
  promRegistry: PromRegistry;
  holder: string;
  intervalMs: number;
  leaseMs: number;
  /** Scratch space for runs; default a folder under the OS's temporary directory. */
  jobsDir?: string;
  /** The audit log: jobs the triggers start, and each run's result, registration and delivery, as the retraining loop's. */
  audit?: Pick<AuditLog, 'loop'>;
  now?: () => number;
}

export interface PolicyView {
  deployment: string;
  policy: unknown;
  effective: RetrainPolicy;
  updatedAt: number;
  updatedBy: string;
  evaluation: TriggerEvaluation | null;
  /** Why the triggers could not be evaluated (no stable version, say). */
  evaluationError?: string;
}

const notFound = (what: string) => new WardenError('WARDEN_NOT_FOUND', what);
const conflict = (msg: string) => new WardenError('WARDEN_CONFLICT', msg);

/**
 * Retraining (docs/lifecycle.md#retraining): each deployment's policy, its triggers evaluated every interval by the
 * replica holding the lease, and the jobs they start, run one at a time per deployment (the store holds that rule)
 * and one at a time per replica. A job's state, inputs, outputs and log are in the metadata store, so any replica
 * answers for it, and a job left running by a replica that stopped is marked failed by the next leader.
 */
export class RetrainService {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private leader = false;
  private running: { id: number; abort: AbortController; done: Promise<void> } | undefined;
  private readonly jobsDir: string;
  private readonly jobs: Counter<'deployment' | 'outcome'>;
  private readonly starts: Counter<'deployment' | 'trigger'>;
  private readonly leaderGauge: Gauge;

  constructor(private readonly deps: RetrainServiceDeps) {
    this.jobsDir = deps.jobsDir ?? path.join(os.tmpdir(), `warden-jobs-${process.pid}`);
    const registers = [deps.promRegistry];
    this.jobs = new Counter({ name: 'warden_retrain_jobs_total', help: 'Retraining jobs ended, by outcome (succeeded, rejected by the gate, failed, canceled).', labelNames: ['deployment', 'outcome'], registers });
    this.starts = new Counter({ name: 'warden_retrain_triggers_total', help: 'Retraining jobs started, by what started them.', labelNames: ['deployment', 'trigger'], registers });
    this.leaderGauge = new Gauge({ name: 'warden_retrain_controller_leader', help: '1 while this replica holds the retraining controller lease.', registers });
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.deps.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
    if (this.running) {
      // A run stopped by shutdown fails with that reason rather than being left for the stale check.
      this.running.abort.abort();
      await this.running.done;
    }
    if (this.leader) await this.deps.metadata.releaseLease(RETRAIN_LEASE, this.deps.holder).catch(() => undefined);
    this.leader = false;
  }

  // ---- policies ----

  async setPolicy(deployment: string, raw: unknown, actor: string): Promise<PolicyView> {
    const stable = await this.stableOf(deployment);
    checkRetrainable(stable);
    const effective = parseRetrainPolicy(raw);
    if ('trainer' in effective.train) {
      const known = trainerOptionNames(effective.train.trainer);
      const unknown = Object.keys(effective.train.options).filter((k) => !known.includes(k));
      if (unknown.length) throw new WardenError('WARDEN_BAD_REQUEST', `retraining policy: train.options ${unknown.join(', ')} do not apply to trainer ${effective.train.trainer}; it takes ${known.join(', ')}`);
    }
    await this.deps.metadata.saveRetrainPolicy({ deployment, policy: raw, updatedAt: this.now(), updatedBy: actor });
    return (await this.getPolicy(deployment))!;
  }

  async getPolicy(deployment: string): Promise<PolicyView | undefined> {
    const rec = await this.deps.metadata.getRetrainPolicy(deployment);
    if (!rec) return undefined;
    const effective = parseRetrainPolicy(rec.policy);
    const view: PolicyView = { deployment, policy: rec.policy, effective, updatedAt: rec.updatedAt, updatedBy: rec.updatedBy, evaluation: null };
    try {
      view.evaluation = await this.evaluate(deployment, effective, rec.updatedAt);
    } catch (e) {
      view.evaluationError = (e as Error).message;
    }
    return view;
  }

  async deletePolicy(deployment: string): Promise<void> {
    if (!(await this.deps.metadata.deleteRetrainPolicy(deployment))) throw notFound(`${deployment} has no retraining policy`);
  }

  async listPolicies(): Promise<{ deployment: string; updatedAt: number; updatedBy: string }[]> {
    return (await this.deps.metadata.listRetrainPolicies()).map((p) => ({ deployment: p.deployment, updatedAt: p.updatedAt, updatedBy: p.updatedBy }));
  }

  // ---- jobs ----

  /** A run started by a person: no trigger or guardrail decides, and their request is the approval. */
  async startJob(deployment: string, actor: string, reason?: string): Promise<JobRecord> {
    const rec = await this.deps.metadata.getRetrainPolicy(deployment);
    if (!rec) throw new WardenError('WARDEN_BAD_REQUEST', `${deployment} has no retraining policy; set one first (PUT /api/v1/deployments/${deployment}/retraining)`);
    const policy = parseRetrainPolicy(rec.policy);
    const evaluation = await this.evaluate(deployment, policy, rec.updatedAt).catch(() => undefined);
    const job = await this.deps.metadata.createJob({
      kind: 'retrain',
      deployment,
      state: 'queued',
      trigger: { trigger: 'manual', reason: reason ?? `started by ${actor}`, ...(evaluation ? { guardrails: evaluation.guardrails.filter((g) => g.holding).map((g) => g.detail) } : {}) },
      inputs: { policy: rec.policy },
      actor,
      createdAt: this.now(),
    });
    this.starts.inc({ deployment, trigger: 'manual' });
    queueMicrotask(() => void this.tick());
    return job;
  }

  async getJob(id: number): Promise<JobRecord> {
    const j = await this.deps.metadata.getJob(id);
    if (!j) throw notFound(`there is no job #${id}`);
    return j;
  }

  listJobs(q: { deployment?: string; states?: JobState[]; beforeId?: number; limit: number }): Promise<JobRecord[]> {
    return this.deps.metadata.listJobs(q);
  }

  async approve(id: number, actor: string): Promise<JobRecord> {
    const j = await this.getJob(id);
    const r = await this.deps.metadata.updateJob(id, ['awaiting-approval'], { state: 'queued', inputs: { ...j.inputs, approvedBy: actor }, at: this.now() });
    if (!r) throw conflict(`job #${id} is ${j.state}; only a job awaiting approval can be approved`);
    queueMicrotask(() => void this.tick());
    return r;
  }

  async cancel(id: number, actor: string): Promise<JobRecord> {
    const j = await this.getJob(id);
    const r = await this.deps.metadata.updateJob(id, ACTIVE_JOB_STATES, { state: 'canceled', error: `canceled by ${actor}`, finishedAt: this.now(), at: this.now() });
    if (!r) throw conflict(`job #${id} is ${j.state} and has ended; nothing to cancel`);
    if (this.running?.id === id) this.running.abort.abort();
    this.jobs.inc({ deployment: r.deployment, outcome: 'canceled' });
    return r;
  }

  // ---- the loop ----

  /** One turn: take or renew the lease; as leader, fail stale runs, start what triggers fired, run the next queued job. */
  tick(): Promise<void> {
    this.ticking ??= (async () => {
      try {
        const lease = await this.deps.metadata.acquireLease(RETRAIN_LEASE, this.deps.holder, this.deps.leaseMs, this.now());
        if (lease.acquired !== this.leader) this.deps.logger.info({ holder: this.deps.holder, leader: lease.holder }, lease.acquired ? 'retraining controller lease taken' : 'retraining controller lease lost');
        this.leader = lease.acquired;
        this.leaderGauge.set(this.leader ? 1 : 0);
        if (!this.leader) return;
        await this.failStale();
        for (const p of await this.deps.metadata.listRetrainPolicies()) {
          try {
            await this.consider(p.deployment, parseRetrainPolicy(p.policy), p.updatedAt);
          } catch (err) {
            this.deps.logger.warn({ err, deployment: p.deployment }, 'retraining triggers could not be evaluated');
          }
        }
        if (!this.running) await this.runNext();
      } catch (err) {
        this.deps.logger.error({ err }, 'retraining loop failed');
      } finally {
        this.ticking = undefined;
      }
    })();
    return this.ticking;
  }

  /** Waits for the run in progress on this replica, if any (tests and shutdown). */
  async idle(): Promise<void> {
    await this.ticking;
    await this.running?.done;
  }

  private async consider(deployment: string, policy: RetrainPolicy, updatedAt: number): Promise<void> {
    const ev = await this.evaluate(deployment, policy, updatedAt);
    if (ev.decision !== 'start') return;
    const approval = policy.guardrails.approval;
    const job = await this.deps.metadata
      .createJob({
        kind: 'retrain',
        deployment,
        state: approval ? 'awaiting-approval' : 'queued',
        trigger: { trigger: ev.fired!.trigger, reason: ev.reason, values: ev.fired!.values, version: ev.version, guardrails: ev.guardrails },
        inputs: { policy: (await this.deps.metadata.getRetrainPolicy(deployment))?.policy ?? null },
        actor: 'retraining controller',
        createdAt: this.now(),
      })
      .catch((e: unknown) => {
        // Another replica's leader (a lease handover) started one first: the store kept it to one.
        if (e instanceof WardenError && e.code === 'WARDEN_CONFLICT') return undefined;
        throw e;
      });
    if (!job) return;
    await this.deps.audit?.loop({ loop: 'retraining', action: 'retrain.trigger' }, async () =>
      noteAudit({ object: `deployment:${deployment}`, change: 'retrain.trigger', after: { job: job.id, state: job.state, trigger: ev.fired!.trigger, reason: ev.reason.slice(0, 300) } }),
    );
    this.starts.inc({ deployment, trigger: ev.fired!.trigger });
    this.deps.logger.info({ deployment, job: job.id, trigger: ev.fired!.trigger, reason: ev.reason }, approval ? 'retraining triggered; awaiting approval' : 'retraining triggered');
  }

  /** The triggers and guardrails of a deployment now, from its stable version's stored windows and its jobs. */
  async evaluate(deployment: string, policy: RetrainPolicy, policyUpdatedAt: number): Promise<TriggerEvaluation> {
    const stable = await this.stableOf(deployment);
    const now = this.now();
    const rows = await this.deps.events.listMonitorSummaries({ model: deployment, version: stable.version, since: now - policy.data.sinceMs, order: 'newest', limit: MAX_WINDOWS });
    const windows: WindowSummary[] = rows.map((r) => (r.summaryJson ? (JSON.parse(r.summaryJson) as WindowSummary) : summarizeWindow(r.result!, r.result!.report)));
    const [lastJob] = await this.deps.metadata.listJobs({ deployment, limit: 1 });
    const [activeJob] = await this.deps.metadata.listJobs({ deployment, states: ACTIVE_JOB_STATES, limit: 1 });
    return evaluateTriggers({
      now,
      policy,
      policyUpdatedAt,
      version: stable.version,
      offline: stable.metadata.metrics ?? {},
      windows,
      ...(lastJob ? { lastJob } : {}),
      ...(activeJob ? { activeJob } : {}),
    });
  }

  private async stableOf(deployment: string) {
    return this.deps.registry.resolve(deployment, 'champion').catch((e: unknown) => {
      if (e instanceof WardenError && e.code === 'WARDEN_VERSION_NOT_FOUND') return this.deps.registry.resolve(deployment, 'latest');
      throw e;
    });
  }

  private async failStale(): Promise<void> {
    const now = this.now();
    for (const j of await this.deps.metadata.listJobs({ states: ['running'], limit: 100 })) {
      if (this.running?.id === j.id || now - j.updatedAt < STALE_MS) continue;
      const r = await this.deps.metadata.updateJob(j.id, ['running'], {
        state: 'failed',
        error: `the replica running it (${j.holder ?? 'unknown'}) stopped reporting at ${new Date(j.updatedAt).toISOString()}; start it again`,
        finishedAt: now,
        at: now,
      });
      if (r) this.jobs.inc({ deployment: j.deployment, outcome: 'failed' });
    }
  }

  private async runNext(): Promise<void> {
    const [next] = (await this.deps.metadata.listJobs({ states: ['queued'], limit: 100 })).reverse();
    if (!next) return;
    const now = this.now();
    const job = await this.deps.metadata.updateJob(next.id, ['queued'], { state: 'running', holder: this.deps.holder, startedAt: now, at: now });
    if (!job) return;
    const abort = new AbortController();
    const done = this.execute(job, abort).finally(() => {
      this.running = undefined;
    });
    this.running = { id: job.id, abort, done };
  }

  private async execute(job: JobRecord, abort: AbortController): Promise<void> {
    const audit = this.deps.audit;
    if (!audit) return this.executeJob(job, abort);
    return audit.loop({ loop: 'retraining', action: 'retrain.job', object: `job:${job.id}` }, () => this.executeJob(job, abort));
  }

  private async executeJob(job: JobRecord, abort: AbortController): Promise<void> {
    const log = new JobLog();
    let inputs = { ...job.inputs };
    let lastWrite = 0;
    const write = async (force = false) => {
      if (!force && performance.now() - lastWrite < HEARTBEAT_MS) return;
      lastWrite = performance.now();
      const r = await this.deps.metadata.updateJob(job.id, ['running'], { logs: log.toString(), inputs, at: this.now() }).catch(() => undefined);
      // Canceled (by any replica): stop the run.
      if (r === undefined && !abort.signal.aborted) abort.abort();
    };
    const heartbeat = setInterval(() => void write(true), HEARTBEAT_MS);
    heartbeat.unref();
    let end;
    try {
      const rec = await this.deps.metadata.getRetrainPolicy(job.deployment);
      const raw = job.inputs.policy ?? rec?.policy;
      if (raw === undefined || raw === null) throw new Error(`${job.deployment} has no retraining policy any more`);
      const policy = parseRetrainPolicy(raw);
      log.line(`job #${job.id}: retraining ${job.deployment}, started by ${String(job.trigger.trigger)} (${String(job.trigger.reason ?? '')})`);
      end = await runRetrain({ ...this.deps, jobsDir: this.jobsDir, now: () => this.now() }, job, policy, log, {
        signal: abort.signal,
        inputs: async (patch) => {
          inputs = { ...inputs, ...patch };
          await write(true);
        },
      });
    } catch (e) {
      end = { state: 'failed' as const, outputs: {}, error: `start: ${(e as Error).message}` };
      log.line(`failed at ${end.error}`);
    } finally {
      clearInterval(heartbeat);
    }
    const at = this.now();
    const stopped = abort.signal.aborted && end.state === 'failed';
    const r = await this.deps.metadata.updateJob(job.id, ['running'], {
      state: end.state,
      outputs: end.outputs,
      logs: log.toString(),
      inputs,
      ...(end.error ? { error: end.error } : {}),
      finishedAt: at,
      at,
    });
    const gate = end.outputs.gate as { passed?: boolean; summary?: string } | undefined;
    noteAudit({
      object: `job:${job.id}`,
      change: 'retrain.end',
      before: { state: 'running', deployment: job.deployment },
      after: { state: end.state, ...(gate ? { gate: { passed: gate.passed, summary: String(gate.summary ?? '').slice(0, 300) } } : {}), ...(end.outputs.version !== undefined ? { version: end.outputs.version } : {}), ...(end.error ? { error: end.error.slice(0, 300) } : {}) },
    });
    if (r) this.jobs.inc({ deployment: job.deployment, outcome: end.state });
    else if (!stopped) this.deps.logger.warn({ job: job.id }, 'a retraining job ended after it was canceled or taken over; its result is not stored');
    this.deps.logger.info({ job: job.id, deployment: job.deployment, state: end.state, error: end.error }, 'retraining job ended');
  }

  /** A ticket while a deployment's newest ended run was rejected by the gate or failed (for a day). */
  alertSource(): AlertSource {
    return {
      name: 'retraining',
      evaluate: async (now: number): Promise<AlertCondition[]> => {
        const out: AlertCondition[] = [];
        const seen = new Set<string>();
        for (const j of await this.deps.metadata.listJobs({ states: ['succeeded', 'rejected', 'failed'], limit: 200 })) {
          if (seen.has(j.deployment)) continue;
          seen.add(j.deployment);
          if (j.state === 'succeeded' || now - (j.finishedAt ?? j.updatedAt) > ALERT_MS) continue;
          const rejected = j.state === 'rejected';
          out.push({
            alertname: rejected ? RETRAIN_GATE_FAILED_ALERT : RETRAIN_FAILED_ALERT,
            labels: { deployment: j.deployment, job: String(j.id) },
            severity: 'ticket',
            active: true,
            summary: rejected ? `${j.deployment}: retraining job #${j.id} was stopped by the validation gate; nothing was deployed` : `${j.deployment}: retraining job #${j.id} failed; nothing was deployed`,
            description: j.error ?? '',
            runbookUrl: rejected ? 'docs/runbooks/retrain-gate-failed.md' : 'docs/runbooks/retrain-failed.md',
          });
        }
        return out;
      },
    };
  }
}
