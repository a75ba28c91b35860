/**
 * More of the storage contract (see contract.ts): the metadata port's methods the first part leaves out. Called inside
 * runStorageContract's describe, with the stores of the running test.
 *
 * Ids are only compared, never computed: a database sequence may skip numbers (a refused insert still takes one).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { WardenError } from '../../src/errors.ts';
import type {
  MetadataStore,
  ModelVersionRecord,
  NewDeploymentEvent,
  NewReviewItem,
  NewRollout,
  NewRolloutDecision,
  ReferenceRecord,
  SilenceRecord,
  SuppressionRecord,
} from '../../src/storage/index.ts';
import { auditEntryHash, GENESIS_HASH, type NewAuditEntry } from '../../src/storage/index.ts';
import type { StorageUnderTest } from './contract.ts';

/** Resolves to the rejection reason, failing the test when the promise resolves. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject, it resolved');
}

function version(model: string, sha256: string, over: Partial<ModelVersionRecord> = {}): Omit<ModelVersionRecord, 'version'> {
  return {
    model,
    sha256,
    sizeBytes: 100,
    format: 'onnx',
    signature: { inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'p', datatype: 'FP32', shape: [-1, 1] }] },
    metadata: {},
    createdAt: 1,
    ...over,
  };
}

/** A model with `versions` versions (1..n). */
async function modelWith(m: MetadataStore, name: string, versions: number): Promise<void> {
  await m.createModel({ name, description: '', createdAt: 1 });
  for (let i = 1; i <= versions; i++) await m.createVersion(version(name, `${name}-${i}`.padEnd(64, '0')));
}

const change = (kind: NewDeploymentEvent['kind'], over: Partial<NewDeploymentEvent> = {}): NewDeploymentEvent => ({
  kind,
  strategy: 'direct',
  actor: 'ana',
  reason: `${kind} by ana`,
  data: {},
  ...over,
});

const rollout = (over: Partial<NewRollout> = {}): NewRollout => ({
  deployment: 'd',
  strategy: 'canary',
  stableVersion: 1,
  candidateVersion: 2,
  state: 'running',
  step: 0,
  stepStartedAt: 100,
  spec: { steps: [{ weight: 10 }, { weight: 50 }], analysis: { metrics: ['errorRate'], interval: '1m' } },
  status: {},
  createdAt: 100,
  actor: 'ana',
  reason: 'try v2',
  ...over,
});

const start = change('rollout-start', { strategy: 'canary', data: { steps: 2 } });

const decision = (rolloutId: number, over: Partial<NewRolloutDecision> = {}): NewRolloutDecision => ({
  rolloutId,
  at: 100,
  step: 0,
  metric: 'errorRate',
  verdict: 'success',
  value: 0.01,
  threshold: 0.05,
  nStable: 900,
  nCandidate: 100,
  detail: { test: 'two-proportion z', p: 0.43 },
  ...over,
});

const reviewItem = (requestId: string, row = 0, over: Partial<NewReviewItem> = {}): NewReviewItem => ({
  version: 1,
  requestId,
  row,
  inputs: { temp: 0.5, hr: 17 },
  prediction: { probability: 0.55 },
  reason: 'low_confidence',
  confidence: 0.55,
  createdAt: 1_000 + row,
  ...over,
});

