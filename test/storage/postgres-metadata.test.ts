/**
 * The PostgreSQL metadata store: the storage contract's metadata part on a fresh schema per test, then what only a
 * shared database has to prove, that two replicas (two stores, two pools, one schema) writing at once never break
 * an invariant the port promises.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WardenError } from '../../src/errors.ts';
import type { NewReviewItem, NewRollout } from '../../src/storage/index.ts';
import { PgMetadataStore, pgMetadataMigrations } from '../../src/storage/postgres/metadata-store.ts';
import { migrationStatus, openPgPool, parsePgUrl } from '../../src/storage/postgres/database.ts';
import { freshPgSchema, pgPartUnderTest, pgTestUrl } from '../helpers/postgres.ts';
import { runStorageContract } from './contract.ts';

const openPg = () => pgPartUnderTest(async (url) => ({ metadata: await PgMetadataStore.open(url, { maxConnections: 8 }) }));

describe.skipIf(!pgTestUrl())('PostgreSQL metadata store', () => {
  runStorageContract('postgres metadata', openPg, ['metadata']);

  describe('two replicas on one schema', () => {
    let a: PgMetadataStore;
    let b: PgMetadataStore;
    let url: string;
    let drop: () => Promise<void>;

    beforeEach(async () => {
      const s = await freshPgSchema();
      url = s.url;
      drop = s.drop;
      // Both start at once: one migrates, the other waits for it and finds the schema current.
      [a, b] = await Promise.all([PgMetadataStore.open(url, { maxConnections: 6 }), PgMetadataStore.open(url, { maxConnections: 6 })]);
      await a.createModel({ name: 'd', description: '', createdAt: 1 });
    });
    afterEach(async () => {
      await a.close();
      await b.close();
      await drop();
    });

    /** Each call alternately on either replica. */
    const both = <T>(n: number, fn: (store: PgMetadataStore, i: number) => Promise<T>) => Promise.all(Array.from({ length: n }, (_, i) => fn(i % 2 ? b : a, i)));

    const version = (i: number) => ({
      model: 'd',
      sha256: i.toString(16).padStart(64, '0'),
      sizeBytes: 1,
      format: 'onnx' as const,
      signature: { inputs: [], outputs: [] },
      metadata: {},
      createdAt: i,
    });

    const rollout = (createdAt: number): NewRollout => ({
      deployment: 'd',
      strategy: 'canary',
      stableVersion: 1,
      candidateVersion: 2,
      state: 'running',
      step: 0,
      stepStartedAt: createdAt,
      spec: {},
      status: {},
      createdAt,
      actor: 'controller',
      reason: 'race',
    });
    const start = { kind: 'rollout-start' as const, strategy: 'canary' as const, actor: 'controller', reason: 'race', data: {} };

    it('migrated the schema once, to the version this build knows', async () => {
      const pool = openPgPool(parsePgUrl(url));
      try {
        expect(await migrationStatus(pool)).toEqual(new Map([['metadata', pgMetadataMigrations.length]]));
      } finally {
        await pool.end();
      }
      // Opening again applies nothing and keeps the data.
      const c = await PgMetadataStore.open(url);
      expect((await c.listModels()).map((m) => m.name)).toEqual(['d']);
      await c.close();
    });

    it('numbers 20 versions pushed through both replicas at once 1..20, without a duplicate', async () => {
      const created = await both(20, (s, i) => s.createVersion(version(i)));
      expect(created.map((v) => v.version).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect((await b.listVersions('d')).map((v) => v.version)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    });

    it('grants a contested lease to exactly one holder of either replica, and a takeover to exactly one', async () => {
      const first = await both(10, (s, i) => s.acquireLease('controller', `replica-${i}`, 1000, 0));
      const winners = first.filter((r) => r.acquired);
      expect(winners).toHaveLength(1);
      expect(first.every((r) => r.holder === winners[0]!.holder)).toBe(true);
      // Once it expired, everyone tries again (the old holder included): again one wins.
      const second = await both(10, (s, i) => s.acquireLease('controller', `replica-${i}`, 1000, 1000 + i));
      const again = second.filter((r) => r.acquired);
      expect(again).toHaveLength(1);
      expect(await a.acquireLease('controller', again[0]!.holder, 0, 1500)).toMatchObject({ acquired: true });
    });

    it('starts one rollout when both replicas start one at once; the rest get WARDEN_CONFLICT', async () => {
      const outcomes = await both(10, (s, i) => s.createRollout(rollout(100 + i), start).then((r) => r, (e: unknown) => e));
      const started = outcomes.filter((o) => !(o instanceof Error));
      expect(started).toHaveLength(1);
      for (const o of outcomes.filter((x) => x instanceof Error)) {
        expect(o).toBeInstanceOf(WardenError);
        expect((o as WardenError).code).toBe('WARDEN_CONFLICT');
      }
      expect(await b.listRollouts({ deployment: 'd', limit: 20 })).toHaveLength(1);
      expect(await a.listDeploymentEvents('d', { limit: 20 })).toHaveLength(1);
    });

    it('applies one of many updates made against the same revision', async () => {
      const r = await a.createRollout(rollout(100), start);
      const results = await both(10, (s, i) => s.updateRollout(r.id, r.revision, { step: i + 1 }, 200 + i, { event: { ...start, kind: 'rollout-step' } }));
      const applied = results.filter((x) => x !== undefined);
      expect(applied).toHaveLength(1);
      expect(await b.getRollout(r.id)).toEqual(applied[0]);
      expect(applied[0]!.revision).toBe(r.revision + 1);
      expect((await a.listDeploymentEvents('d', { limit: 20 })).map((e) => e.kind)).toEqual(['rollout-start', 'rollout-step']);
    });

    it('keeps the review bound when both replicas enqueue at once, and gives a contested claim to one reviewer', async () => {
      const item = (requestId: string, row: number): NewReviewItem => ({
        version: 1,
        requestId,
        row,
        inputs: {},
        prediction: {},
        reason: 'low_confidence',
        confidence: 0.5,
        createdAt: row,
      });
      const counts = await both(20, (s, i) => s.enqueueReviewItems('d', [item(`r${i}`, 0), item(`r${i}`, 1)], 15));
      expect(counts.reduce((x, y) => x + y, 0)).toBe(15);
      expect(await a.reviewQueueStats()).toEqual([{ model: 'd', pending: 15, oldestCreatedAt: 0 }]);
      const [first, second] = (await b.listReviewItems({ model: 'd', limit: 2 })).map((x) => x.id) as [number, number];
      const claims = await both(10, (s, i) => s.claimReviewItem(first, `reviewer-${i}`, 1000, 0));
      expect(claims.filter((c) => c !== undefined)).toHaveLength(1);
      const labels = await both(10, (s, i) => s.labelReviewItem(second, i, `reviewer-${i}`, 1000, 0));
      expect(labels.filter((l) => l !== undefined)).toHaveLength(1);
    });

    it('chains the history of alias moves made through both replicas at once', async () => {
      for (let i = 0; i < 3; i++) await a.createVersion(version(i));
      const moves = await both(30, (s, i) => s.setAlias('d', 'champion', 1 + (i % 3), 10 + i, { kind: 'deploy', strategy: 'direct', actor: `r${i}`, reason: 'race', data: {} }));
      expect(moves).toHaveLength(30);
      const events = (await a.listDeploymentEvents('d', { limit: 100 })).sort((x, y) => x.id - y.id);
      expect(events[0]!.fromVersion).toBeNull();
      for (let i = 1; i < events.length; i++) expect(events[i]!.fromVersion, `entry ${i}`).toBe(events[i - 1]!.toVersion);
      expect((await b.getAlias('d', 'champion'))?.version).toBe(events.at(-1)!.toVersion);
    });

    it('refuses a fenced write of the old holder once the other replica took the lease over', async () => {
      const r = await a.createRollout(rollout(100), start);
      expect((await a.acquireLease('controller', 'a', 1000, 0)).acquired).toBe(true);
      expect((await b.acquireLease('controller', 'b', 1000, 1000)).acquired).toBe(true);
      const decision = { rolloutId: r.id, at: 900, step: 0, metric: 'errorRate', verdict: 'success' as const, value: 0, threshold: 1, nStable: 1, nCandidate: 1, detail: {} };
      expect(await a.appendRolloutDecisions([decision], { lease: 'controller', holder: 'a', now: 900 })).toBe(false);
      expect(await a.updateRollout(r.id, r.revision, { step: 1 }, 900, undefined, { lease: 'controller', holder: 'a', now: 900 })).toBeUndefined();
      expect(await b.appendRolloutDecisions([decision], { lease: 'controller', holder: 'b', now: 1100 })).toBe(true);
      expect(await a.listRolloutDecisions(r.id, { limit: 10 })).toHaveLength(1);
    });

    it('maps constraint violations to WardenErrors a caller can act on', async () => {
      await expect(b.createModel({ name: 'd', description: '', createdAt: 2 })).rejects.toMatchObject({ code: 'WARDEN_CONFLICT' });
      await expect(b.createVersion({ ...version(1), model: 'ghost' })).rejects.toMatchObject({ code: 'WARDEN_MODEL_NOT_FOUND' });
      await expect(b.setAlias('d', 'champion', 9, 1)).rejects.toMatchObject({ code: 'WARDEN_VERSION_NOT_FOUND' });
      await a.createVersion(version(1));
      await a.setAlias('d', 'champion', 1, 1);
      await expect(b.deleteVersion('d', 1)).rejects.toMatchObject({ code: 'WARDEN_CONFLICT' });
      await a.createApiKey({ id: 'k1', name: 'a', role: 'admin', hash: 'h', createdAt: 1 });
      await expect(b.createApiKey({ id: 'k2', name: 'b', role: 'admin', hash: 'h', createdAt: 1 })).rejects.toMatchObject({ code: 'WARDEN_CONFLICT' });
      await expect(b.amendVersion('d', 9, { signature: { inputs: [], outputs: [] }, metadata: {} })).rejects.toMatchObject({ code: 'WARDEN_VERSION_NOT_FOUND' });
      await expect(b.saveReference({ model: 'd', version: 9, schema: {}, profile: {}, config: {}, source: {}, createdAt: 1 })).rejects.toMatchObject({ code: 'WARDEN_VERSION_NOT_FOUND' });
      await expect(b.saveReviewPolicy({ model: 'ghost', maxQueue: 1, updatedAt: 1 })).rejects.toMatchObject({ code: 'WARDEN_MODEL_NOT_FOUND' });
      const r = await a.createRollout(rollout(100), start);
      await expect(b.updateRollout(r.id, r.revision, { state: 'promoted' }, 200, { event: start, stable: { alias: 'champion', version: 9 } })).rejects.toMatchObject({
        code: 'WARDEN_VERSION_NOT_FOUND',
        message: 'model d has no version 9',
      });
    });

    it('appends a batch too large for one statement in one transaction, in order', async () => {
      // 7 values a row: 12,000 rows need two statements under the 65,535-parameter limit.
      const records = Array.from({ length: 12_000 }, (_, i) => ({ at: i, kind: 'transition' as const, fingerprints: [`f${i}`], data: { i } }));
      await a.appendAlertHistory(records);
      const rows = await b.listAlertHistory({ limit: 20_000 });
      expect(rows.map((r) => r.at)).toEqual(records.map((r) => r.at));
      // A batch that fails part-way stores nothing.
      const bad = [...records.slice(0, 10_000), { at: 1, kind: 'bogus' as 'transition', fingerprints: [], data: {} }];
      await expect(a.appendAlertHistory(bad)).rejects.toThrow();
      expect(await b.listAlertHistory({ limit: 20_000 })).toHaveLength(12_000);
    });
  });
});
