/**
 * The store's side of "one controller at a time": a lease is granted when free, expired or already held, and a
 * write fenced by a lease applies only while its holder still holds it unexpired; one active rollout per
 * deployment; revisions refuse a change made against an older state.
 */
import { describe, expect, it } from 'vitest';
import { SqliteMetadataStore } from '../../src/storage/index.ts';

const rollout = (deployment: string, now: number) => ({
  deployment,
  strategy: 'canary' as const,
  stableVersion: 1,
  candidateVersion: 2,
  state: 'running' as const,
  step: 0,
  stepStartedAt: now,
  spec: {},
  status: {},
  createdAt: now,
  actor: 'test',
  reason: 'test',
});
const event = { kind: 'rollout-start' as const, strategy: 'canary' as const, actor: 'test', reason: 'test', data: {} };

describe('rollout leases and fences', () => {
  it('grants a lease to one holder until it expires, then to another', async () => {
    const m = new SqliteMetadataStore(':memory:');
    expect((await m.acquireLease('c', 'a', 1000, 0)).acquired).toBe(true);
    expect(await m.acquireLease('c', 'b', 1000, 500)).toMatchObject({ acquired: false, holder: 'a', expiresAt: 1000 });
    // Renewal by the holder extends it.
    expect(await m.acquireLease('c', 'a', 1000, 900)).toMatchObject({ acquired: true, expiresAt: 1900 });
    expect((await m.acquireLease('c', 'b', 1000, 1899)).acquired).toBe(false);
    expect(await m.acquireLease('c', 'b', 1000, 1900)).toMatchObject({ acquired: true, holder: 'b' });
    await m.releaseLease('c', 'a');
    expect((await m.acquireLease('c', 'a', 1000, 2000)).acquired).toBe(false);
    await m.releaseLease('c', 'b');
    expect((await m.acquireLease('c', 'a', 1000, 2000)).acquired).toBe(true);
    await m.close();
  });

  it('applies a fenced write only while the lease is its holder\'s and unexpired', async () => {
    const m = new SqliteMetadataStore(':memory:');
    await m.createModel({ name: 'd', description: '', createdAt: 0 });
    const r = await m.createRollout(rollout('d', 0), event);
    await m.acquireLease('c', 'a', 1000, 0);
    const decision = { rolloutId: r.id, at: 1, step: 0, metric: 'errorRate', verdict: 'success' as const, value: 0, threshold: 0.01, nStable: 1, nCandidate: 1, detail: {} };
    expect(await m.appendRolloutDecisions([decision], { lease: 'c', holder: 'b', now: 10 })).toBe(false);
    expect(await m.appendRolloutDecisions([decision], { lease: 'c', holder: 'a', now: 1000 })).toBe(false);
    expect(await m.appendRolloutDecisions([decision], { lease: 'c', holder: 'a', now: 999 })).toBe(true);
    expect(await m.listRolloutDecisions(r.id, { limit: 10 })).toHaveLength(1);
    expect(await m.updateRollout(r.id, r.revision, { step: 1 }, 20, undefined, { lease: 'c', holder: 'b', now: 20 })).toBeUndefined();
    const moved = await m.updateRollout(r.id, r.revision, { step: 1 }, 20, undefined, { lease: 'c', holder: 'a', now: 20 });
    expect(moved).toMatchObject({ step: 1, revision: r.revision + 1 });
    // A change made against the older revision is refused, fenced or not.
    expect(await m.updateRollout(r.id, r.revision, { step: 2 }, 30)).toBeUndefined();
    expect((await m.getRollout(r.id))!.step).toBe(1);
    await m.close();
  });

  it('keeps one active rollout per deployment', async () => {
    const m = new SqliteMetadataStore(':memory:');
    await m.createModel({ name: 'd', description: '', createdAt: 0 });
    const r = await m.createRollout(rollout('d', 0), event);
    await expect(m.createRollout(rollout('d', 1), event)).rejects.toMatchObject({ code: 'WARDEN_CONFLICT', message: expect.stringMatching(/already has a running canary rollout \(#1, v2\)/) });
    await m.updateRollout(r.id, r.revision, { state: 'aborted', endedAt: 2 }, 2);
    expect((await m.createRollout(rollout('d', 3), event)).id).toBe(r.id + 1);
    await m.close();
  });
});
