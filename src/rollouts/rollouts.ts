import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client';
import type { AlertCondition, AlertingService, AlertSource } from '../alerting/index.ts';
import { WardenError } from '../errors.ts';
import type { WindowResult } from '../monitoring/index.ts';
import { STABLE_ALIAS, type Registry } from '../registry/index.ts';
import type { ModelTable, RoutePolicy, Router, ShadowRunner } from '../serving/index.ts';
import type { DeploymentEventKind, EventStore, LeaseFence, MetadataStore, RolloutPatch, RolloutRecord, RolloutStrategy } from '../storage/index.ts';
import { auditRequestId, noteAudit, type AuditLog } from '../security/index.ts';
import { analyse, decisionsOf, type AnalysisRun } from './analysis.ts';
import { experimentResult, type ExperimentResult } from './experiment.ts';
import { describeStep, parseRolloutSpec, type RolloutSpec, type RolloutStep } from './spec.ts';

/** The lease every replica competes for; its holder alone advances, promotes and aborts rollouts. */
export const CONTROLLER_LEASE = 'rollouts.controller';
export const ROLLOUT_ABORTED_ALERT = 'RolloutAborted';

/** What the controller carries between runs, stored with the rollout so another replica can take over. */
export interface RolloutStatus {
  /** Analysis runs of the rollout so far (each look spends part of the distance bound's alpha). */
  runs: number;
  lastRunAt: number | null;
  /** Runs of the current step by verdict (Argo counts failed and inconclusive runs per analysis). */
  stepRuns: { success: number; failure: number; inconclusive: number };
  pValues: Record<string, number>;
  lastVerdict: AnalysisRun['verdict'] | null;
  lastSummary: string | null;
  suppressionId: string | null;
  /** Why the rollout ended or paused, when it did. */
  outcome: string | null;
}

export interface RolloutView {
  id: number;
  deployment: string;
  strategy: RolloutStrategy;
  state: RolloutRecord['state'];
  stable: number;
  candidate: number;
  step: number;
  steps: (RolloutStep & { description: string })[];
  /** The traffic split now: candidate weight and mirror share. */
  weight: number;
  mirror: number;
  stepStartedAt: number;
  /** When the current step's pause ends (null: until promoted). */
  stepEndsAt: number | null;
  spec: RolloutSpec;
  status: RolloutStatus;
  createdAt: number;
  updatedAt: number;
  endedAt: number | null;
  actor: string;
  reason: string;
}

export interface RolloutServiceDeps {
  metadata: MetadataStore;
  events: EventStore;
  registry: Registry;
  table: ModelTable;
  router: Router;
  /** Readies what runs mirrored copies (the shadow thread's session) before a shadow's first copy arrives. */
  shadow?: Pick<ShadowRunner, 'warm'>;
  logger: Logger;
  promRegistry: PromRegistry;
  /** This replica's name in the lease. */
  holder: string;
  alerting?: AlertingService;
  windows?: (model: string, version: number, since: number, until: number) => Promise<WindowResult[]>;
  /** How often every replica re-reads rollout state and the leader runs due analyses. */
  syncMs: number;
  leaseMs: number;
  /** The audit log: the controller's promotions, steps and aborts are recorded as the rollouts loop's. */
  audit?: Pick<AuditLog, 'loop'>;
  now?: () => number;
}

const conflict = (msg: string) => new WardenError('WARDEN_CONFLICT', msg);
const notFound = (msg: string) => new WardenError('WARDEN_NOT_FOUND', msg);

function statusOf(r: RolloutRecord): RolloutStatus {
  const s = r.status as Partial<RolloutStatus>;
  return {
    runs: s.runs ?? 0,
    lastRunAt: s.lastRunAt ?? null,
    stepRuns: s.stepRuns ?? { success: 0, failure: 0, inconclusive: 0 },
    pValues: s.pValues ?? {},
    lastVerdict: s.lastVerdict ?? null,
    lastSummary: s.lastSummary ?? null,
    suppressionId: s.suppressionId ?? null,
    outcome: s.outcome ?? null,
  };
}

