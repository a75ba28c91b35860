/**
 * The review queue's part of the MetadataStore contract: policies, the bounded enqueue, listing by status
 * with claim expiry, claims and labels as single conditional writes, and queue stats. Written as
 * `runReviewStoreContract(name, open)` so a PostgreSQL adapter can run the same cases.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteMetadataStore, type MetadataStore, type NewReviewItem } from '../../src/storage/index.ts';

const item = (requestId: string, row = 0, over: Partial<NewReviewItem> = {}): NewReviewItem => ({
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

export function runReviewStoreContract(name: string, open: () => Promise<{ metadata: MetadataStore; close(): Promise<void> }>): void {
  describe(`review store contract: ${name}`, () => {
    let metadata: MetadataStore;
    let close: () => Promise<void>;
    beforeEach(async () => {
      ({ metadata, close } = await open());
      await metadata.createModel({ name: 'm', description: '', createdAt: 1 });
    });
    afterEach(async () => close());

    it('saves, replaces, lists and deletes policies; optional fields round-trip as absent', async () => {
      await metadata.saveReviewPolicy({ model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 5 });
      expect(await metadata.getReviewPolicy('m')).toEqual({ model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 5 });
      await metadata.saveReviewPolicy({ model: 'm', output: 'probability', sampleRate: 0.1, maxQueue: 20, updatedAt: 6 });
      expect(await metadata.listReviewPolicies()).toEqual([{ model: 'm', output: 'probability', sampleRate: 0.1, maxQueue: 20, updatedAt: 6 }]);
      expect(await metadata.deleteReviewPolicy('m')).toBe(true);
      expect(await metadata.deleteReviewPolicy('m')).toBe(false);
      expect(await metadata.getReviewPolicy('m')).toBeUndefined();
    });

    it('deletes a model’s policy with the model', async () => {
      await metadata.saveReviewPolicy({ model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 5 });
      await metadata.deleteModel('m');
      expect(await metadata.listReviewPolicies()).toEqual([]);
    });

    it('enqueues in order up to maxPending unlabelled items and returns how many it stored', async () => {
      expect(await metadata.enqueueReviewItems('m', [item('a', 0), item('a', 1), item('a', 2)], 5)).toBe(3);
      expect(await metadata.enqueueReviewItems('m', [item('b', 0), item('b', 1), item('b', 2)], 5)).toBe(2);
      expect(await metadata.enqueueReviewItems('m', [item('c', 0)], 5)).toBe(0);
      expect(await metadata.enqueueReviewItems('m', [], 5)).toBe(0);
      const all = await metadata.listReviewItems({ limit: 100 });
      expect(all.map((i) => `${i.requestId}#${i.row}`)).toEqual(['a#0', 'a#1', 'a#2', 'b#0', 'b#1']);
      expect(all[0]).toEqual({ id: all[0]!.id, model: 'm', ...item('a', 0) });
      // Labelling frees room: the bound counts unlabelled items only.
      await metadata.labelReviewItem(all[0]!.id, 1, 'ann', 2_000, 0);
      expect(await metadata.enqueueReviewItems('m', [item('c', 0), item('c', 1)], 5)).toBe(1);
      // Other models have their own bound.
      expect(await metadata.enqueueReviewItems('other', [item('d', 0)], 5)).toBe(1);
    });

    it('keeps the bound under concurrent enqueues', async () => {
      const counts = await Promise.all(Array.from({ length: 20 }, (_, i) => metadata.enqueueReviewItems('m', [item(`r${i}`, 0), item(`r${i}`, 1)], 15)));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(15);
      expect((await metadata.reviewQueueStats())[0]!.pending).toBe(15);
    });

    it('claims: unclaimed, own (renewed) or expired claims only; never labelled items', async () => {
      await metadata.enqueueReviewItems('m', [item('a')], 10);
      const { id } = (await metadata.listReviewItems({ limit: 1 }))[0]!;
      expect(await metadata.claimReviewItem(id, 'ann', 10_000, 0)).toMatchObject({ id, claimedBy: 'ann', claimedAt: 10_000 });
      expect(await metadata.claimReviewItem(id, 'bob', 11_000, 9_000)).toBeUndefined();
      expect(await metadata.claimReviewItem(id, 'ann', 12_000, 11_000)).toMatchObject({ claimedBy: 'ann', claimedAt: 12_000 });
      // ann's claim (12 000) is older than the expiry bound: bob may take it over.
      expect(await metadata.claimReviewItem(id, 'bob', 20_000, 12_001)).toMatchObject({ claimedBy: 'bob', claimedAt: 20_000 });
      expect(await metadata.labelReviewItem(id, 'yes', 'bob', 21_000, 0)).toMatchObject({ label: 'yes', labelledBy: 'bob', labelledAt: 21_000 });
      expect(await metadata.claimReviewItem(id, 'bob', 22_000, 0)).toBeUndefined();
      expect(await metadata.claimReviewItem(id + 1000, 'bob', 22_000, 0)).toBeUndefined();
    });

    it('labels once, under the claim rule; label values keep their JSON type', async () => {
      await metadata.enqueueReviewItems('m', [item('a', 0), item('a', 1), item('a', 2)], 10);
      const ids = (await metadata.listReviewItems({ limit: 10 })).map((i) => i.id) as [number, number, number];
      await metadata.claimReviewItem(ids[0], 'ann', 10_000, 0);
      expect(await metadata.labelReviewItem(ids[0], 1, 'bob', 11_000, 5_000)).toBeUndefined();
      expect(await metadata.labelReviewItem(ids[0], 1, 'ann', 11_000, 5_000)).toMatchObject({ label: 1, labelledBy: 'ann', claimedBy: 'ann' });
      expect(await metadata.labelReviewItem(ids[0], 0, 'ann', 12_000, 5_000)).toBeUndefined();
      expect(await metadata.labelReviewItem(ids[1], false, 'bob', 11_000, 0)).toMatchObject({ label: false, labelledBy: 'bob' });
      expect((await metadata.getReviewItem(ids[1]))!.claimedBy).toBeUndefined();
      expect((await metadata.getReviewItem(ids[2]))!.label).toBeUndefined();
    });

    it('lists by model and status (claims older than the expiry count as open), pages with afterId', async () => {
      await metadata.enqueueReviewItems('m', [item('a', 0), item('a', 1), item('a', 2), item('a', 3)], 10);
      await metadata.enqueueReviewItems('n', [item('b', 0)], 10);
      const ids = (await metadata.listReviewItems({ model: 'm', limit: 10 })).map((i) => i.id) as [number, number, number, number];
      await metadata.claimReviewItem(ids[1], 'ann', 10_000, 0);
      await metadata.claimReviewItem(ids[2], 'ann', 1_000, 0);
      await metadata.labelReviewItem(ids[3], 1, 'ann', 10_000, 0);
      const q = (status: 'open' | 'claimed' | 'labelled') => metadata.listReviewItems({ model: 'm', status, claimExpiredBefore: 5_000, limit: 10 });
      expect((await q('open')).map((i) => i.id)).toEqual([ids[0], ids[2]]);
      expect((await q('claimed')).map((i) => i.id)).toEqual([ids[1]]);
      expect((await q('labelled')).map((i) => i.id)).toEqual([ids[3]]);
      expect((await metadata.listReviewItems({ model: 'm', status: 'open', limit: 10 })).map((i) => i.id)).toEqual([ids[0]]);
      expect((await metadata.listReviewItems({ afterId: ids[1], limit: 2 })).map((i) => i.id)).toEqual([ids[2], ids[3]]);
      expect((await metadata.listReviewItems({ model: 'n', limit: 10 })).map((i) => i.requestId)).toEqual(['b']);
    });

    it('counts each model’s items by status in the listing’s own terms, with its policy; models with items but no policy are listed too', async () => {
      expect(await metadata.reviewQueues(5_000)).toEqual([]);
      await metadata.createModel({ name: 'p', description: '', createdAt: 1 });
      await metadata.saveReviewPolicy({ model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 5 });
      await metadata.saveReviewPolicy({ model: 'p', sampleRate: 0.1, maxQueue: 20, updatedAt: 6 });
      await metadata.enqueueReviewItems('m', [0, 1, 2, 3, 4].map((r) => item('a', r, { createdAt: 500 + r })), 10);
      await metadata.enqueueReviewItems('gone', [item('b', 0, { createdAt: 900 })], 10);
      const ids = (await metadata.listReviewItems({ model: 'm', limit: 10 })).map((i) => i.id) as [number, number, number, number, number];
      await metadata.claimReviewItem(ids[0], 'ann', 10_000, 0); // live at the bound 5 000
      await metadata.claimReviewItem(ids[1], 'ann', 1_000, 0); // expired: open
      await metadata.claimReviewItem(ids[2], 'ann', 5_000, 0); // exactly at the bound: still live
      await metadata.labelReviewItem(ids[3], 1, 'ann', 10_000, 0);
      const queues = await metadata.reviewQueues(5_000);
      expect(queues).toEqual([
        { model: 'gone', open: 1, claimed: 0, labelled: 0, oldestOpenCreatedAt: 900 },
        { model: 'm', policy: { model: 'm', confidenceThreshold: 0.7, maxQueue: 10, updatedAt: 5 }, open: 2, claimed: 2, labelled: 1, oldestOpenCreatedAt: 501 },
        { model: 'p', policy: { model: 'p', sampleRate: 0.1, maxQueue: 20, updatedAt: 6 }, open: 0, claimed: 0, labelled: 0 },
      ]);
      // The same numbers as listing each status with the same expiry bound.
      for (const q of queues) {
        for (const status of ['open', 'claimed', 'labelled'] as const) {
          expect((await metadata.listReviewItems({ model: q.model, status, claimExpiredBefore: 5_000, limit: 100 })).length, `${q.model} ${status}`).toBe(q[status]);
        }
      }
      // Without expiry every claim is live.
      expect((await metadata.reviewQueues(-1)).find((q) => q.model === 'm')).toMatchObject({ open: 1, claimed: 3, oldestOpenCreatedAt: 504 });
    });

    it('reports unlabelled items and the oldest createdAt per model', async () => {
      expect(await metadata.reviewQueueStats()).toEqual([]);
      await metadata.enqueueReviewItems('m', [item('a', 0, { createdAt: 500 }), item('a', 1, { createdAt: 700 })], 10);
      await metadata.enqueueReviewItems('n', [item('b', 0, { createdAt: 900 })], 10);
      const first = (await metadata.listReviewItems({ model: 'm', limit: 1 }))[0]!;
      await metadata.labelReviewItem(first.id, 1, 'ann', 1_000, 0);
      expect(await metadata.reviewQueueStats()).toEqual([
        { model: 'm', pending: 1, oldestCreatedAt: 700 },
        { model: 'n', pending: 1, oldestCreatedAt: 900 },
      ]);
    });
  });
}

runReviewStoreContract('sqlite', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'warden-review-store-'));
  const metadata = new SqliteMetadataStore(path.join(dir, 'metadata.db'));
  return {
    metadata,
    async close() {
      await metadata.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