export function metadataContract(stores: () => StorageUnderTest): void {
  const meta = () => stores().metadata;

  describe('MetadataStore: deployment history', () => {
    beforeEach(async () => {
      await modelWith(meta(), 'd', 3);
      await modelWith(meta(), 'other', 1);
    });

    it('records an alias move with the versions before and after, only when given an event', async () => {
      const m = meta();
      await m.setAlias('d', 'champion', 1, 10);
      expect(await m.listDeploymentEvents('d', { limit: 10 })).toEqual([]);
      expect(await m.setAlias('d', 'champion', 2, 20, change('deploy', { data: { warmupMs: 12, signature: 'same' } }))).toEqual({
        model: 'd',
        alias: 'champion',
        version: 2,
        updatedAt: 20,
      });
      await m.setAlias('d', 'champion', 3, 30, change('rollback', { actor: 'bob', reason: 'v3 regressed' }));
      await m.setAlias('other', 'champion', 1, 35, change('alias'));
      // An alias set for the first time has no version before.
      await m.setAlias('d', 'staging', 1, 40, change('alias'));
      const events = await m.listDeploymentEvents('d', { limit: 10 });
      expect(events).toEqual([
        { id: events[0]!.id, deployment: 'd', at: 20, kind: 'deploy', fromVersion: 1, toVersion: 2, strategy: 'direct', actor: 'ana', reason: 'deploy by ana', data: { warmupMs: 12, signature: 'same' } },
        { id: events[1]!.id, deployment: 'd', at: 30, kind: 'rollback', fromVersion: 2, toVersion: 3, strategy: 'direct', actor: 'bob', reason: 'v3 regressed', data: {} },
        { id: events[2]!.id, deployment: 'd', at: 40, kind: 'alias', fromVersion: null, toVersion: 1, strategy: 'direct', actor: 'ana', reason: 'alias by ana', data: {} },
      ]);
      expect(events[0]!.id).toBeLessThan(events[1]!.id);
      expect(events[1]!.id).toBeLessThan(events[2]!.id);
      expect((await m.listDeploymentEvents('other', { limit: 10 })).map((e) => [e.fromVersion, e.toVersion])).toEqual([[null, 1]]);
      expect(await m.listDeploymentEvents('nobody', { limit: 10 })).toEqual([]);
    });

    it('records a deleted alias with toVersion null; deleting a missing alias records nothing', async () => {
      const m = meta();
      await m.setAlias('d', 'champion', 2, 10, change('deploy'));
      await m.setAlias('d', 'staging', 1, 11);
      expect(await m.deleteAlias('d', 'champion', 20, change('alias', { reason: 'champion alias deleted' }))).toBe(true);
      expect(await m.getAlias('d', 'champion')).toBeUndefined();
      expect(await m.deleteAlias('d', 'champion', 30, change('alias'))).toBe(false);
      // Without an event the delete is not part of the history.
      expect(await m.deleteAlias('d', 'staging', 40)).toBe(true);
      const events = await m.listDeploymentEvents('d', { limit: 10 });
      expect(events.map((e) => [e.at, e.fromVersion, e.toVersion, e.reason])).toEqual([
        [10, null, 2, 'deploy by ana'],
        [20, 2, null, 'champion alias deleted'],
      ]);
    });

    it('stores the history entry in the alias write’s transaction: a refused write records nothing', async () => {
      const m = meta();
      await m.setAlias('d', 'champion', 1, 10, change('deploy'));
      await rejection(m.setAlias('d', 'champion', 9, 20, change('deploy')));
      expect((await m.getAlias('d', 'champion'))?.version).toBe(1);
      expect((await m.listDeploymentEvents('d', { limit: 10 })).map((e) => e.at)).toEqual([10]);
    });

    it('chains concurrent alias moves: each entry’s from-version is the previous entry’s to-version', async () => {
      const m = meta();
      await m.setAlias('d', 'champion', 1, 1, change('deploy'));
      await Promise.all(Array.from({ length: 24 }, (_, i) => m.setAlias('d', 'champion', 1 + ((i + 1) % 3), 2 + i, change('deploy'))));
      const events = await m.listDeploymentEvents('d', { limit: 100 });
      expect(events).toHaveLength(25);
      // Ordered by id: the order the writes committed in.
      const byId = [...events].sort((a, b) => a.id - b.id);
      for (let i = 1; i < byId.length; i++) expect(byId[i]!.fromVersion, `entry ${i}`).toBe(byId[i - 1]!.toVersion);
      expect((await m.getAlias('d', 'champion'))?.version).toBe(byId.at(-1)!.toVersion);
    });

    it('lists by time then id, oldest or newest first, bounded by id (exclusive) and time (inclusive), at most limit', async () => {
      const m = meta();
      // Times out of insertion order, with a tie at 300.
      const times = [100, 300, 200, 300, 400];
      for (const [i, at] of times.entries()) await m.setAlias('d', 'champion', 1 + (i % 2), at, change('alias', { reason: `e${i}` }));
      await m.setAlias('other', 'champion', 1, 250, change('alias', { reason: 'other' }));
      const all = await m.listDeploymentEvents('d', { limit: 10 });
      const name = (xs: { reason: string }[]) => xs.map((x) => x.reason);
      expect(name(all)).toEqual(['e0', 'e2', 'e1', 'e3', 'e4']);
      const id = (reason: string) => all.find((e) => e.reason === reason)!.id;
      expect(name(await m.listDeploymentEvents('d', { limit: 10, newestFirst: true }))).toEqual(['e4', 'e3', 'e1', 'e2', 'e0']);
      expect(name(await m.listDeploymentEvents('d', { limit: 10, since: 200 }))).toEqual(['e2', 'e1', 'e3', 'e4']);
      expect(name(await m.listDeploymentEvents('d', { limit: 10, until: 300 }))).toEqual(['e0', 'e2', 'e1', 'e3']);
      expect(name(await m.listDeploymentEvents('d', { limit: 10, since: 200, until: 300, newestFirst: true }))).toEqual(['e3', 'e1', 'e2']);
      expect(name(await m.listDeploymentEvents('d', { limit: 10, afterId: id('e1') }))).toEqual(['e2', 'e3', 'e4']);
      expect(name(await m.listDeploymentEvents('d', { limit: 10, beforeId: id('e3') }))).toEqual(['e0', 'e2', 'e1']);
      expect(name(await m.listDeploymentEvents('d', { limit: 10, afterId: id('e0'), beforeId: id('e4'), newestFirst: true }))).toEqual(['e3', 'e1', 'e2']);
      expect(name(await m.listDeploymentEvents('d', { limit: 2 }))).toEqual(['e0', 'e2']);
      expect(name(await m.listDeploymentEvents('d', { limit: 2, newestFirst: true }))).toEqual(['e4', 'e3']);
      expect(await m.listDeploymentEvents('d', { limit: 10, since: 401 })).toEqual([]);
    });

    it('deleting a model removes its history, rollouts and decisions; the name starts over', async () => {
      const m = meta();
      await m.setAlias('d', 'champion', 1, 10, change('deploy'));
      const r = await m.createRollout(rollout(), start);
      expect(await m.appendRolloutDecisions([decision(r.id)])).toBe(true);
      await m.setAlias('other', 'champion', 1, 10, change('deploy'));
      await m.saveDeploymentFeatures({ deployment: 'd', binding: { views: ['daily'] }, updatedAt: 1, updatedBy: 'ana' });
      await m.saveDeploymentFeatures({ deployment: 'other', binding: { views: ['daily'] }, updatedAt: 1, updatedBy: 'ana' });
      await m.saveRetrainPolicy({ deployment: 'd', policy: { triggers: {} }, updatedAt: 1, updatedBy: 'ana' });
      expect(await m.deleteModel('d')).toBe(true);
      // Its feature binding and retraining policy go too; another deployment's stay.
      expect(await m.getDeploymentFeatures('d')).toBeUndefined();
      expect(await m.getRetrainPolicy('d')).toBeUndefined();
      expect((await m.listDeploymentFeatures()).map((r) => r.deployment)).toEqual(['other']);
      expect(await m.listDeploymentEvents('d', { limit: 10 })).toEqual([]);
      expect(await m.getRollout(r.id)).toBeUndefined();
      expect(await m.activeRollout('d')).toBeUndefined();
      expect(await m.listRollouts({ deployment: 'd', limit: 10 })).toEqual([]);
      expect(await m.listRolloutDecisions(r.id, { limit: 10 })).toEqual([]);
      expect(await m.listDeploymentEvents('other', { limit: 10 })).toHaveLength(1);
      await m.createModel({ name: 'd', description: 'again', createdAt: 2 });
      expect((await m.createVersion(version('d', 'f'.repeat(64)))).version).toBe(1);
      // A new rollout may start: the old active one went with the model.
      expect((await m.createRollout(rollout({ candidateVersion: 1 }), start)).state).toBe('running');
    });
  });

  describe('MetadataStore: rollouts', () => {
    beforeEach(async () => {
      await modelWith(meta(), 'd', 2);
      await modelWith(meta(), 'e', 2);
      await meta().setAlias('d', 'champion', 1, 50);
    });

    it('creates a rollout at revision 1 and records its start in the history', async () => {
      const m = meta();
      const r = await m.createRollout(rollout(), start);
      expect(r).toEqual({ ...rollout(), id: r.id, revision: 1, endedAt: null, updatedAt: 100 });
      expect(await m.getRollout(r.id)).toEqual(r);
      expect(await m.activeRollout('d')).toEqual(r);
      expect(await m.activeRollout('e')).toBeUndefined();
      expect(await m.getRollout(r.id + 1000)).toBeUndefined();
      const events = await m.listDeploymentEvents('d', { limit: 10 });
      expect(events).toEqual([
        { id: events[0]!.id, deployment: 'd', at: 100, kind: 'rollout-start', fromVersion: 1, toVersion: 1, strategy: 'canary', actor: 'ana', reason: 'rollout-start by ana', data: { rollout: r.id, steps: 2 } },
      ]);
    });

    it('refuses a second active (running or paused) rollout of a deployment with WARDEN_CONFLICT, leaving nothing behind', async () => {
      const m = meta();
      const first = await m.createRollout(rollout(), start);
      const e = await rejection(m.createRollout(rollout({ strategy: 'shadow', createdAt: 110 }), start));
      expect(e).toBeInstanceOf(WardenError);
      expect((e as WardenError).code).toBe('WARDEN_CONFLICT');
      expect((e as WardenError).message).toContain(`already has a running canary rollout (#${first.id}, v2)`);
      expect(await m.listRollouts({ deployment: 'd', limit: 10 })).toEqual([first]);
      expect(await m.listDeploymentEvents('d', { limit: 10 })).toHaveLength(1);
      // Other deployments are not affected.
      expect((await m.createRollout(rollout({ deployment: 'e' }), start)).deployment).toBe('e');
      const paused = await m.updateRollout(first.id, first.revision, { state: 'paused' }, 120);
      expect(paused?.state).toBe('paused');
      expect(await rejection(m.createRollout(rollout({ createdAt: 130 }), start))).toMatchObject({ code: 'WARDEN_CONFLICT', message: expect.stringContaining('paused') });
      await m.updateRollout(first.id, paused!.revision, { state: 'aborted', endedAt: 140 }, 140);
      const second = await m.createRollout(rollout({ createdAt: 150 }), start);
      expect(second.id).toBeGreaterThan(first.id);
      expect((await m.activeRollout('d'))?.id).toBe(second.id);
    });

    it('lists rollouts newest first: of one deployment, the active ones, at most limit', async () => {
      const m = meta();
      const r1 = await m.createRollout(rollout(), start);
      await m.updateRollout(r1.id, r1.revision, { state: 'aborted', endedAt: 1 }, 1);
      const r2 = await m.createRollout(rollout({ deployment: 'e' }), start);
      await m.updateRollout(r2.id, r2.revision, { state: 'promoted', endedAt: 2 }, 2);
      const r3 = await m.createRollout(rollout(), start);
      const r4 = await m.createRollout(rollout({ deployment: 'e', strategy: 'ab' }), start);
      const ids = async (q: Parameters<MetadataStore['listRollouts']>[0]) => (await m.listRollouts(q)).map((r) => r.id);
      expect(await ids({ limit: 10 })).toEqual([r4.id, r3.id, r2.id, r1.id]);
      expect(await ids({ deployment: 'd', limit: 10 })).toEqual([r3.id, r1.id]);
      expect(await ids({ active: true, limit: 10 })).toEqual([r4.id, r3.id]);
      expect(await ids({ active: false, limit: 10 })).toEqual([r4.id, r3.id, r2.id, r1.id]);
      expect(await ids({ deployment: 'e', active: true, limit: 10 })).toEqual([r4.id]);
      expect(await ids({ limit: 1 })).toEqual([r4.id]);
      expect(await ids({ deployment: 'nobody', limit: 10 })).toEqual([]);
      expect((await m.listRollouts({ deployment: 'd', limit: 10 }))[1]).toMatchObject({ state: 'aborted', endedAt: 1, revision: 2 });
    });

    it('applies a patch only at the current revision: the fields given change, the others stay', async () => {
      const m = meta();
      const r = await m.createRollout(rollout(), start);
      const u = await m.updateRollout(r.id, 1, { step: 1, stepStartedAt: 200, status: { runs: 3, p: 0.04, failed: [] } }, 250);
      expect(u).toEqual({ ...r, step: 1, stepStartedAt: 200, status: { runs: 3, p: 0.04, failed: [] }, updatedAt: 250, revision: 2 });
      expect(await m.getRollout(r.id)).toEqual(u);
      // A change made against the older revision is refused and changes nothing.
      expect(await m.updateRollout(r.id, 1, { step: 5 }, 300)).toBeUndefined();
      expect(await m.getRollout(r.id)).toEqual(u);
      expect(await m.updateRollout(r.id + 1000, 1, { step: 5 }, 300)).toBeUndefined();
      const spec = { steps: [{ weight: 100 }] };
      const v = await m.updateRollout(r.id, 2, { state: 'aborted', spec, endedAt: 400, reason: 'stopped by ana' }, 400);
      expect(v).toEqual({ ...u, state: 'aborted', spec, endedAt: 400, reason: 'stopped by ana', updatedAt: 400, revision: 3 });
      // Without a change, the history is not written.
      expect((await m.listDeploymentEvents('d', { limit: 10 })).map((e) => e.kind)).toEqual(['rollout-start']);
    });

    it('writes a change to the history and, with stable, moves the stable alias in the same transaction', async () => {
      const m = meta();
      const r = await m.createRollout(rollout(), start);
      const paused = await m.updateRollout(r.id, 1, { state: 'paused' }, 300, { event: change('rollout-pause', { strategy: 'canary', data: { by: 'operator' } }) });
      expect(paused).toMatchObject({ state: 'paused', revision: 2, updatedAt: 300 });
      const promoted = await m.updateRollout(r.id, 2, { state: 'promoted', endedAt: 400 }, 400, {
        event: change('rollout-promote', { strategy: 'canary', data: { candidate: 2 } }),
        stable: { alias: 'champion', version: 2 },
      });
      expect(promoted).toMatchObject({ state: 'promoted', endedAt: 400, revision: 3 });
      expect(await m.getAlias('d', 'champion')).toEqual({ model: 'd', alias: 'champion', version: 2, updatedAt: 400 });
      expect(await m.activeRollout('d')).toBeUndefined();
      const events = await m.listDeploymentEvents('d', { limit: 10 });
      expect(events.map((e) => [e.kind, e.at, e.fromVersion, e.toVersion, e.strategy])).toEqual([
        ['rollout-start', 100, 1, 1, 'canary'],
        ['rollout-pause', 300, 1, 1, 'canary'],
        ['rollout-promote', 400, 1, 2, 'canary'],
      ]);
      expect(events[1]!.data).toEqual({ rollout: r.id, by: 'operator' });
      expect(events[2]!.data).toEqual({ rollout: r.id, candidate: 2 });
    });

    it('takes the rollout’s stable version as the history’s from-version when the deployment has no stable alias', async () => {
      const m = meta();
      const r = await m.createRollout(rollout({ deployment: 'e' }), start);
      await m.updateRollout(r.id, 1, { state: 'promoted', endedAt: 200 }, 200, { event: change('rollout-promote', { strategy: 'canary' }), stable: { alias: 'champion', version: 2 } });
      expect((await m.listDeploymentEvents('e', { limit: 10 })).map((e) => [e.fromVersion, e.toVersion])).toEqual([
        [1, 1],
        [1, 2],
      ]);
      expect((await m.getAlias('e', 'champion'))?.version).toBe(2);
    });

    it('refuses a promotion to a missing version whole: no new revision, history entry or alias move', async () => {
      const m = meta();
      const r = await m.createRollout(rollout(), start);
      await rejection(m.updateRollout(r.id, 1, { state: 'promoted', endedAt: 400 }, 400, { event: change('rollout-promote'), stable: { alias: 'champion', version: 9 } }));
      expect(await m.getRollout(r.id)).toEqual(r);
      expect((await m.getAlias('d', 'champion'))?.version).toBe(1);
      expect(await m.listDeploymentEvents('d', { limit: 10 })).toHaveLength(1);
    });

    it('appends decisions in order and lists them by id, newest first, by run time, after and before an id', async () => {
      const m = meta();
      const r = await m.createRollout(rollout(), start);
      const other = await m.createRollout(rollout({ deployment: 'e' }), start);
      expect(await m.appendRolloutDecisions([decision(r.id), decision(r.id, { metric: 'latencyP99', verdict: 'failure', value: 120.5, threshold: 100 })])).toBe(true);
      expect(
        await m.appendRolloutDecisions([
          decision(r.id, { at: 200, metric: 'errorRate', verdict: 'inconclusive', value: null, threshold: null, nStable: 0, nCandidate: 0, detail: {} }),
          decision(other.id, { at: 200, metric: 'elsewhere' }),
          // No REAL can hold these: they are kept as null.
          decision(r.id, { at: 300, metric: 'ratio', value: Number.NaN, threshold: Number.POSITIVE_INFINITY }),
          decision(r.id, { at: 300, step: 1, metric: 'conversion', detail: { lift: -0.02, ci: [-0.05, 0.01], note: 'naïve ✓' } }),
        ]),
      ).toBe(true);
      expect(await m.appendRolloutDecisions([])).toBe(true);
      const all = await m.listRolloutDecisions(r.id, { limit: 10 });
      expect(all.map((d) => d.metric)).toEqual(['errorRate', 'latencyP99', 'errorRate', 'ratio', 'conversion']);
      expect(all[0]).toEqual({ id: all[0]!.id, ...decision(r.id) });
      expect(all[2]).toMatchObject({ verdict: 'inconclusive', value: null, threshold: null, nStable: 0, detail: {} });
      expect(all[3]).toMatchObject({ value: null, threshold: null });
      expect(all[4]).toEqual({ id: all[4]!.id, ...decision(r.id, { at: 300, step: 1, metric: 'conversion', detail: { lift: -0.02, ci: [-0.05, 0.01], note: 'naïve ✓' } }) });
      for (let i = 1; i < all.length; i++) expect(all[i]!.id).toBeGreaterThan(all[i - 1]!.id);
      const metrics = async (q: Parameters<MetadataStore['listRolloutDecisions']>[1]) => (await m.listRolloutDecisions(r.id, q)).map((d) => d.metric);
      expect(await metrics({ newestFirst: true, limit: 10 })).toEqual(['conversion', 'ratio', 'errorRate', 'latencyP99', 'errorRate']);
      expect(await metrics({ at: 300, limit: 10 })).toEqual(['ratio', 'conversion']);
      expect(await metrics({ at: 250, limit: 10 })).toEqual([]);
      expect(await metrics({ afterId: all[1]!.id, limit: 10 })).toEqual(['errorRate', 'ratio', 'conversion']);
      expect(await metrics({ beforeId: all[2]!.id, newestFirst: true, limit: 10 })).toEqual(['latencyP99', 'errorRate']);
      expect(await metrics({ afterId: all[0]!.id, beforeId: all[4]!.id, limit: 2 })).toEqual(['latencyP99', 'errorRate']);
      expect(await metrics({ limit: 1, newestFirst: true })).toEqual(['conversion']);
      expect((await m.listRolloutDecisions(other.id, { limit: 10 })).map((d) => d.metric)).toEqual(['elsewhere']);
    });
  });

  describe('MetadataStore: leases and fences', () => {
    it('grants a lease when free, expired or already the holder’s, and returns the lease as it stands', async () => {
      const m = meta();
      expect(await m.acquireLease('c', 'a', 1000, 0)).toEqual({ name: 'c', holder: 'a', expiresAt: 1000, acquired: true });
      // Refused: the answer is a's lease, unchanged by the attempt.
      expect(await m.acquireLease('c', 'b', 5000, 500)).toEqual({ name: 'c', holder: 'a', expiresAt: 1000, acquired: false });
      expect(await m.acquireLease('c', 'a', 1000, 900)).toEqual({ name: 'c', holder: 'a', expiresAt: 1900, acquired: true });
      expect(await m.acquireLease('c', 'b', 1000, 1899)).toMatchObject({ holder: 'a', expiresAt: 1900, acquired: false });
      // Expired at exactly expiresAt: taken over.
      expect(await m.acquireLease('c', 'b', 1000, 1900)).toEqual({ name: 'c', holder: 'b', expiresAt: 2900, acquired: true });
      // Leases of other names are independent.
      expect(await m.acquireLease('other', 'a', 10, 1900)).toMatchObject({ holder: 'a', acquired: true });
      // Releasing someone else's lease does nothing.
      await m.releaseLease('c', 'a');
      expect(await m.acquireLease('c', 'a', 1000, 2000)).toMatchObject({ holder: 'b', expiresAt: 2900, acquired: false });
      await m.releaseLease('c', 'b');
      expect(await m.acquireLease('c', 'a', 1000, 2000)).toEqual({ name: 'c', holder: 'a', expiresAt: 3000, acquired: true });
    });

    it('gives a lease contested by many holders at once to exactly one of them', async () => {
      const m = meta();
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => m.acquireLease('c', `h${i}`, 1000, 0)));
      const winners = results.filter((r) => r.acquired);
      expect(winners).toHaveLength(1);
      expect(results.every((r) => r.holder === winners[0]!.holder && r.expiresAt === 1000)).toBe(true);
    });

    it('applies fenced writes only while the lease is the holder’s and unexpired, and refuses the old holder after a takeover', async () => {
      const m = meta();
      await modelWith(m, 'd', 2);
      await m.setAlias('d', 'champion', 1, 1);
      const r = await m.createRollout(rollout(), start);
      await m.acquireLease('controller', 'a', 1000, 0);
      const a = (now: number) => ({ lease: 'controller', holder: 'a', now });
      expect(await m.appendRolloutDecisions([decision(r.id, { metric: 'b' })], { lease: 'controller', holder: 'b', now: 10 })).toBe(false);
      expect(await m.appendRolloutDecisions([decision(r.id, { metric: 'expired' })], a(1000))).toBe(false);
      expect(await m.appendRolloutDecisions([decision(r.id, { metric: 'no lease' })], { lease: 'nope', holder: 'a', now: 10 })).toBe(false);
      expect(await m.appendRolloutDecisions([decision(r.id, { metric: 'ok' })], a(999))).toBe(true);
      expect((await m.listRolloutDecisions(r.id, { limit: 10 })).map((d) => d.metric)).toEqual(['ok']);

      expect(await m.updateRollout(r.id, 1, { step: 1 }, 20, { event: change('rollout-step') }, { lease: 'controller', holder: 'b', now: 20 })).toBeUndefined();
      expect(await m.updateRollout(r.id, 1, { step: 1 }, 20, undefined, a(1000))).toBeUndefined();
      expect(await m.getRollout(r.id)).toEqual(r);
      const stepped = await m.updateRollout(r.id, 1, { step: 1 }, 150, { event: change('rollout-step') }, a(150));
      expect(stepped).toMatchObject({ step: 1, revision: 2 });

      // b takes over once a's lease expired; a, whose clock lags, is refused from then on.
      expect((await m.acquireLease('controller', 'b', 1000, 1000)).acquired).toBe(true);
      expect(await m.appendRolloutDecisions([decision(r.id, { metric: 'stale' })], a(500))).toBe(false);
      const promote = { event: change('rollout-promote'), stable: { alias: 'champion', version: 2 } };
      expect(await m.updateRollout(r.id, 2, { state: 'promoted', endedAt: 600 }, 600, promote, a(600))).toBeUndefined();
      expect(await m.getRollout(r.id)).toEqual(stepped);
      expect((await m.getAlias('d', 'champion'))?.version).toBe(1);
      expect((await m.listDeploymentEvents('d', { limit: 10 })).map((e) => e.kind)).toEqual(['rollout-start', 'rollout-step']);
      expect((await m.listRolloutDecisions(r.id, { limit: 10 })).map((d) => d.metric)).toEqual(['ok']);
      // The new holder's fenced promotion applies.
      expect(await m.updateRollout(r.id, 2, { state: 'promoted', endedAt: 1100 }, 1100, promote, { lease: 'controller', holder: 'b', now: 1100 })).toMatchObject({ state: 'promoted', revision: 3 });
      expect((await m.getAlias('d', 'champion'))?.version).toBe(2);
    });
  });

  describe('MetadataStore: references', () => {
    beforeEach(async () => {
      await modelWith(meta(), 'm', 2);
      await modelWith(meta(), 'n', 1);
    });

    const reference = (model: string, v: number, over: Partial<ReferenceRecord> = {}): ReferenceRecord => ({
      model,
      version: v,
      schema: { columns: [{ name: 'temp', kind: 'numeric', bins: [0, 0.1, 0.25, 1e-7, 12345.678] }, { name: 'city', kind: 'categorical' }] },
      profile: { rows: 1000, columns: { temp: { mean: 0.1 + 0.2, missing: 0 }, city: { top: { 'Zürich': 3, '東京': 2 } } }, empty: null },
      config: { drift: { psi: 0.2 }, window: '1h' },
      source: { file: 'train.csv', sha256: 'a'.repeat(64) },
      createdAt: 10,
      ...over,
    });

    it('saves, replaces, reads and lists references (by model, then version), field for field', async () => {
      const m = meta();
      await m.saveReference(reference('n', 1));
      await m.saveReference(reference('m', 2));
      await m.saveReference(reference('m', 1));
      expect(await m.getReference('m', 2)).toEqual(reference('m', 2));
      expect(await m.getReference('m', 9)).toBeUndefined();
      expect((await m.listReferences()).map((r) => [r.model, r.version])).toEqual([
        ['m', 1],
        ['m', 2],
        ['n', 1],
      ]);
      const replaced = reference('m', 1, { profile: { rows: 5 }, config: {}, source: { since: 1, until: 2 }, createdAt: 20 });
      await m.saveReference(replaced);
      expect(await m.getReference('m', 1)).toEqual(replaced);
      expect(await m.listReferences()).toHaveLength(3);
      expect(await m.deleteReference('m', 1)).toBe(true);
      expect(await m.deleteReference('m', 1)).toBe(false);
      expect(await m.getReference('m', 1)).toBeUndefined();
    });

    it('goes with its version and with its model; a reference of a missing version is refused', async () => {
      const m = meta();
      await m.saveReference(reference('m', 1));
      await m.saveReference(reference('m', 2));
      await m.saveReference(reference('n', 1));
      expect(await m.deleteVersion('m', 2)).toBe(true);
      expect(await m.getReference('m', 2)).toBeUndefined();
      expect(await m.deleteModel('n')).toBe(true);
      expect((await m.listReferences()).map((r) => [r.model, r.version])).toEqual([['m', 1]]);
      await rejection(m.saveReference(reference('m', 7)));
      await rejection(m.saveReference(reference('ghost', 1)));
      expect(await m.listReferences()).toHaveLength(1);
    });
  });

  describe('MetadataStore: review queue', () => {
    beforeEach(async () => {
      await meta().createModel({ name: 'm', description: '', createdAt: 1 });
    });

    it('saves, replaces, lists (by model) and deletes policies; optional fields round-trip as absent', async () => {
      const m = meta();
      await m.createModel({ name: 'a', description: '', createdAt: 1 });
      await m.saveReviewPolicy({ model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 5 });
      expect(await m.getReviewPolicy('m')).toEqual({ model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 5 });
      await m.saveReviewPolicy({ model: 'm', output: 'probability', sampleRate: 0.1, maxQueue: 20, updatedAt: 6 });
      await m.saveReviewPolicy({ model: 'a', confidenceThreshold: 0.9, output: 'p', sampleRate: 0, maxQueue: 1, updatedAt: 7 });
      expect(await m.listReviewPolicies()).toEqual([
        { model: 'a', confidenceThreshold: 0.9, output: 'p', sampleRate: 0, maxQueue: 1, updatedAt: 7 },
        { model: 'm', output: 'probability', sampleRate: 0.1, maxQueue: 20, updatedAt: 6 },
      ]);
      expect(await m.deleteReviewPolicy('m')).toBe(true);
      expect(await m.deleteReviewPolicy('m')).toBe(false);
      expect(await m.getReviewPolicy('m')).toBeUndefined();
      expect(await m.getReviewPolicy('nope')).toBeUndefined();
    });

    it('deletes a model’s policy with the model (its items stay) and refuses a policy of a missing model', async () => {
      const m = meta();
      await m.saveReviewPolicy({ model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 5 });
      await m.enqueueReviewItems('m', [reviewItem('a')], 10);
      await m.deleteModel('m');
      expect(await m.listReviewPolicies()).toEqual([]);
      expect(await m.listReviewItems({ model: 'm', limit: 10 })).toHaveLength(1);
      await rejection(m.saveReviewPolicy({ model: 'ghost', maxQueue: 1, updatedAt: 1 }));
      expect(await m.listReviewPolicies()).toEqual([]);
    });

    it('enqueues in order up to maxPending unlabelled items and returns how many it stored', async () => {
      const m = meta();
      expect(await m.enqueueReviewItems('m', [reviewItem('a', 0), reviewItem('a', 1), reviewItem('a', 2)], 5)).toBe(3);
      expect(await m.enqueueReviewItems('m', [reviewItem('b', 0), reviewItem('b', 1), reviewItem('b', 2)], 5)).toBe(2);
      expect(await m.enqueueReviewItems('m', [reviewItem('c', 0)], 5)).toBe(0);
      expect(await m.enqueueReviewItems('m', [], 5)).toBe(0);
      const all = await m.listReviewItems({ limit: 100 });
      expect(all.map((i) => `${i.requestId}#${i.row}`)).toEqual(['a#0', 'a#1', 'a#2', 'b#0', 'b#1']);
      expect(all[0]).toEqual({ id: all[0]!.id, model: 'm', ...reviewItem('a', 0) });
      for (let i = 1; i < all.length; i++) expect(all[i]!.id).toBeGreaterThan(all[i - 1]!.id);
      // Labelling frees room: the bound counts unlabelled items only.
      await m.labelReviewItem(all[0]!.id, 1, 'ann', 2_000, 0);
      expect(await m.enqueueReviewItems('m', [reviewItem('c', 0), reviewItem('c', 1)], 5)).toBe(1);
      // Other models have their own bound (and need no model row: items keep no foreign key).
      expect(await m.enqueueReviewItems('other', [reviewItem('d', 0)], 5)).toBe(1);
      expect(await m.enqueueReviewItems('m', [reviewItem('e', 0)], 0)).toBe(0);
    });

    it('round-trips an item’s inputs and prediction as JSON, nulls included', async () => {
      const m = meta();
      const inputs = { input: [[0.1, -2.5e-8, 3]], city: 'São Paulo ✓', missing: null, nested: { a: [true, false] } };
      await m.enqueueReviewItems('m', [reviewItem('a', 0, { inputs, prediction: { p: [0.5000001], label: ['yes'] }, reason: 'active_learning', confidence: 0.5000001 })], 10);
      await m.enqueueReviewItems('m', [reviewItem('b', 0, { inputs: null, prediction: null })], 10);
      const [a, b] = await m.listReviewItems({ limit: 10 });
      expect(a).toEqual({ id: a!.id, model: 'm', ...reviewItem('a', 0, { inputs, prediction: { p: [0.5000001], label: ['yes'] }, reason: 'active_learning', confidence: 0.5000001 }) });
      expect(await m.getReviewItem(a!.id)).toEqual(a);
      expect(b).toMatchObject({ inputs: null, prediction: null });
      expect(await m.getReviewItem(b!.id + 1000)).toBeUndefined();
    });

    it('keeps the bound under concurrent enqueues', async () => {
      const m = meta();
      const counts = await Promise.all(Array.from({ length: 20 }, (_, i) => m.enqueueReviewItems('m', [reviewItem(`r${i}`, 0), reviewItem(`r${i}`, 1)], 15)));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(15);
      expect((await m.reviewQueueStats())[0]!.pending).toBe(15);
      expect(await m.listReviewItems({ model: 'm', limit: 100 })).toHaveLength(15);
    });

    it('claims: unclaimed, own (renewed) or expired claims only; never labelled items', async () => {
      const m = meta();
      await m.enqueueReviewItems('m', [reviewItem('a')], 10);
      const { id } = (await m.listReviewItems({ limit: 1 }))[0]!;
      expect(await m.claimReviewItem(id, 'ann', 10_000, 0)).toMatchObject({ id, claimedBy: 'ann', claimedAt: 10_000 });
      expect(await m.claimReviewItem(id, 'bob', 11_000, 9_000)).toBeUndefined();
      expect((await m.getReviewItem(id))!.claimedBy).toBe('ann');
      expect(await m.claimReviewItem(id, 'ann', 12_000, 11_000)).toMatchObject({ claimedBy: 'ann', claimedAt: 12_000 });
      // ann's claim (12 000) is older than the expiry bound: bob may take it over.
      expect(await m.claimReviewItem(id, 'bob', 20_000, 12_001)).toMatchObject({ claimedBy: 'bob', claimedAt: 20_000 });
      expect(await m.labelReviewItem(id, 'yes', 'bob', 21_000, 0)).toMatchObject({ label: 'yes', labelledBy: 'bob', labelledAt: 21_000 });
      expect(await m.claimReviewItem(id, 'bob', 22_000, 0)).toBeUndefined();
      expect(await m.claimReviewItem(id + 1000, 'bob', 22_000, 0)).toBeUndefined();
    });

    it('gives an item claimed by many reviewers at once to exactly one', async () => {
      const m = meta();
      await m.enqueueReviewItems('m', [reviewItem('a')], 10);
      const { id } = (await m.listReviewItems({ limit: 1 }))[0]!;
      const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => m.claimReviewItem(id, `r${i}`, 10_000, 0)));
      const won = claims.filter((c) => c !== undefined);
      expect(won).toHaveLength(1);
      expect((await m.getReviewItem(id))!.claimedBy).toBe(won[0]!.claimedBy);
    });

    it('labels once, under the claim rule; label values keep their JSON type', async () => {
      const m = meta();
      await m.enqueueReviewItems('m', [reviewItem('a', 0), reviewItem('a', 1), reviewItem('a', 2), reviewItem('a', 3)], 10);
      const ids = (await m.listReviewItems({ limit: 10 })).map((i) => i.id) as [number, number, number, number];
      await m.claimReviewItem(ids[0], 'ann', 10_000, 0);
      expect(await m.labelReviewItem(ids[0], 1, 'bob', 11_000, 5_000)).toBeUndefined();
      expect(await m.labelReviewItem(ids[0], 1, 'ann', 11_000, 5_000)).toMatchObject({ label: 1, labelledBy: 'ann', claimedBy: 'ann' });
      expect(await m.labelReviewItem(ids[0], 0, 'ann', 12_000, 5_000)).toBeUndefined();
      expect((await m.getReviewItem(ids[0]))!.label).toBe(1);
      expect(await m.labelReviewItem(ids[1], false, 'bob', 11_000, 0)).toMatchObject({ label: false, labelledBy: 'bob' });
      expect((await m.getReviewItem(ids[1]))!.claimedBy).toBeUndefined();
      expect((await m.getReviewItem(ids[2]))!.label).toBeUndefined();
      expect(await m.labelReviewItem(ids[3], { class: 'fraud', score: 0.9 }, 'bob', 11_000, 0)).toMatchObject({ label: { class: 'fraud', score: 0.9 } });
      // bob's label over an expired claim of someone else.
      await m.claimReviewItem(ids[2], 'ann', 1_000, 0);
      expect(await m.labelReviewItem(ids[2], '1', 'bob', 11_000, 5_000)).toMatchObject({ label: '1', labelledBy: 'bob', claimedBy: 'ann' });
    });

    it('lists by model and status (claims older than the expiry count as open), pages with afterId', async () => {
      const m = meta();
      await m.enqueueReviewItems('m', [reviewItem('a', 0), reviewItem('a', 1), reviewItem('a', 2), reviewItem('a', 3)], 10);
      await m.enqueueReviewItems('n', [reviewItem('b', 0)], 10);
      const ids = (await m.listReviewItems({ model: 'm', limit: 10 })).map((i) => i.id) as [number, number, number, number];
      await m.claimReviewItem(ids[1], 'ann', 10_000, 0);
      await m.claimReviewItem(ids[2], 'ann', 1_000, 0);
      await m.labelReviewItem(ids[3], 1, 'ann', 10_000, 0);
      const q = (status: 'open' | 'claimed' | 'labelled') => m.listReviewItems({ model: 'm', status, claimExpiredBefore: 5_000, limit: 10 });
      expect((await q('open')).map((i) => i.id)).toEqual([ids[0], ids[2]]);
      expect((await q('claimed')).map((i) => i.id)).toEqual([ids[1]]);
      expect((await q('labelled')).map((i) => i.id)).toEqual([ids[3]]);
      // Without an expiry bound, claims never expire.
      expect((await m.listReviewItems({ model: 'm', status: 'open', limit: 10 })).map((i) => i.id)).toEqual([ids[0]]);
      expect((await m.listReviewItems({ model: 'm', status: 'claimed', limit: 10 })).map((i) => i.id)).toEqual([ids[1], ids[2]]);
      expect((await m.listReviewItems({ status: 'open', claimExpiredBefore: 5_000, limit: 10 })).map((i) => i.requestId)).toEqual(['a', 'a', 'b']);
      expect((await m.listReviewItems({ afterId: ids[1], limit: 2 })).map((i) => i.id)).toEqual([ids[2], ids[3]]);
      expect((await m.listReviewItems({ model: 'm', status: 'open', claimExpiredBefore: 5_000, afterId: ids[0], limit: 10 })).map((i) => i.id)).toEqual([ids[2]]);
      expect((await m.listReviewItems({ model: 'n', limit: 10 })).map((i) => i.requestId)).toEqual(['b']);
      expect(await m.listReviewItems({ model: 'nobody', limit: 10 })).toEqual([]);
    });

    it('counts each model’s items by status in the listing’s own terms, with its policy; models with items but no policy are listed too', async () => {
      const m = meta();
      expect(await m.reviewQueues(5_000)).toEqual([]);
      await m.createModel({ name: 'p', description: '', createdAt: 1 });
      await m.saveReviewPolicy({ model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 5 });
      await m.saveReviewPolicy({ model: 'p', sampleRate: 0.1, maxQueue: 20, updatedAt: 6 });
      await m.enqueueReviewItems('m', [0, 1, 2, 3, 4].map((r) => reviewItem('a', r, { createdAt: 500 + r })), 10);
      await m.enqueueReviewItems('gone', [reviewItem('b', 0, { createdAt: 900 })], 10);
      const ids = (await m.listReviewItems({ model: 'm', limit: 10 })).map((i) => i.id) as [number, number, number, number, number];
      await m.claimReviewItem(ids[0], 'ann', 10_000, 0); // live at the bound 5 000
      await m.claimReviewItem(ids[1], 'ann', 1_000, 0); // expired: open
      await m.claimReviewItem(ids[2], 'ann', 5_000, 0); // exactly at the bound: still live
      await m.labelReviewItem(ids[3], 1, 'ann', 10_000, 0);
      const queues = await m.reviewQueues(5_000);
      expect(queues).toEqual([
        { model: 'gone', open: 1, claimed: 0, labelled: 0, oldestOpenCreatedAt: 900 },
        { model: 'm', policy: { model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 5 }, open: 2, claimed: 2, labelled: 1, oldestOpenCreatedAt: 501 },
        { model: 'p', policy: { model: 'p', sampleRate: 0.1, maxQueue: 20, updatedAt: 6 }, open: 0, claimed: 0, labelled: 0 },
      ]);
      for (const q of queues) {
        for (const status of ['open', 'claimed', 'labelled'] as const) {
          expect((await m.listReviewItems({ model: q.model, status, claimExpiredBefore: 5_000, limit: 100 })).length, `${q.model} ${status}`).toBe(q[status]);
        }
      }
      // Without expiry every claim is live.
      expect((await m.reviewQueues(-1)).find((q) => q.model === 'm')).toMatchObject({ open: 1, claimed: 3, oldestOpenCreatedAt: 504 });
    });

    it('reports unlabelled items and the oldest createdAt per model, by model name', async () => {
      const m = meta();
      expect(await m.reviewQueueStats()).toEqual([]);
      await m.enqueueReviewItems('n', [reviewItem('b', 0, { createdAt: 900 })], 10);
      await m.enqueueReviewItems('m', [reviewItem('a', 0, { createdAt: 500 }), reviewItem('a', 1, { createdAt: 700 })], 10);
      await m.enqueueReviewItems('Z', [reviewItem('c', 0, { createdAt: 1 })], 10);
      const first = (await m.listReviewItems({ model: 'm', limit: 1 }))[0]!;
      await m.labelReviewItem(first.id, 1, 'ann', 1_000, 0);
      // Byte order: upper case before lower case, whatever the database's locale.
      expect(await m.reviewQueueStats()).toEqual([
        { model: 'Z', pending: 1, oldestCreatedAt: 1 },
        { model: 'm', pending: 1, oldestCreatedAt: 700 },
        { model: 'n', pending: 1, oldestCreatedAt: 900 },
      ]);
    });
  });

  describe('MetadataStore: silences and suppressions', () => {
    const silence = (id: string, over: Partial<SilenceRecord> = {}): SilenceRecord => ({
      id,
      matchers: [{ name: 'deployment', value: 'fraud', isRegex: false, isEqual: true }],
      startsAt: 10,
      endsAt: 20,
      createdBy: 'ana',
      comment: 'maintenance',
      createdAt: 5,
      updatedAt: 5,
      ...over,
    });
    const suppression = (id: string, over: Partial<SuppressionRecord> = {}): SuppressionRecord => ({
      id,
      deployment: 'fraud',
      startsAt: 10,
      until: 20,
      reason: 'rollout #1',
      createdBy: 'rollouts',
      createdAt: 5,
      ...over,
    });

    it('lists silences by creation time, then id, whatever order they were saved in; a replace keeps createdAt', async () => {
      const m = meta();
      await m.saveSilence(silence('s-b'));
      await m.saveSilence(silence('s-a'));
      await m.saveSilence(silence('s-c', { createdAt: 1, updatedAt: 1 }));
      expect((await m.listSilences()).map((s) => s.id)).toEqual(['s-c', 's-a', 's-b']);
      const matchers = [{ name: 'alertname', value: 'Drift.*', isRegex: true, isEqual: false }];
      await m.saveSilence(silence('s-a', { matchers, startsAt: 11, endsAt: 99, createdBy: 'bob', comment: 'extended', createdAt: 50, updatedAt: 7 }));
      expect(await m.getSilence('s-a')).toEqual(silence('s-a', { matchers, startsAt: 11, endsAt: 99, createdBy: 'bob', comment: 'extended', updatedAt: 7 }));
      expect((await m.listSilences()).map((s) => s.id)).toEqual(['s-c', 's-a', 's-b']);
      expect(await m.listSilences()).toHaveLength(3);
    });

    it('lists suppressions by creation time, then id; a replace keeps createdAt', async () => {
      const m = meta();
      await m.saveSuppression(suppression('r-b'));
      await m.saveSuppression(suppression('r-a'));
      await m.saveSuppression(suppression('r-c', { deployment: 'churn', createdAt: 1 }));
      expect((await m.listSuppressions()).map((s) => s.id)).toEqual(['r-c', 'r-a', 'r-b']);
      await m.saveSuppression(suppression('r-a', { deployment: 'churn', startsAt: 12, until: 15, reason: 'ended early', createdBy: 'ana', createdAt: 50 }));
      expect(await m.listSuppressions()).toEqual([
        suppression('r-c', { deployment: 'churn', createdAt: 1 }),
        suppression('r-a', { deployment: 'churn', startsAt: 12, until: 15, reason: 'ended early', createdBy: 'ana' }),
        suppression('r-b'),
      ]);
    });

    it('keeps one set of custom alert rules, replaced whole', async () => {
      const m = meta();
      await m.saveAlertRules([], 1);
      expect(await m.getAlertRules()).toEqual({ rules: [], updatedAt: 1 });
      const rules = [{ name: 'HighLatency', expr: { metric: 'p99', op: '>', value: 250.5 }, labels: { team: 'ml' } }, { name: 'Other', for: '5m' }];
      await m.saveAlertRules(rules, 2);
      expect(await m.getAlertRules()).toEqual({ rules, updatedAt: 2 });
    });

    it('keeps one feature repository, replaced whole, with who replaced it', async () => {
      const m = meta();
      expect(await m.getFeatureRepo()).toBeUndefined();
      await m.saveFeatureRepo({ entities: [], featureViews: [] }, 1, 'alice');
      expect(await m.getFeatureRepo()).toEqual({ repo: { entities: [], featureViews: [] }, updatedAt: 1, updatedBy: 'alice' });
      const repo = {
        entities: [{ name: 'station', joinKeys: ['station_id'], description: 'Zürich — 東京' }],
        featureViews: [{ name: 'daily', entities: ['station'], source: { kind: 'push' }, timestampField: 'ts', ttlMs: 172_800_000, schema: [{ name: 'cnt', dtype: 'int' }], tags: { team: 'ml' } }],
      };
      await m.saveFeatureRepo(repo, 1_700_000_000_123, 'key:deployer-1');
      expect(await m.getFeatureRepo()).toEqual({ repo, updatedAt: 1_700_000_000_123, updatedBy: 'key:deployer-1' });
    });

    it('keeps the feature views each deployment reads: replaced whole, listed by name, deleted once', async () => {
      const m = meta();
      expect(await m.getDeploymentFeatures('bike')).toBeUndefined();
      expect(await m.listDeploymentFeatures()).toEqual([]);
      await m.saveDeploymentFeatures({ deployment: 'bike', binding: { views: ['daily'] }, updatedAt: 1, updatedBy: 'ana' });
      await m.saveDeploymentFeatures({ deployment: 'bike', binding: { views: ['daily', 'weather'], entityKey: 'day' }, updatedAt: 1_700_000_000_123, updatedBy: 'bo' });
      await m.saveDeploymentFeatures({ deployment: 'Bike', binding: { views: ['Zürich — 東京'] }, updatedAt: 3, updatedBy: 'ana' });
      expect(await m.getDeploymentFeatures('bike')).toEqual({ deployment: 'bike', binding: { views: ['daily', 'weather'], entityKey: 'day' }, updatedAt: 1_700_000_000_123, updatedBy: 'bo' });
      // Byte order, as every other list of names.
      expect((await m.listDeploymentFeatures()).map((r) => r.deployment)).toEqual(['Bike', 'bike']);
      expect((await m.getDeploymentFeatures('Bike'))!.binding).toEqual({ views: ['Zürich — 東京'] });
      expect(await m.deleteDeploymentFeatures('bike')).toBe(true);
      expect(await m.deleteDeploymentFeatures('bike')).toBe(false);
      expect(await m.getDeploymentFeatures('bike')).toBeUndefined();
    });
  });

  describe('MetadataStore: versions, more', () => {
    beforeEach(async () => {
      await meta().createModel({ name: 'm', description: '', createdAt: 1 });
    });

    it('round-trips signature and metadata exactly, and amends only the version named', async () => {
      const m = meta();
      const metadata = { description: 'Zürich — 東京', params: { C: 0.1, depth: 12, flag: false }, metrics: { auc: 0.8700000001, loss: 1e-9 }, trainingDataSha256: 'b'.repeat(64), sourceCommit: 'abc123', tags: { team: 'risk' } };
      const v1 = await m.createVersion(version('m', '1'.repeat(64), { metadata, sizeBytes: 5_000_000_000, createdAt: 1_700_000_000_123 }));
      const v2 = await m.createVersion(version('m', '2'.repeat(64)));
      expect(await m.getVersion('m', 1)).toEqual(v1);
      expect(v1).toMatchObject({ version: 1, sizeBytes: 5_000_000_000, createdAt: 1_700_000_000_123, metadata });
      const signature = { ...v2.signature, features: [{ name: 'temp', datatype: 'FP32', min: -1, max: 1, mean: 0.25, std: 0.5 }] };
      expect(await m.amendVersion('m', 2, { signature, metadata: { tags: { amended: 'yes' } } })).toEqual({ ...v2, signature, metadata: { tags: { amended: 'yes' } } });
      expect(await m.getVersion('m', 1)).toEqual(v1);
      await rejection(m.amendVersion('ghost', 1, { signature, metadata: {} }));
    });

    it('finds the lowest version holding a sha256 and counts every version holding it, across models', async () => {
      const m = meta();
      const sha = 'c'.repeat(64);
      await m.createModel({ name: 'n', description: '', createdAt: 1 });
      await m.createVersion(version('m', '0'.repeat(64)));
      await m.createVersion(version('m', sha));
      await m.createVersion(version('m', sha));
      await m.createVersion(version('n', sha));
      expect((await m.findVersionBySha('m', sha))?.version).toBe(2);
      expect(await m.countVersionsWithSha(sha)).toBe(3);
      await m.deleteVersion('m', 2);
      expect((await m.findVersionBySha('m', sha))?.version).toBe(3);
      expect(await m.findVersionBySha('ghost', sha)).toBeUndefined();
      await m.deleteModel('n');
      expect(await m.countVersionsWithSha(sha)).toBe(1);
    });
  });

  describe('MetadataStore: datasets', () => {
    const filter = { model: 'm', versions: [1, 2], since: 1_700_000_000_000, sources: ['human' as const] };

    it('records an export as writing, ends it once, and keeps what was selected and written', async () => {
      const m = meta();
      const d = await m.createDataset({ filter, format: 'csv', columns: ['hr', 'label'], actor: 'ana', createdAt: 10 });
      expect(d).toEqual({ id: d.id, filter, format: 'csv', columns: ['hr', 'label'], state: 'writing', actor: 'ana', createdAt: 10 });
      const done = await m.finishDataset(d.id, { state: 'complete', sha256: 'a'.repeat(64), rows: 5_000_000_000, bytes: 7, skipped: 2, at: 20 });
      expect(done).toEqual({ ...d, state: 'complete', sha256: 'a'.repeat(64), rows: 5_000_000_000, bytes: 7, skipped: 2, finishedAt: 20 });
      // Ended: a second end (a late failure after success) changes nothing.
      expect(await m.finishDataset(d.id, { state: 'failed', error: 'client went away', rows: 1, bytes: 1, skipped: 0, at: 30 })).toBeUndefined();
      expect(await m.getDataset(d.id)).toEqual(done);
      expect(await m.getDataset(d.id + 1000)).toBeUndefined();
      expect(await m.finishDataset(d.id + 1000, { state: 'complete', sha256: 'b'.repeat(64), rows: 0, bytes: 0, skipped: 0, at: 1 })).toBeUndefined();
    });

    it('keeps why a failed export failed and lists newest first, by model, in pages', async () => {
      const m = meta();
      const a = await m.createDataset({ filter, format: 'csv', columns: [], actor: 'ana', createdAt: 1 });
      const b = await m.createDataset({ filter: { model: 'other', versions: [3] }, format: 'parquet', columns: ['x'], actor: 'bo', createdAt: 2 });
      const c = await m.createDataset({ filter, format: 'parquet', columns: ['y'], actor: 'ana', createdAt: 3 });
      const failed = await m.finishDataset(a.id, { state: 'failed', error: 'the client closed the connection after 3 rows', rows: 3, bytes: 40, skipped: 0, at: 5 });
      expect(failed).toMatchObject({ state: 'failed', error: 'the client closed the connection after 3 rows', rows: 3, bytes: 40, finishedAt: 5 });
      expect(failed!.sha256).toBeUndefined();
      expect((await m.listDatasets({ limit: 10 })).map((d) => d.id)).toEqual([c.id, b.id, a.id]);
      expect((await m.listDatasets({ model: 'm', limit: 10 })).map((d) => d.id)).toEqual([c.id, a.id]);
      expect((await m.listDatasets({ model: 'm', beforeId: c.id, limit: 10 })).map((d) => d.id)).toEqual([a.id]);
      expect((await m.listDatasets({ limit: 1 })).map((d) => d.id)).toEqual([c.id]);
      expect(await m.listDatasets({ model: 'ghost', limit: 10 })).toEqual([]);
    });
  });

  describe('MetadataStore: jobs and retraining policies', () => {
    const newJob = (deployment: string, state: 'queued' | 'awaiting-approval' = 'queued', createdAt = 10) =>
      ({ kind: 'retrain' as const, deployment, state, trigger: { kind: 'drift', windows: 3 }, inputs: { trainer: 'gbt' }, actor: 'retraining', createdAt });

    it('keeps one active job per deployment, moves it only from the states named, and keeps what it did', async () => {
      const m = meta();
      const j = await m.createJob(newJob('bike'));
      expect(j).toEqual({ id: j.id, kind: 'retrain', deployment: 'bike', state: 'queued', trigger: { kind: 'drift', windows: 3 }, inputs: { trainer: 'gbt' }, outputs: {}, logs: '', actor: 'retraining', createdAt: 10, updatedAt: 10 });
      await expect(m.createJob(newJob('bike', 'awaiting-approval'))).rejects.toMatchObject({ code: 'WARDEN_CONFLICT', message: expect.stringMatching(new RegExp(`bike already has a job #${j.id} \\(queued\\)`)) });
      // Another deployment is not held up.
      const other = await m.createJob(newJob('taxi'));
      // Compare-and-set: a job that is not queued cannot be started again.
      const started = await m.updateJob(j.id, ['queued'], { state: 'running', holder: 'replica-a', startedAt: 20, at: 20 });
      expect(started).toMatchObject({ state: 'running', holder: 'replica-a', startedAt: 20, updatedAt: 20 });
      expect(await m.updateJob(j.id, ['queued'], { state: 'running', holder: 'replica-b', startedAt: 21, at: 21 })).toBeUndefined();
      const logged = await m.updateJob(j.id, ['running'], { logs: 'exported 4,000 rows\n', inputs: { trainer: 'gbt', dataset: 7 }, at: 25 });
      expect(logged).toMatchObject({ state: 'running', logs: 'exported 4,000 rows\n', inputs: { trainer: 'gbt', dataset: 7 }, holder: 'replica-a' });
      const done = await m.updateJob(j.id, ['running'], { state: 'rejected', outputs: { gate: { passed: false } }, error: 'mae 70 > 60', finishedAt: 30, at: 30 });
      expect(done).toMatchObject({ state: 'rejected', outputs: { gate: { passed: false } }, error: 'mae 70 > 60', finishedAt: 30, startedAt: 20 });
      expect(await m.getJob(j.id)).toEqual(done);
      // Ended, the deployment may run another.
      const next = await m.createJob(newJob('bike', 'queued', 40));
      expect((await m.listJobs({ limit: 10 })).map((x) => x.id)).toEqual([next.id, other.id, j.id]);
      expect((await m.listJobs({ deployment: 'bike', limit: 10 })).map((x) => x.id)).toEqual([next.id, j.id]);
      expect((await m.listJobs({ deployment: 'bike', states: ['rejected'], limit: 10 })).map((x) => x.id)).toEqual([j.id]);
      expect((await m.listJobs({ deployment: 'bike', beforeId: next.id, limit: 10 })).map((x) => x.id)).toEqual([j.id]);
      expect(await m.listJobs({ states: [], limit: 10 })).toEqual([]);
      expect(await m.getJob(next.id + 1000)).toBeUndefined();
      expect(await m.updateJob(next.id + 1000, ['queued'], { state: 'canceled', at: 50 })).toBeUndefined();
      expect(await m.updateJob(next.id, [], { state: 'canceled', at: 50 })).toBeUndefined();
    });

    it('stores, replaces, lists and deletes a deployment\'s retraining policy', async () => {
      const m = meta();
      expect(await m.getRetrainPolicy('bike')).toBeUndefined();
      await m.saveRetrainPolicy({ deployment: 'bike', policy: { triggers: { labels: { min: 500 } } }, updatedAt: 1, updatedBy: 'ana' });
      await m.saveRetrainPolicy({ deployment: 'bike', policy: { triggers: { labels: { min: 900 } } }, updatedAt: 2, updatedBy: 'bo' });
      await m.saveRetrainPolicy({ deployment: 'abc', policy: {}, updatedAt: 3, updatedBy: 'ana' });
      expect(await m.getRetrainPolicy('bike')).toEqual({ deployment: 'bike', policy: { triggers: { labels: { min: 900 } } }, updatedAt: 2, updatedBy: 'bo' });
      expect((await m.listRetrainPolicies()).map((p) => p.deployment)).toEqual(['abc', 'bike']);
      expect(await m.deleteRetrainPolicy('bike')).toBe(true);
      expect(await m.deleteRetrainPolicy('bike')).toBe(false);
      expect(await m.getRetrainPolicy('bike')).toBeUndefined();
    });
    it('appends audit entries as one hash chain, also when replicas append at once; lists them by filter and seq', async () => {
      const m = meta();
      expect(await m.auditHead()).toBeUndefined();
      const entry = (i: number, over: Partial<NewAuditEntry> = {}): NewAuditEntry => ({
        at: 1_000 + i,
        actor: { kind: 'key', id: i % 2 ? 'k1' : 'k2', role: 'deployer' },
        action: i % 3 ? 'PUT /api/v1/models/:name/aliases/:alias' : 'rollout.abort',
        object: `deployment:d${i % 2}`,
        summary: { before: { stable: i }, after: { stable: i + 1, note: 'Zürich — 東京', x: 0.1 + 0.2 }, nested: { b: [1, { z: 1, a: 2 }], a: null } },
        requestId: `req-${i}`,
        ...over,
      });
      const first = await m.appendAudit([entry(1), entry(2)]);
      expect(first.map((e) => e.seq)).toEqual([1, 2]);
      expect(first[0]!.prevHash).toBe(GENESIS_HASH);
      expect(first[1]!.prevHash).toBe(first[0]!.hash);
      expect(first[0]!.hash).toBe(auditEntryHash(1, GENESIS_HASH, entry(1)));
      expect(await m.appendAudit([])).toEqual([]);
      // Eight appends at once (as replicas would): the chain stays one line, seq without gaps.
      await Promise.all(Array.from({ length: 8 }, (_, k) => m.appendAudit([entry(3 + 2 * k), entry(4 + 2 * k)])));
      const all = await m.listAudit({ afterSeq: 0, limit: 100 });
      expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
      let prev = GENESIS_HASH;
      for (const e of all) {
        expect(e.prevHash).toBe(prev);
        const { seq: _s, prevHash: _p, hash: _h, ...fields } = e;
        expect(e.hash).toBe(auditEntryHash(e.seq, prev, fields));
        prev = e.hash;
      }
      // Read back exactly as written (summary keys in any order, floats, unicode).
      expect(all[0]).toEqual({ ...entry(1), seq: 1, prevHash: GENESIS_HASH, hash: first[0]!.hash });
      expect((await m.auditHead())!.seq).toBe(18);
      expect((await m.listAudit({ limit: 3 })).map((e) => e.seq)).toEqual([18, 17, 16]);
      expect((await m.listAudit({ beforeSeq: 3, limit: 10 })).map((e) => e.seq)).toEqual([2, 1]);
      expect((await m.listAudit({ afterSeq: 16, limit: 10 })).map((e) => e.seq)).toEqual([17, 18]);
      expect((await m.listAudit({ objects: ['deployment:d1'], order: 'asc', limit: 3 })).map((e) => e.object)).toEqual(['deployment:d1', 'deployment:d1', 'deployment:d1']);
      expect(await m.listAudit({ objects: ['deployment:d0', 'deployment:d1'], limit: 100 })).toHaveLength(18);
      expect(await m.listAudit({ objects: [], limit: 100 })).toEqual([]);
      expect((await m.listAudit({ actorId: 'k2', limit: 100 })).every((e) => e.actor.id === 'k2')).toBe(true);
      const byReq = await m.listAudit({ requestId: 'req-7', limit: 10 });
      expect(byReq).toHaveLength(1);
      expect(byReq[0]!.requestId).toBe('req-7');
      expect((await m.listAudit({ actionPrefix: 'rollout.', limit: 100 })).map((e) => e.action)).toEqual(Array(6).fill('rollout.abort'));
      expect(await m.listAudit({ actionPrefix: 'rollout%', limit: 100 })).toEqual([]);
      expect((await m.listAudit({ since: 1_005, until: 1_007, order: 'asc', limit: 10 })).map((e) => e.at)).toEqual([1_005, 1_006]);
    });
  });

  describe('MetadataStore: least-privilege keys and rate limits', () => {
    it('round-trips scopes and expiry; an unscoped key has neither field', async () => {
      const m = meta();
      await m.createApiKey({ id: 's1', name: 'app', role: 'predictor', hash: 'hs1', createdAt: 1, scopes: ['bike', 'taxi'], expiresAt: 9_000 });
      await m.createApiKey({ id: 's2', name: 'ci', role: 'deployer', hash: 'hs2', createdAt: 2 });
      expect(await m.findApiKeyByHash('hs1')).toEqual({ id: 's1', name: 'app', role: 'predictor', hash: 'hs1', createdAt: 1, scopes: ['bike', 'taxi'], expiresAt: 9_000 });
      expect(await m.findApiKeyByHash('hs2')).toEqual({ id: 's2', name: 'ci', role: 'deployer', hash: 'hs2', createdAt: 2 });
    });

    it('rotates an active key: the new hash finds it, the old one is kept until its end; a second rotation drops the first secret', async () => {
      const m = meta();
      await m.createApiKey({ id: 'r1', name: 'app', role: 'predictor', hash: 'old', createdAt: 1 });
      const rotated = await m.rotateApiKey('r1', 'new', 5_000);
      expect(rotated).toMatchObject({ id: 'r1', hash: 'new', previousHash: 'old', previousUntil: 5_000 });
      expect(await m.findApiKeyByHash('old')).toBeUndefined();
      expect((await m.findApiKeyByHash('new'))?.id).toBe('r1');
      expect(await m.rotateApiKey('r1', 'newer', 7_000)).toMatchObject({ hash: 'newer', previousHash: 'new', previousUntil: 7_000 });
      expect(await m.rotateApiKey('missing', 'x', 1)).toBeUndefined();
      await m.revokeApiKey('r1', 10);
      expect(await m.rotateApiKey('r1', 'x', 1)).toBeUndefined();
      expect((await m.listApiKeys())[0]).toMatchObject({ hash: 'newer', revokedAt: 10 });
    });

    it('records the newest use of each key from batches in any order, without touching the key rows', async () => {
      const m = meta();
      await m.createApiKey({ id: 'u1', name: 'a', role: 'viewer', hash: 'hu1', createdAt: 1 });
      await m.createApiKey({ id: 'u2', name: 'b', role: 'viewer', hash: 'hu2', createdAt: 2 });
      await m.touchApiKeys([]);
      await m.touchApiKeys([{ id: 'u1', at: 500 }]);
      await m.touchApiKeys([{ id: 'u1', at: 300 }, { id: 'u2', at: 40 }]);
      await Promise.all([m.touchApiKeys([{ id: 'u2', at: 90 }]), m.touchApiKeys([{ id: 'u2', at: 60 }])]);
      const byId = new Map((await m.listApiKeys()).map((k) => [k.id, k]));
      expect(byId.get('u1')?.lastUsedAt).toBe(500);
      expect(byId.get('u2')?.lastUsedAt).toBe(90);
      expect((await m.findApiKeyByHash('hu1'))?.lastUsedAt).toBe(500);
    });

    it('saves, replaces, lists (by scope, then name) and deletes rate limits; a deployment\'s goes with its model', async () => {
      const m = meta();
      await modelWith(m, 'bike', 1);
      await m.saveRateLimit({ scope: 'key', name: 'k9', rate: 5, burst: 10, updatedAt: 1, updatedBy: 'ana' });
      await m.saveRateLimit({ scope: 'deployment', name: 'bike', rate: 0.5, burst: 2, updatedAt: 2, updatedBy: 'ana' });
      await m.saveRateLimit({ scope: 'key', name: 'k9', rate: 50, burst: 100, updatedAt: 3, updatedBy: 'bo' });
      await m.saveRateLimit({ scope: 'key', name: 'a1', rate: 1, burst: 1, updatedAt: 4, updatedBy: 'bo' });
      expect(await m.listRateLimits()).toEqual([
        { scope: 'deployment', name: 'bike', rate: 0.5, burst: 2, updatedAt: 2, updatedBy: 'ana' },
        { scope: 'key', name: 'a1', rate: 1, burst: 1, updatedAt: 4, updatedBy: 'bo' },
        { scope: 'key', name: 'k9', rate: 50, burst: 100, updatedAt: 3, updatedBy: 'bo' },
      ]);
      expect(await m.deleteRateLimit('key', 'a1')).toBe(true);
      expect(await m.deleteRateLimit('key', 'a1')).toBe(false);
      expect(await m.deleteModel('bike')).toBe(true);
      expect((await m.listRateLimits()).map((r) => `${r.scope}/${r.name}`)).toEqual(['key/k9']);
    });

    it('saves, replaces, lists and deletes quotas; adds up usage by (scope, name, day), reads it from a day and prunes before one', async () => {
      const m = meta();
      await modelWith(m, 'bike', 1);
      await m.saveQuota({ scope: 'key', name: 'k1', perDay: 100, updatedAt: 1, updatedBy: 'ana' });
      await m.saveQuota({ scope: 'deployment', name: 'bike', perMonth: 5000, updatedAt: 2, updatedBy: 'ana' });
      await m.saveQuota({ scope: 'key', name: 'k1', perDay: 10, perMonth: 200, updatedAt: 3, updatedBy: 'bo' });
      expect(await m.listQuotas()).toEqual([
        { scope: 'deployment', name: 'bike', perMonth: 5000, updatedAt: 2, updatedBy: 'ana' },
        { scope: 'key', name: 'k1', perDay: 10, perMonth: 200, updatedAt: 3, updatedBy: 'bo' },
      ]);
      const D = 86_400_000;
      // Two replicas' flushes of the same day add up; another day and another subject stay apart.
      await m.addQuotaUsage([{ scope: 'key', name: 'k1', day: D, count: 3 }, { scope: 'deployment', name: 'bike', day: D, count: 3 }]);
      await m.addQuotaUsage([{ scope: 'key', name: 'k1', day: D, count: 4 }, { scope: 'key', name: 'k1', day: 2 * D, count: 1 }]);
      await m.addQuotaUsage([]);
      expect(await m.quotaUsage(0)).toEqual([
        { scope: 'deployment', name: 'bike', day: D, count: 3 },
        { scope: 'key', name: 'k1', day: D, count: 7 },
        { scope: 'key', name: 'k1', day: 2 * D, count: 1 },
      ]);
      expect(await m.quotaUsage(2 * D)).toEqual([{ scope: 'key', name: 'k1', day: 2 * D, count: 1 }]);
      expect(await m.pruneQuotaUsage(2 * D)).toBe(2);
      expect(await m.quotaUsage(0)).toHaveLength(1);
      expect(await m.deleteQuota('key', 'k1')).toBe(true);
      expect(await m.deleteQuota('key', 'k1')).toBe(false);
      expect(await m.deleteModel('bike')).toBe(true);
      expect(await m.listQuotas()).toEqual([]);
    });

    it('saves, replaces, lists and deletes cost budgets; a deployment\'s goes with its model', async () => {
      const m = meta();
      await modelWith(m, 'bike', 1);
      await modelWith(m, 'aqua', 1);
      await m.saveCostBudget({ deployment: 'bike', daily: 2.5, cap: 'none', updatedAt: 1, updatedBy: 'ana' });
      await m.saveCostBudget({ deployment: 'bike', daily: 3, monthly: 60, cap: 'route', capVersion: 1, updatedAt: 2, updatedBy: 'bo' });
      await m.saveCostBudget({ deployment: 'aqua', monthly: 0.01, cap: 'throttle', updatedAt: 3, updatedBy: 'ana' });
      expect(await m.listCostBudgets()).toEqual([
        { deployment: 'aqua', monthly: 0.01, cap: 'throttle', updatedAt: 3, updatedBy: 'ana' },
        { deployment: 'bike', daily: 3, monthly: 60, cap: 'route', capVersion: 1, updatedAt: 2, updatedBy: 'bo' },
      ]);
      expect(await m.deleteCostBudget('aqua')).toBe(true);
      expect(await m.deleteCostBudget('aqua')).toBe(false);
      expect(await m.deleteModel('bike')).toBe(true);
      expect(await m.listCostBudgets()).toEqual([]);
    });
  });
}