const specOf = (r: RolloutRecord) => r.spec as unknown as RolloutSpec;

/**
 * Progressive delivery: shadow, canary steps and A/B experiments, driven by analysis. Rollout state lives in the
 * metadata store; every replica re-reads it every `syncMs` and routes by it (the same policy everywhere), and the
 * replica holding the controller lease runs the due analyses and acts on them, each change applied against the
 * rollout's revision, so a step is never taken twice nor skipped when the lease moves.
 */
export class RolloutService {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private leader = false;
  private readonly decisions: Counter<'deployment' | 'metric' | 'verdict'>;
  private readonly lastValue: Gauge<'deployment' | 'metric'>;
  private readonly weightGauge: Gauge<'deployment' | 'version'>;
  private readonly actions: Counter<'deployment' | 'action'>;
  private readonly leaderGauge: Gauge;
  private readonly outcomes: Counter<'matched'>;
  /** Deployments whose last rollout was aborted by the controller, for the RolloutAborted alert. */
  private aborted = new Map<string, { at: number; rollout: number; candidate: number; summary: string }>();

  constructor(private readonly deps: RolloutServiceDeps) {
    const registers = [deps.promRegistry];
    this.decisions = new Counter({ name: 'warden_rollout_analysis_total', help: 'Rollout analysis measurements by metric and verdict (success, failure, inconclusive).', labelNames: ['deployment', 'metric', 'verdict'], registers });
    this.lastValue = new Gauge({ name: 'warden_rollout_analysis_value', help: 'The last measured value of each rollout analysis metric (the threshold is in the decision record).', labelNames: ['deployment', 'metric'], registers });
    this.weightGauge = new Gauge({ name: 'warden_rollout_weight_percent', help: "Share of a deployment's requests each version answers while a rollout runs.", labelNames: ['deployment', 'version'], registers });
    this.actions = new Counter({ name: 'warden_rollout_actions_total', help: 'Rollout actions: start, step, pause, resume, promote, abort.', labelNames: ['deployment', 'action'], registers });
    this.outcomes = new Counter({ name: 'warden_outcomes_total', help: 'Business outcomes posted (POST /api/v1/outcomes), by whether their key matched a logged prediction; unmatched ones are stored, in no arm.', labelNames: ['matched'], registers });
    this.leaderGauge = new Gauge({ name: 'warden_rollout_controller_leader', help: '1 while this replica holds the rollout controller lease.', registers });
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  async start(): Promise<void> {
    await this.sync();
    this.timer = setInterval(() => void this.tick(), this.deps.syncMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
    if (this.leader) await this.deps.metadata.releaseLease(CONTROLLER_LEASE, this.deps.holder).catch(() => undefined);
    this.leader = false;
  }

  /** One loop turn: re-read state (every replica), then act if this replica holds the lease. Never overlaps itself. */
  tick(): Promise<void> {
    this.ticking ??= (async () => {
      try {
        await this.sync();
        const lease = await this.deps.metadata.acquireLease(CONTROLLER_LEASE, this.deps.holder, this.deps.leaseMs, this.now());
        if (lease.acquired !== this.leader) this.deps.logger.info({ holder: this.deps.holder, acquired: lease.acquired, leader: lease.holder }, lease.acquired ? 'rollout controller lease taken' : 'rollout controller lease lost');
        this.leader = lease.acquired;
        this.leaderGauge.set(this.leader ? 1 : 0);
        if (this.leader) await this.control();
      } catch (err) {
        this.deps.logger.error({ err }, 'rollout loop failed');
      } finally {
        this.ticking = undefined;
      }
    })();
    return this.ticking;
  }

  /** Makes the router match the store: one policy per active rollout, candidates warm before they get traffic. */
  async sync(): Promise<void> {
    const active = await this.deps.metadata.listRollouts({ active: true, limit: 10_000 });
    const seen = new Set<string>();
    for (const r of active) {
      seen.add(r.deployment);
      const policy = this.policyOf(r);
      const current = this.deps.router.get(r.deployment);
      if (current && current.rolloutId === policy.rolloutId && current.weight === policy.weight && current.mirror === policy.mirror) {
        this.setWeights(r, current.weight);
        continue;
      }
      if (policy.weight > 0 || policy.mirror > 0) {
        try {
          await this.deps.table.load(r.deployment, r.candidateVersion);
        } catch (err) {
          // The candidate stays without traffic here; the controller sees its errors in no answers at all.
          this.deps.logger.error({ err, deployment: r.deployment, version: r.candidateVersion }, 'rollout candidate could not be loaded on this replica; it gets no traffic here');
          this.deps.router.set(r.deployment, { ...policy, weight: 0, mirror: 0 });
          continue;
        }
      }
      // A thread's session loads while copies would wait: warmed first, a 100 % shadow's first copies are not dropped.
      if (policy.mirror > 0) await this.deps.shadow?.warm(r.deployment, r.candidateVersion);
      this.deps.router.set(r.deployment, policy);
      this.setWeights(r, policy.weight);
    }
    for (const d of this.deps.router.deployments()) {
      if (!seen.has(d)) {
        // Ended, maybe on another replica: the stable alias may have moved there, so the table reads it first.
        await this.deps.table.refresh(d);
        this.deps.router.set(d, undefined);
        this.clearWeights(d);
      }
    }
  }

  private readonly weighted = new Map<string, Set<string>>();

  private setWeights(r: RolloutRecord, weight: number): void {
    const versions = this.weighted.get(r.deployment) ?? new Set<string>();
    this.weighted.set(r.deployment, versions);
    for (const [v, w] of [[String(r.candidateVersion), weight], [String(r.stableVersion), 100 - weight]] as const) {
      versions.add(v);
      this.weightGauge.set({ deployment: r.deployment, version: v }, w);
    }
  }

  private clearWeights(deployment: string): void {
    for (const v of this.weighted.get(deployment) ?? []) this.weightGauge.remove({ deployment, version: v });
    this.weighted.delete(deployment);
  }

  private policyOf(r: RolloutRecord): RoutePolicy {
    const spec = specOf(r);
    const step = spec.steps[Math.min(r.step, spec.steps.length - 1)]!;
    // A paused rollout keeps its split (Argo's pause); only abort and promotion end it.
    const p: RoutePolicy = { rolloutId: r.id, strategy: r.strategy, stable: r.stableVersion, candidate: r.candidateVersion, weight: step.weight, mirror: step.mirror };
    if (spec.experiment) {
      p.weight = spec.experiment.weight;
      p.salt = spec.experiment.salt;
      p.unkeyed = spec.experiment.unkeyed;
    }
    return p;
  }

  // ---- operator actions

  /** Starts a rollout of `candidate` beside the stable version (called by DeploymentService for non-direct deploys). */
  async begin(deployment: string, o: { stable: number; candidate: number; strategy: RolloutStrategy; spec: RolloutSpec; actor: string; reason: string; data: Record<string, unknown> }): Promise<RolloutView> {
    const spec = o.spec;
    const now = this.now();
    const status: RolloutStatus = { runs: 0, lastRunAt: null, stepRuns: { success: 0, failure: 0, inconclusive: 0 }, pValues: {}, lastVerdict: null, lastSummary: null, suppressionId: null, outcome: null };
    const r = await this.deps.metadata.createRollout(
      {
        deployment,
        strategy: o.strategy,
        stableVersion: o.stable,
        candidateVersion: o.candidate,
        state: 'running',
        step: 0,
        stepStartedAt: now,
        spec: spec as unknown as Record<string, unknown>,
        status: status as unknown as Record<string, unknown>,
        createdAt: now,
        actor: o.actor,
        reason: o.reason,
      },
      { kind: 'rollout-start', strategy: o.strategy, actor: o.actor, reason: o.reason, data: { candidate: o.candidate, step: describeStep(spec.steps[0]!), ...o.data, ...(auditRequestId() ? { requestId: auditRequestId() } : {}) } },
    );
    noteAudit({ object: `deployment:${deployment}`, change: 'rollout.start', before: { stable: o.stable }, after: { rollout: r.id, strategy: o.strategy, candidate: o.candidate, step: describeStep(spec.steps[0]!) } });
    this.aborted.delete(deployment);
    this.actions.inc({ deployment, action: 'start' });
    // The rollout watches the deployment's signals itself: its alerts are suppressed while it runs, and the
    // suppression ends with it (an abort raises its own alert).
    if (this.deps.alerting) {
      try {
        const s = await this.deps.alerting.suppress({ deployment, until: now + 7 * 86_400_000, reason: `rollout #${r.id} of v${o.candidate} (${o.strategy})` }, `rollout #${r.id}`);
        await this.deps.metadata.updateRollout(r.id, r.revision, { status: { ...status, suppressionId: s.id } as unknown as Record<string, unknown> }, now);
      } catch (err) {
        this.deps.logger.error({ err, deployment }, 'could not open the rollout alert suppression');
      }
    }
    await this.sync();
    this.deps.logger.info({ deployment, rollout: r.id, strategy: o.strategy, candidate: o.candidate }, 'rollout started');
    return this.view((await this.deps.metadata.getRollout(r.id))!);
  }

  /** Validates a rollout request before anything is loaded, inherited or stored (a refused request changes nothing). */
  prepare(deployment: string, o: { stable: number; candidate: number; strategy: RolloutStrategy; spec: unknown }): RolloutSpec {
    if (o.stable === o.candidate) throw conflict(`v${o.candidate} is already the stable version of ${deployment}; deploy another version`);
    return parseRolloutSpec(o.strategy, o.spec, randomUUID());
  }

  /** The active rollout, else the latest one; 404 when the deployment never had one. */
  async status(deployment: string): Promise<{ rollout: RolloutView; decisions: Awaited<ReturnType<MetadataStore['listRolloutDecisions']>> }> {
    await this.deps.registry.getModel(deployment);
    const r = (await this.deps.metadata.activeRollout(deployment)) ?? (await this.deps.metadata.listRollouts({ deployment, limit: 1 }))[0];
    if (!r) throw notFound(`${deployment} has no rollout; start one with warden deploy ${deployment} --version V --strategy canary`);
    // The latest run's metrics: every decision stored at the newest decision's time.
    const [last] = await this.deps.metadata.listRolloutDecisions(r.id, { newestFirst: true, limit: 1 });
    const decisions = last ? await this.deps.metadata.listRolloutDecisions(r.id, { at: last.at, limit: 1000 }) : [];
    return { rollout: this.view(r), decisions };
  }

  async list(q: { deployment?: string; limit: number }): Promise<RolloutView[]> {
    return (await this.deps.metadata.listRollouts(q)).map((r) => this.view(r));
  }

  async decisionsOf(deployment: string, q: { afterId?: number; beforeId?: number; newestFirst?: boolean; limit: number; rollout?: number }) {
    const r = q.rollout !== undefined ? await this.deps.metadata.getRollout(q.rollout) : ((await this.deps.metadata.activeRollout(deployment)) ?? (await this.deps.metadata.listRollouts({ deployment, limit: 1 }))[0]);
    if (!r || r.deployment !== deployment) throw notFound(`${deployment} has no rollout${q.rollout !== undefined ? ` #${q.rollout}` : ''}`);
    return { rollout: r.id, decisions: await this.deps.metadata.listRolloutDecisions(r.id, q) };
  }

  private async requireActive(deployment: string): Promise<RolloutRecord> {
    await this.deps.registry.getModel(deployment);
    const r = await this.deps.metadata.activeRollout(deployment);
    if (!r) throw conflict(`${deployment} has no running or paused rollout`);
    return r;
  }

  /** Skips the current step's pause (Argo's promote); with `full`, or from the last step, makes the candidate stable. */
  async promote(deployment: string, o: { actor: string; full?: boolean; reason?: string }): Promise<RolloutView> {
    const r = await this.requireActive(deployment);
    const spec = specOf(r);
    if (o.full || r.step >= spec.steps.length - 1 || r.strategy !== 'canary') return this.finish(r, 'promoted', o.actor, o.reason ?? 'promoted by hand', {});
    return this.advance(r, o.actor, o.reason ?? `step ${r.step + 2} of ${spec.steps.length} promoted by hand`, {});
  }

  async pause(deployment: string, o: { actor: string; reason?: string }): Promise<RolloutView> {
    const r = await this.requireActive(deployment);
    if (r.state === 'paused') return this.view(r);
    return this.apply(r, { state: 'paused' }, 'rollout-pause', o.actor, o.reason ?? 'paused by hand', {});
  }

  async resume(deployment: string, o: { actor: string; reason?: string }): Promise<RolloutView> {
    const r = await this.requireActive(deployment);
    if (r.state === 'running') return this.view(r);
    const s = statusOf(r);
    // A resumed step starts counting afresh, so the inconclusive runs that paused it do not pause it again at once.
    const status = { ...s, stepRuns: { success: 0, failure: 0, inconclusive: 0 }, outcome: null };
    return this.apply(r, { state: 'running', status: status as unknown as Record<string, unknown> }, 'rollout-resume', o.actor, o.reason ?? 'resumed by hand', {});
  }

  async abort(deployment: string, o: { actor: string; reason?: string }): Promise<RolloutView> {
    const r = await this.requireActive(deployment);
    return this.finish(r, 'aborted', o.actor, o.reason ?? 'aborted by hand', {});
  }

  /** The A/B experiment of the deployment (running, or the latest ended one) with its per-metric tests. */
  async experiment(deployment: string): Promise<ExperimentResult> {
    await this.deps.registry.getModel(deployment);
    const r = (await this.deps.metadata.listRollouts({ deployment, limit: 50 })).find((x) => x.strategy === 'ab');
    if (!r) throw notFound(`${deployment} has no A/B experiment; start one with warden deploy ${deployment} --version V --strategy ab`);
    return experimentResult(r, specOf(r).experiment!, this.deps.events, this.now(), {});
  }

  /** Counts posted outcomes by whether their key matched a prediction (warden_outcomes_total). */
  countOutcomes(matched: number, unmatched: number): void {
    if (matched) this.outcomes.inc({ matched: 'true' }, matched);
    if (unmatched) this.outcomes.inc({ matched: 'false' }, unmatched);
  }

  // ---- the controller

  private async control(): Promise<void> {
    const active = await this.deps.metadata.listRollouts({ active: true, limit: 10_000 });
    for (const r of active) {
      if (r.state !== 'running') continue;
      try {
        const audit = this.deps.audit;
        await (audit ? audit.loop({ loop: 'rollouts', action: 'rollout.control', object: `deployment:${r.deployment}` }, () => this.controlOne(r)) : this.controlOne(r));
      } catch (err) {
        this.deps.logger.error({ err, deployment: r.deployment, rollout: r.id }, 'rollout analysis failed; it is retried next interval');
      }
    }
  }

  private async controlOne(r: RolloutRecord): Promise<void> {
    const spec = specOf(r);
    const s = statusOf(r);
    const now = this.now();
    const page = spec.abortOnPage ? this.firingPage(r.deployment, r.stableVersion, r.candidateVersion) : undefined;
    if (page) {
      await this.finish(r, 'aborted', 'rollout controller', `a page-level alert fired: ${page}`, { alert: page }, true, undefined, this.fence());
      return;
    }
    if (s.lastRunAt !== null && now - s.lastRunAt < spec.analysis.intervalMs) return;
    // An A/B experiment is read by people (rollout status); its arms are not advanced by the canary analysis.
    if (r.strategy === 'ab') return;
    const step = spec.steps[Math.min(r.step, spec.steps.length - 1)]!;
    const version = await this.deps.registry.getVersion(r.deployment, r.stableVersion);
    const run = await analyse({
      deployment: r.deployment,
      stable: r.stableVersion,
      candidate: r.candidateVersion,
      step,
      since: r.stepStartedAt,
      now,
      spec: spec.analysis,
      signature: version.signature,
      look: s.runs + 1,
      previousP: s.pValues,
      events: this.deps.events,
      ...(this.deps.windows ? { windows: (v: number, since: number, until: number) => this.deps.windows!(r.deployment, v, since, until) } : {}),
    });
    const stepRuns = { ...s.stepRuns, [run.verdict]: s.stepRuns[run.verdict] + 1 };
    const next: RolloutStatus = { ...s, runs: s.runs + 1, lastRunAt: now, stepRuns, pValues: { ...s.pValues, ...run.pValues }, lastVerdict: run.verdict, lastSummary: run.summary };
    const measured = { analysis: run.summary, metrics: run.metrics.map((m) => ({ metric: m.metric, verdict: m.verdict, value: m.value, threshold: m.threshold, nStable: m.nStable, nCandidate: m.nCandidate })) };
    // The decisions are stored first: whatever the controller does next, the numbers behind it are on record. Every
    // write is fenced by the lease: a controller that stalled past it (a long analysis) stops here.
    if (!(await this.deps.metadata.appendRolloutDecisions(decisionsOf(r.id, r.step, run), this.fence()))) {
      this.leader = false;
      this.deps.logger.warn({ deployment: r.deployment, rollout: r.id }, 'rollout controller lease lapsed during the analysis; the run is dropped');
      return;
    }
    for (const m of run.metrics) {
      this.decisions.inc({ deployment: r.deployment, metric: m.metric, verdict: m.verdict });
      if (m.value !== null) this.lastValue.set({ deployment: r.deployment, metric: m.metric }, m.value);
    }
    const statusPatch = next as unknown as Record<string, unknown>;
    if (stepRuns.failure > spec.analysis.failureLimit) {
      await this.finish({ ...r }, 'aborted', 'rollout controller', `analysis failed at step ${r.step + 1} (${describeStep(step)}): ${run.summary}`, measured, true, statusPatch, this.fence());
      return;
    }
    const pauseOver = step.pauseMs !== null && now - r.stepStartedAt >= step.pauseMs;
    if (run.verdict === 'success' && pauseOver) {
      if (r.step >= spec.steps.length - 1) await this.finish(r, 'promoted', 'rollout controller', `every step passed its analysis: ${run.summary}`, measured, false, statusPatch, this.fence());
      else await this.advance(r, 'rollout controller', `step ${r.step + 1} passed its analysis: ${run.summary}`, measured, statusPatch, this.fence());
      return;
    }
    if (run.verdict === 'inconclusive' && (pauseOver || step.pauseMs === null) && stepRuns.inconclusive > spec.analysis.inconclusiveLimit) {
      await this.apply(r, { state: 'paused', status: { ...next, outcome: 'inconclusive' } as unknown as Record<string, unknown> }, 'rollout-pause', 'rollout controller', `analysis stayed inconclusive for ${stepRuns.inconclusive} runs (limit ${spec.analysis.inconclusiveLimit}): ${run.summary}; promote, resume or abort`, measured, this.fence());
      return;
    }
    await this.deps.metadata.updateRollout(r.id, r.revision, { status: statusPatch }, now, undefined, this.fence());
  }

  /** The condition every controller write carries: this replica still holds the controller lease. */
  private fence(): LeaseFence {
    return { lease: CONTROLLER_LEASE, holder: this.deps.holder, now: this.now() };
  }

  /** The first firing page-severity alert of the deployment (an SLO burning fast), other than the rollout's own. */
  private firingPage(deployment: string, stable: number, candidate: number): string | undefined {
    const alerts = this.deps.alerting?.alerts({ deployment, severity: 'page' }) ?? [];
    // A page about the stable version alone (its live accuracy below its offline value, say) is not the candidate's
    // doing, and an abort would keep the very version it names: often the reason a retrained candidate is rolled out.
    const aboutStableOnly = (v: string | undefined) => v !== undefined && v === String(stable) && v !== String(candidate);
    const a = alerts.find((x) => x.state === 'firing' && x.alertname !== ROLLOUT_ABORTED_ALERT && !aboutStableOnly(x.labels.version));
    return a ? `${a.alertname}${a.labels.slo ? ` (slo ${a.labels.slo}, window ${a.labels.window ?? '?'})` : ''}: ${a.annotations.summary ?? ''}`.trim() : undefined;
  }

  private async advance(r: RolloutRecord, actor: string, reason: string, measured: Record<string, unknown>, status?: Record<string, unknown>, fence?: LeaseFence): Promise<RolloutView> {
    const spec = specOf(r);
    const s = status ? (status as unknown as RolloutStatus) : statusOf(r);
    const nextStep = spec.steps[r.step + 1]!;
    const patch: RolloutPatch = {
      step: r.step + 1,
      stepStartedAt: this.now(),
      state: 'running',
      // A step reads only its own traffic; the sequential p-values restart with it.
      status: { ...s, stepRuns: { success: 0, failure: 0, inconclusive: 0 }, pValues: {}, outcome: null } as unknown as Record<string, unknown>,
    };
    return this.apply(r, patch, 'rollout-step', actor, reason, { ...measured, from: describeStep(spec.steps[r.step]!), to: describeStep(nextStep), step: r.step + 2 }, fence);
  }

  /** Ends a rollout: promoted (the candidate becomes stable) or aborted (the stable version keeps all traffic). */
  private async finish(
    r: RolloutRecord,
    state: 'promoted' | 'aborted',
    actor: string,
    reason: string,
    measured: Record<string, unknown>,
    byController = false,
    status?: Record<string, unknown>,
    fence?: LeaseFence,
  ): Promise<RolloutView> {
    const now = this.now();
    const s = status ? (status as unknown as RolloutStatus) : statusOf(r);
    const patch: RolloutPatch = { state, endedAt: now, status: { ...s, outcome: reason } as unknown as Record<string, unknown> };
    const kind: DeploymentEventKind = state === 'promoted' ? 'rollout-promote' : 'rollout-abort';
    const stable = state === 'promoted' ? { alias: STABLE_ALIAS, version: r.candidateVersion } : undefined;
    const requestId = auditRequestId();
    const updated = await this.deps.metadata.updateRollout(r.id, r.revision, patch, now, {
      event: { kind, strategy: r.strategy, actor, reason, data: { candidate: r.candidateVersion, ...measured, ...(requestId ? { requestId } : {}) } },
      ...(stable ? { stable } : {}),
    }, fence);
    if (!updated) throw conflict(`rollout #${r.id} of ${r.deployment} changed while this ${state === 'promoted' ? 'promotion' : 'abort'} was applied; look again with warden rollout status ${r.deployment}`);
    noteAudit({
      object: `deployment:${r.deployment}`,
      change: state === 'promoted' ? 'rollout.promote' : 'rollout.abort',
      before: { rollout: r.id, state: r.state, stable: r.stableVersion, candidate: r.candidateVersion },
      after: { state, stable: state === 'promoted' ? r.candidateVersion : r.stableVersion, reason: reason.slice(0, 300) },
    });
    // A promotion reaches the serving table before the router lets go, so no request falls back to the old
    // stable version in between; an abort lets go at once. Other replicas follow within a sync.
    if (stable) {
      this.deps.registry.announceAlias(r.deployment, STABLE_ALIAS, r.candidateVersion);
      await this.deps.table.settled();
    }
    this.deps.router.set(r.deployment, undefined);
    this.clearWeights(r.deployment);
    const sid = s.suppressionId;
    if (sid && this.deps.alerting) await this.deps.alerting.endSuppression(sid).catch((err: unknown) => this.deps.logger.error({ err }, 'could not end the rollout suppression'));
    if (state === 'aborted' && byController) this.aborted.set(r.deployment, { at: now, rollout: r.id, candidate: r.candidateVersion, summary: reason });
    this.actions.inc({ deployment: r.deployment, action: state === 'promoted' ? 'promote' : 'abort' });
    this.deps.logger[state === 'aborted' ? 'warn' : 'info']({ deployment: r.deployment, rollout: r.id, candidate: r.candidateVersion, actor, reason }, `rollout ${state}`);
    return this.view(updated);
  }

  private async apply(r: RolloutRecord, patch: RolloutPatch, kind: DeploymentEventKind, actor: string, reason: string, data: Record<string, unknown>, fence?: LeaseFence): Promise<RolloutView> {
    const requestId = auditRequestId();
    const updated = await this.deps.metadata.updateRollout(r.id, r.revision, patch, this.now(), { event: { kind, strategy: r.strategy, actor, reason, data: { candidate: r.candidateVersion, ...data, ...(requestId ? { requestId } : {}) } } }, fence);
    if (!updated) throw conflict(`rollout #${r.id} of ${r.deployment} changed meanwhile; look again with warden rollout status ${r.deployment}`);
    noteAudit({ object: `deployment:${r.deployment}`, change: kind.replace('rollout-', 'rollout.'), before: { rollout: r.id, state: r.state, step: r.step }, after: { state: updated.state, step: updated.step, reason: reason.slice(0, 300) } });
    this.actions.inc({ deployment: r.deployment, action: kind.replace('rollout-', '') });
    this.deps.logger.info({ deployment: r.deployment, rollout: r.id, kind, actor, reason }, `rollout ${kind.replace('rollout-', '')}`);
    await this.sync();
    return this.view(updated);
  }

  view(r: RolloutRecord): RolloutView {
    const spec = specOf(r);
    const step = spec.steps[Math.min(r.step, spec.steps.length - 1)]!;
    const policy = this.policyOf(r);
    return {
      id: r.id,
      deployment: r.deployment,
      strategy: r.strategy,
      state: r.state,
      stable: r.stableVersion,
      candidate: r.candidateVersion,
      step: r.step,
      steps: spec.steps.map((x) => ({ ...x, description: describeStep(x) })),
      weight: r.state === 'running' || r.state === 'paused' ? policy.weight : r.state === 'promoted' ? 100 : 0,
      mirror: r.state === 'running' || r.state === 'paused' ? policy.mirror : 0,
      stepStartedAt: r.stepStartedAt,
      stepEndsAt: step.pauseMs === null ? null : r.stepStartedAt + step.pauseMs,
      spec,
      status: statusOf(r),
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
      endedAt: r.endedAt,
      actor: r.actor,
      reason: r.reason,
    };
  }

  /** The RolloutAborted alert: raised when the controller aborts a rollout, for an hour or until the next rollout. */
  alertSource(): AlertSource {
    return {
      name: 'rollouts',
      evaluate: async (now: number): Promise<AlertCondition[]> => {
        const out: AlertCondition[] = [];
        for (const [deployment, a] of this.aborted) {
          if (now - a.at > 3_600_000) {
            this.aborted.delete(deployment);
            continue;
          }
          out.push({
            alertname: ROLLOUT_ABORTED_ALERT,
            labels: { deployment, rollout: String(a.rollout), candidate: String(a.candidate) },
            severity: 'ticket',
            active: true,
            summary: `${deployment}: rollout #${a.rollout} of v${a.candidate} was aborted and traffic went back to the stable version`,
            description: a.summary,
            runbookUrl: 'docs/runbooks/rollout-aborted.md',
          });
        }
        return out;
      },
    };
  }
}
