import type { Logger } from 'pino';
import { WardenError, isWardenError } from '../errors.ts';
import { STABLE_ALIAS, type Registry } from '../registry/index.ts';
import type { ModelTable } from '../serving/index.ts';
import type { DeploymentEventKind, DeploymentEventRecord, MetadataStore, RolloutStrategy } from '../storage/index.ts';
import { signatureDifferences } from './compatibility.ts';
import type { RolloutService, RolloutView } from './rollouts.ts';

/** The strategies a deploy may name: direct switches at once; the others start a rollout (rollouts.ts). */
export const STRATEGIES = ['direct', 'shadow', 'canary', 'ab'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** A deployment as callers and operators see it: the name callers use and what serves under it. */
export interface DeploymentState {
  name: string;
  /** The version a request without a version gets. */
  stable: { version: number; since: number | null; pinned: boolean } | null;
  /** At most one candidate: the version a running or paused rollout serves beside the stable one. */
  candidate: { version: number; rollout: number; state: 'running' | 'paused'; weight: number; mirror: number; step: number; steps: number } | null;
  strategy: Strategy;
  versions: number[];
  lastChange: DeploymentEventRecord | null;
}

export interface DeployRequest {
  /** A version number, an alias or `latest`. */
  version: string | number;
  strategy?: string;
  reason?: string;
  actor: string;
  /** Deploy even when the candidate's signature differs from the stable version's. */
  force?: boolean;
  /** Steps, analysis and experiment settings of a progressive strategy (rollouts/spec.ts). */
  spec?: unknown;
  /** False keeps the new version without the stable version's monitoring reference (default: inherited). */
  inheritMonitoring?: boolean;
}

export interface RollbackRequest {
  /** Default: the version that was stable before the current one. */
  to?: string | number;
  reason?: string;
  actor: string;
}

export interface DeployResult {
  deployment: DeploymentState;
  /** The rollout a progressive deploy started. */
  rollout?: RolloutView;
  /** False when the version was already stable: nothing changed and nothing was recorded. */
  changed: boolean;
  event: DeploymentEventRecord | null;
}

export interface DeploymentServiceDeps {
  /** Present when monitoring runs: a new version inherits the stable version's reference. */
  monitoring?: { inheritReference(model: string, from: number, to: number): Promise<{ rows: number; dropped: string[] } | undefined> };
  registry: Registry;
  table: ModelTable;
  metadata: MetadataStore;
  logger: Logger;
}

const conflict = (msg: string) => new WardenError('WARDEN_CONFLICT', msg);
const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/**
 * Deployments: a deployment is the model name callers address; its stable version is the `champion` alias (or the
 * latest version while none is set). Deploying warms the version and checks its signature against the stable one
 * before a single request reaches it, then moves the alias and records the change in one transaction. Every change
 * of the alias, by a deploy, a rollback or a plain alias write, is in the history, so "which version served at T"
 * has an answer.
 */
export class DeploymentService {
  private rollouts: RolloutService | undefined;

  constructor(private readonly deps: DeploymentServiceDeps) {}

  /** Progressive strategies need the rollout controller (wired after both exist). */
  useRollouts(rollouts: RolloutService): void {
    this.rollouts = rollouts;
  }

  async list(): Promise<DeploymentState[]> {
    const out: DeploymentState[] = [];
    for (const m of await this.deps.registry.listModels()) out.push(await this.get(m.name));
    return out;
  }

  async get(name: string): Promise<DeploymentState> {
    const versions = (await this.deps.registry.listVersions(name)).map((v) => v.version);
    const alias = await this.deps.metadata.getAlias(name, STABLE_ALIAS);
    const [last] = await this.deps.metadata.listDeploymentEvents(name, { limit: 1, newestFirst: true });
    const latest = versions.at(-1);
    const active = await this.deps.metadata.activeRollout(name);
    const view = active && this.rollouts?.view(active);
    const candidate =
      active && view
        ? { version: active.candidateVersion, rollout: active.id, state: active.state as 'running' | 'paused', weight: view.weight, mirror: view.mirror, step: active.step + 1, steps: view.steps.length }
        : null;
    const stable = alias
      ? { version: alias.version, since: alias.updatedAt, pinned: true }
      : latest !== undefined
        ? { version: latest, since: null, pinned: false }
        : null;
    return { name, stable, candidate, strategy: active?.strategy ?? 'direct', versions, lastChange: last ?? null };
  }

  /** Makes `version` the stable version at once (strategy `direct`), once it is loaded and its signature fits. */
  async deploy(name: string, req: DeployRequest): Promise<DeployResult> {
    const strategy = req.strategy ?? 'direct';
    if (!(STRATEGIES as readonly string[]).includes(strategy)) throw bad(`strategy must be one of ${STRATEGIES.join(', ')}, got ${JSON.stringify(String(strategy).slice(0, 40))}`);
    if (strategy === 'direct' && req.spec !== undefined) throw bad('a direct deploy takes no spec: steps, analysis and experiment belong to strategies shadow, canary and ab');
    const target = await this.resolve(name, req.version);
    const active = await this.deps.metadata.activeRollout(name);
    if (active) {
      throw conflict(`${name} has a ${active.state} ${active.strategy} rollout of v${active.candidateVersion} (#${active.id}); promote or abort it first (warden rollout promote|abort ${name})`);
    }
    if (strategy === 'direct') return this.switchTo(name, target, 'deploy', req.actor, req.reason ?? `deploy v${target}`, req.force === true, req.inheritMonitoring !== false);
    if (!this.rollouts) throw bad(`strategy ${strategy} needs the rollout controller, which this server does not run`);
    const before = await this.get(name);
    if (!before.stable) throw conflict(`${name} has no stable version to compare v${target} with; deploy it with --strategy direct`);
    const spec = this.rollouts.prepare(name, { stable: before.stable.version, candidate: target, strategy: strategy as RolloutStrategy, spec: req.spec });
    const data = await this.checkAndWarm(name, before.stable.version, target, req.force === true);
    data.monitoring = await this.inherit(name, before.stable.version, target, req.inheritMonitoring !== false);
    const rollout = await this.rollouts.begin(name, {
      stable: before.stable.version,
      candidate: target,
      strategy: strategy as RolloutStrategy,
      spec,
      actor: req.actor,
      reason: req.reason ?? `${strategy} of v${target}`,
      data,
    });
    const after = await this.get(name);
    return { deployment: after, changed: true, event: after.lastChange, rollout };
  }

  /**
   * Makes the previous stable version (or `to`) stable again. While a rollout runs, rolling back is aborting it:
   * the stable version gets all traffic back.
   */
  async rollback(name: string, req: RollbackRequest): Promise<DeployResult> {
    const active = await this.deps.metadata.activeRollout(name);
    if (active && this.rollouts) {
      if (req.to !== undefined) throw conflict(`${name} has a ${active.strategy} rollout of v${active.candidateVersion} running: roll back without --to to abort it (v${active.stableVersion} keeps all traffic), then roll back further`);
      const rollout = await this.rollouts.abort(name, { actor: req.actor, reason: req.reason ?? 'rolled back' });
      const after = await this.get(name);
      return { deployment: after, changed: true, event: after.lastChange, rollout };
    }
    const current = await this.get(name);
    let target: number;
    if (req.to !== undefined) target = await this.resolve(name, req.to);
    else {
      const previous = await this.previousStable(name, current.stable?.version);
      if (previous === undefined) {
        throw conflict(`${name} has no earlier stable version in its history to roll back to; name one with --to (versions: ${current.versions.join(', ') || 'none'})`);
      }
      target = previous;
    }
    // A version that served before is known to fit its callers; one named with --to that never did is checked.
    const servedBefore = (await this.deps.metadata.listDeploymentEvents(name, { limit: 10_000 })).some((e) => e.toVersion === target || e.fromVersion === target);
    return this.switchTo(name, target, 'rollback', req.actor, req.reason ?? `roll back to v${target}`, servedBefore);
  }

  /** The history, oldest first, after the cursor `afterId`. */
  async history(name: string, q: { afterId?: number; beforeId?: number; since?: number; until?: number; limit: number; newestFirst?: boolean }): Promise<DeploymentEventRecord[]> {
    await this.deps.registry.getModel(name);
    return this.deps.metadata.listDeploymentEvents(name, q);
  }

  /**
   * Which version served requests without a version at time `at`: the stable version set by the last change at or
   * before it. Before the first recorded change, and after the alias was deleted, the latest version then served;
   * the answer says which rule gave it.
   */
  async servedAt(name: string, at: number): Promise<{ deployment: string; at: number; version: number | null; basis: string; event: DeploymentEventRecord | null }> {
    await this.deps.registry.getModel(name);
    const [event] = await this.deps.metadata.listDeploymentEvents(name, { until: at, limit: 1, newestFirst: true });
    if (event && event.toVersion !== null) return { deployment: name, at, version: event.toVersion, basis: 'the last change at or before this time', event };
    const versions = (await this.deps.registry.listVersions(name)).filter((v) => v.createdAt <= at);
    const latest = versions.at(-1)?.version ?? null;
    const basis = event ? `${STABLE_ALIAS} was deleted at or before this time, so the latest version then served` : 'no change recorded at or before this time, so the latest version then served';
    return { deployment: name, at, version: latest, basis, event: event ?? null };
  }

  private async resolve(name: string, ref: string | number): Promise<number> {
    if (typeof ref === 'number') {
      if (!Number.isInteger(ref) || ref < 1) throw bad(`version must be a positive integer, an alias or latest, got ${ref}`);
      return (await this.deps.registry.getVersion(name, ref)).version;
    }
    if (typeof ref !== 'string' || ref.length === 0 || ref.length > 64) throw bad('version must be a positive integer, an alias or latest');
    return (await this.deps.registry.resolve(name, ref)).version;
  }

  private async previousStable(name: string, current: number | undefined): Promise<number | undefined> {
    const events = await this.deps.metadata.listDeploymentEvents(name, { limit: 1000, newestFirst: true });
    for (const e of events) if (e.toVersion === current && e.fromVersion !== null && e.fromVersion !== current) return e.fromVersion;
    return undefined;
  }

  /**
   * Checks the candidate's signature against the stable version's and loads it: one that would break callers or
   * cannot load never gets a request (409 naming why). Returns what was checked, for the history.
   */
  private async checkAndWarm(name: string, stableVersion: number | undefined, version: number, skipSignature: boolean): Promise<Record<string, unknown>> {
    const { registry, table } = this.deps;
    const record = await registry.getVersion(name, version);
    const data: Record<string, unknown> = {};
    if (stableVersion !== undefined) {
      const stable = await registry.getVersion(name, stableVersion);
      const diffs = signatureDifferences(stable.signature, record.signature);
      if (diffs.length && !skipSignature) {
        throw conflict(`${name} v${version} does not take what v${stable.version} takes, so callers would fail: ${diffs.join('; ')}. Deploy with force to switch anyway`);
      }
      // A forced switch (or a rollback to a version that served before) keeps what differed, for the history.
      if (diffs.length) Object.assign(data, { signature: 'differs', differences: diffs });
      else data.signature = 'compatible';
    }
    // Warm first: the version serves from the first request it gets, and one that cannot load never gets any.
    const started = performance.now();
    try {
      await table.load(name, version);
    } catch (e) {
      throw conflict(`${name} v${version} cannot be loaded, so it gets no traffic: ${isWardenError(e) ? e.message : (e as Error).message}`);
    }
    data.warmMs = Math.round((performance.now() - started) * 10) / 10;
    return data;
  }

  /** Carries monitoring over to the new version and says what happened, for the history (never silently nothing). */
  private async inherit(name: string, from: number | undefined, to: number, wanted: boolean): Promise<string> {
    const monitoring = this.deps.monitoring;
    if (!monitoring) return 'monitoring is off on this server';
    if (!wanted) return 'not inherited (asked not to)';
    if (from === undefined || from === to) return 'nothing to inherit';
    try {
      const r = await monitoring.inheritReference(name, from, to);
      if (!r) return `v${to} keeps its own reference, or v${from} had none`;
      return `inherited v${from}'s reference: ${r.rows} sampled rows re-profiled with v${to}'s predictions${r.dropped.length ? `; not carried: ${r.dropped.join(', ')}` : ''}`;
    } catch (e) {
      this.deps.logger.warn({ err: e, deployment: name, from, to }, 'monitoring reference could not be inherited');
      return `not inherited: ${(e as Error).message}`;
    }
  }

  private async switchTo(name: string, version: number, kind: DeploymentEventKind, actor: string, reason: string, skipSignature: boolean, inheritMonitoring = false): Promise<DeployResult> {
    const { registry, table, logger } = this.deps;
    const before = await this.get(name);
    if (before.stable?.pinned && before.stable.version === version) return { deployment: before, changed: false, event: null };
    const data = await this.checkAndWarm(name, before.stable?.version, version, skipSignature);
    if (kind === 'deploy') data.monitoring = await this.inherit(name, before.stable?.version, version, inheritMonitoring);
    await registry.setAlias(name, STABLE_ALIAS, version, { kind, actor, reason, data });
    await table.settled();
    const after = await this.get(name);
    logger.info({ deployment: name, kind, from: before.stable?.version ?? null, to: version, actor }, `deployment ${kind}`);
    return { deployment: after, changed: true, event: after.lastChange };
  }
}
