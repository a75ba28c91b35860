/**
 * The storage contract: one suite every adapter of the three storage ports must pass (the habit of
 * Hono's `common.case.test.ts` and Kysely's per-dialect loops).
 *
 * How an adapter plugs in: a `*.test.ts` file calls `runStorageContract(name, open)` at top level.
 * `open` is called before every test and must return *empty* stores (a fresh SQLite directory, a
 * fresh PostgreSQL schema or truncated tables, an empty bucket prefix) plus:
 *   - `tamperArtifact(sha256)`: change the stored bytes of an artifact behind the store's back
 *     (there is no port method for that, so each adapter says how: rewrite a file, overwrite an
 *     S3 object), to prove `get` verifies content;
 *   - `close()`: close the stores and remove what `open` created.
 * test/storage/sqlite.test.ts is the reference. A PostgreSQL adapter adds `test/storage/postgres.test.ts`
 * that runs the contract when `STORAGE_BACKENDS` names `postgres` (e.g. `STORAGE_BACKENDS=sqlite,postgres`
 * with `DATABASE_URL` set), so the default `npm test` needs no database server.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WardenError, type ErrorCode } from '../../src/errors.ts';
import { metadataContract } from './contract-metadata.ts';
import { eventsContract } from './contract-events.ts';
import { sloContract } from './contract-slo.ts';
import type {
  ArtifactStore,
  EventStore,
  LabelInput,
  MetadataStore,
  ModelVersionRecord,
  PredictionEvent,
  TrafficBucketRecord,
} from '../../src/storage/index.ts';

/** What `open` hands the contract: the three ports and two adapter-specific hooks. */
export interface StorageUnderTest {
  metadata: MetadataStore;
  events: EventStore;
  artifacts: ArtifactStore;
  /** Changes the stored bytes of an artifact without going through the port. */
  tamperArtifact(sha256: string): Promise<void>;
  /** Closes the stores and removes whatever `open` created. */
  close(): Promise<void>;
}

const SIGNATURE = {
  inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 12] }],
  outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
  features: [{ name: 'temp', datatype: 'FP32', min: 0, max: 1 }],
};

function versionInput(model: string, sha256 = 'a'.repeat(64), createdAt = 1_000): Omit<ModelVersionRecord, 'version'> {
  return {
    model,
    sha256,
    sizeBytes: 239,
    format: 'onnx',
    signature: SIGNATURE,
    metadata: { description: 'd', params: { C: 1, penalty: 'l2', fit: true }, metrics: { auc: 0.87 }, tags: { team: 'x' } },
    createdAt,
  };
}

/** Resolves to the rejection reason, failing the test when the promise resolves. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject, it resolved');
}

async function expectWardenError(p: Promise<unknown>, code: ErrorCode): Promise<WardenError> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(WardenError);
  expect((e as WardenError).code).toBe(code);
  return e as WardenError;
}

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const BASE_TS = 1_700_000_000_000;
const EVENT_COUNT = 5_000;

/** Event i: model a/b alternating, version 1..3, every 10th an error, ts one ms apart. */
function event(i: number): PredictionEvent {
  const error = i % 10 === 0;
  return {
    requestId: `req-${i}`,
    ts: BASE_TS + i,
    model: i % 2 === 0 ? 'a' : 'b',
    version: 1 + (i % 3),
    status: error ? 'error' : 'ok',
    latencyMs: 0.25 + i / 1000,
    inputs: [{ name: 'input', shape: [1, 2], datatype: 'FP32', data: [i, 0.5] }],
    outputs: error ? null : [{ name: 'probability', shape: [1, 1], datatype: 'FP32', data: [i / EVENT_COUNT] }],
    ...(error ? { error: `WARDEN_INVALID_INPUT: bad row ${i}` } : {}),
    // Tracing on for some events only: the trace id round-trips where present and stays absent elsewhere.
    ...(i % 3 === 0 ? { traceId: i.toString(16).padStart(32, '0') } : {}),
  };
}

export type StoragePort = 'metadata' | 'events' | 'artifacts';

/**
 * Runs the contract suite against the adapter set that `open` returns; with `ports`, only the parts about those
 * ports (a file testing one new adapter beside the reference ones).
 */
export function runStorageContract(name: string, open: () => Promise<StorageUnderTest>, ports: readonly StoragePort[] = ['metadata', 'events', 'artifacts']): void {
  const part = (port: StoragePort) => (title: string, fn: () => void) => (ports.includes(port) ? describe(title, fn) : undefined);
  const metadataPart = part('metadata');
  const eventsPart = part('events');
  const artifactsPart = part('artifacts');
  describe(`storage contract: ${name}`, () => {
    let s: StorageUnderTest;
    beforeEach(async () => {
      s = await open();
    });
    afterEach(async () => {
      await s.close();
    });

    metadataPart('MetadataStore: models', () => {
      it('creates, reads, lists (by name) and deletes models', async () => {
        const m = s.metadata;
        expect(await m.listModels()).toEqual([]);
        await m.createModel({ name: 'zeta', description: 'last', createdAt: 2 });
        await m.createModel({ name: 'alpha', description: '', createdAt: 1 });
        expect(await m.getModel('zeta')).toEqual({ name: 'zeta', description: 'last', createdAt: 2 });
        expect(await m.getModel('nope')).toBeUndefined();
        expect((await m.listModels()).map((x) => x.name)).toEqual(['alpha', 'zeta']);
        expect(await m.deleteModel('zeta')).toBe(true);
        expect(await m.deleteModel('zeta')).toBe(false);
        expect(await m.getModel('zeta')).toBeUndefined();
        expect((await m.listModels()).map((x) => x.name)).toEqual(['alpha']);
      });

      it('refuses a second model with the same name', async () => {
        await s.metadata.createModel({ name: 'm', description: '', createdAt: 1 });
        await rejection(s.metadata.createModel({ name: 'm', description: 'again', createdAt: 2 }));
        expect((await s.metadata.getModel('m'))?.description).toBe('');
      });

      it('deleting a model removes its versions and aliases', async () => {
        const m = s.metadata;
        await m.createModel({ name: 'm', description: '', createdAt: 1 });
        await m.createVersion(versionInput('m', 'b'.repeat(64)));
        await m.setAlias('m', 'champion', 1, 5);
        expect(await m.deleteModel('m')).toBe(true);
        expect(await m.listVersions('m')).toEqual([]);
        expect(await m.listAliases('m')).toEqual([]);
        expect(await m.countVersionsWithSha('b'.repeat(64))).toBe(0);
      });
    });

    metadataPart('MetadataStore: versions', () => {
      beforeEach(async () => {
        await s.metadata.createModel({ name: 'm', description: '', createdAt: 1 });
        await s.metadata.createModel({ name: 'other', description: '', createdAt: 1 });
      });

      it('assigns 1, 2, 3 per model and round-trips the record', async () => {
        const m = s.metadata;
        const v1 = await m.createVersion(versionInput('m', '1'.repeat(64)));
        const v2 = await m.createVersion(versionInput('m', '2'.repeat(64)));
        const o1 = await m.createVersion(versionInput('other', '3'.repeat(64)));
        const v3 = await m.createVersion(versionInput('m', '4'.repeat(64)));
        expect([v1.version, v2.version, v3.version, o1.version]).toEqual([1, 2, 3, 1]);
        expect(await m.getVersion('m', 2)).toEqual({ ...versionInput('m', '2'.repeat(64)), version: 2 });
        expect(await m.getVersion('m', 9)).toBeUndefined();
        expect((await m.listVersions('m')).map((v) => v.version)).toEqual([1, 2, 3]);
      });

      it('gives 20 concurrent createVersion calls 20 distinct numbers 1..20', async () => {
        const created = await Promise.all(
          Array.from({ length: 20 }, (_, i) => s.metadata.createVersion(versionInput('m', i.toString(16).padStart(64, '0')))),
        );
        const numbers = created.map((v) => v.version).sort((a, b) => a - b);
        expect(numbers).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        expect((await s.metadata.listVersions('m')).length).toBe(20);
      });

      it('never reuses a version number, even after the latest version is deleted', async () => {
        const m = s.metadata;
        await m.createVersion(versionInput('m', '1'.repeat(64)));
        await m.createVersion(versionInput('m', '2'.repeat(64)));
        expect(await m.deleteVersion('m', 2)).toBe(true);
        expect(await m.deleteVersion('m', 2)).toBe(false);
        // Prediction events and caches are keyed by (model, version): a reused number would
        // silently point them at a different artifact.
        expect((await m.createVersion(versionInput('m', '3'.repeat(64)))).version).toBe(3);
      });

      it('refuses a version of a model that does not exist', async () => {
        await rejection(s.metadata.createVersion(versionInput('ghost')));
        expect(await s.metadata.listVersions('ghost')).toEqual([]);
      });

      it('amends a version: signature and metadata replaced, the rest (sha, number, size) kept', async () => {
        const m = s.metadata;
        const v = await m.createVersion(versionInput('m', 'e'.repeat(64)));
        const signature = { ...v.signature, features: [{ name: 'a', datatype: 'FP32', min: 0, max: 1 }] };
        const amended = await m.amendVersion('m', v.version, { signature, metadata: { sourceCommit: 'abc' } });
        expect(amended).toEqual({ ...v, signature, metadata: { sourceCommit: 'abc' } });
        expect(await m.getVersion('m', v.version)).toEqual(amended);
        await rejection(m.amendVersion('m', 99, { signature, metadata: {} }));
      });

      it('finds a version by sha256 within one model and counts references across models', async () => {
        const m = s.metadata;
        const shared = 'c'.repeat(64);
        await m.createVersion(versionInput('m', '1'.repeat(64)));
        await m.createVersion(versionInput('m', shared));
        await m.createVersion(versionInput('other', shared));
        expect((await m.findVersionBySha('m', shared))?.version).toBe(2);
        expect((await m.findVersionBySha('other', shared))?.version).toBe(1);
        expect(await m.findVersionBySha('m', 'd'.repeat(64))).toBeUndefined();
        expect(await m.countVersionsWithSha(shared)).toBe(2);
        expect(await m.countVersionsWithSha('1'.repeat(64))).toBe(1);
        expect(await m.countVersionsWithSha('d'.repeat(64))).toBe(0);
        await m.deleteVersion('other', 1);
        expect(await m.countVersionsWithSha(shared)).toBe(1);
      });
    });

    metadataPart('MetadataStore: aliases', () => {
      beforeEach(async () => {
        await s.metadata.createModel({ name: 'm', description: '', createdAt: 1 });
        await s.metadata.createVersion(versionInput('m', '1'.repeat(64)));
        await s.metadata.createVersion(versionInput('m', '2'.repeat(64)));
      });

      it('creates, moves, lists (by alias) and deletes aliases', async () => {
        const m = s.metadata;
        expect(await m.setAlias('m', 'champion', 1, 10)).toEqual({ model: 'm', alias: 'champion', version: 1, updatedAt: 10 });
        await m.setAlias('m', 'challenger', 2, 11);
        expect(await m.getAlias('m', 'champion')).toEqual({ model: 'm', alias: 'champion', version: 1, updatedAt: 10 });
        expect(await m.setAlias('m', 'champion', 2, 12)).toEqual({ model: 'm', alias: 'champion', version: 2, updatedAt: 12 });
        expect(await m.getAlias('m', 'champion')).toEqual({ model: 'm', alias: 'champion', version: 2, updatedAt: 12 });
        expect((await m.listAliases('m')).map((a) => [a.alias, a.version])).toEqual([
          ['challenger', 2],
          ['champion', 2],
        ]);
        expect(await m.deleteAlias('m', 'challenger')).toBe(true);
        expect(await m.deleteAlias('m', 'challenger')).toBe(false);
        expect(await m.getAlias('m', 'challenger')).toBeUndefined();
        expect(await m.getAlias('m', 'nope')).toBeUndefined();
      });

      it('moves an alias in one write: a reader always sees the old or the new target', async () => {
        const m = s.metadata;
        await m.setAlias('m', 'champion', 1, 1);
        const seen = new Set<number | undefined>();
        const ops: Promise<unknown>[] = [];
        for (let i = 0; i < 200; i++) {
          ops.push(m.setAlias('m', 'champion', 1 + (i % 2), i + 2));
          ops.push(m.getAlias('m', 'champion').then((a) => seen.add(a?.version)));
        }
        await Promise.all(ops);
        expect([...seen].every((v) => v === 1 || v === 2)).toBe(true);
        expect((await m.listAliases('m')).length).toBe(1);
      });

      it('refuses an alias to a version that does not exist', async () => {
        await rejection(s.metadata.setAlias('m', 'champion', 7, 1));
        expect(await s.metadata.getAlias('m', 'champion')).toBeUndefined();
      });

      it('refuses to delete a version an alias points at (foreign key)', async () => {
        await s.metadata.setAlias('m', 'champion', 1, 1);
        await rejection(s.metadata.deleteVersion('m', 1));
        expect((await s.metadata.getVersion('m', 1))?.version).toBe(1);
        expect((await s.metadata.getAlias('m', 'champion'))?.version).toBe(1);
        expect(await s.metadata.deleteVersion('m', 2)).toBe(true);
      });
    });

    metadataPart('MetadataStore: API keys', () => {
      it('creates, finds by hash, lists, and revokes once', async () => {
        const m = s.metadata;
        await m.createApiKey({ id: 'k1', name: 'ci', role: 'deployer', hash: 'h1', createdAt: 1 });
        await m.createApiKey({ id: 'k2', name: 'app', role: 'predictor', hash: 'h2', createdAt: 2 });
        expect(await m.findApiKeyByHash('h2')).toEqual({ id: 'k2', name: 'app', role: 'predictor', hash: 'h2', createdAt: 2 });
        expect(await m.findApiKeyByHash('nope')).toBeUndefined();
        expect((await m.listApiKeys()).map((k) => k.id)).toEqual(['k1', 'k2']);
        expect(await m.revokeApiKey('k1', 50)).toBe(true);
        expect(await m.revokeApiKey('k1', 60)).toBe(false);
        expect(await m.revokeApiKey('missing', 60)).toBe(false);
        expect((await m.findApiKeyByHash('h1'))?.revokedAt).toBe(50);
        expect((await m.listApiKeys()).find((k) => k.id === 'k2')?.revokedAt).toBeUndefined();
      });

      it('refuses two keys with the same hash', async () => {
        await s.metadata.createApiKey({ id: 'k1', name: 'a', role: 'admin', hash: 'same', createdAt: 1 });
        await rejection(s.metadata.createApiKey({ id: 'k2', name: 'b', role: 'viewer', hash: 'same', createdAt: 2 }));
        expect((await s.metadata.findApiKeyByHash('same'))?.id).toBe('k1');
      });
    });

    eventsPart('EventStore', () => {
      const all = Array.from({ length: EVENT_COUNT }, (_, i) => event(i));
      beforeEach(async () => {
        await s.events.appendPredictions(all);
      });

      it('appends a batch of 5,000 and reads it back in seq order, field for field', async () => {
        expect(await s.events.countPredictions({})).toBe(EVENT_COUNT);
        const rows = await s.events.queryPredictions({ limit: EVENT_COUNT + 1 });
        expect(rows.length).toBe(EVENT_COUNT);
        for (let i = 1; i < rows.length; i++) expect(rows[i]!.seq).toBeGreaterThan(rows[i - 1]!.seq);
        const { seq: _seq, ...first } = rows[0]!;
        expect(first).toStrictEqual(all[0]);
        const { seq: _seq1, ...second } = rows[1]!;
        expect(second).toStrictEqual(all[1]);
        expect('error' in second).toBe(false);
      });

      it('filters by model, version, status and requestId, and counts the same', async () => {
        const check = async (q: Parameters<EventStore['countPredictions']>[0], expected: PredictionEvent[]) => {
          const rows = await s.events.queryPredictions({ ...q, limit: EVENT_COUNT });
          expect(rows.map((r) => r.requestId)).toEqual(expected.map((e) => e.requestId));
          expect(await s.events.countPredictions(q)).toBe(expected.length);
        };
        await check({ model: 'a' }, all.filter((e) => e.model === 'a'));
        await check({ version: 2 }, all.filter((e) => e.version === 2));
        await check({ status: 'error' }, all.filter((e) => e.status === 'error'));
        await check({ requestId: 'req-1234' }, [all[1234]!]);
        await check({ requestId: 'req-nope' }, []);
        await check({ model: 'b', version: 3, status: 'ok' }, all.filter((e) => e.model === 'b' && e.version === 3 && e.status === 'ok'));
        const errors = await s.events.queryPredictions({ status: 'error', limit: 3 });
        expect(errors.map((e) => e.error)).toEqual(['WARDEN_INVALID_INPUT: bad row 0', 'WARDEN_INVALID_INPUT: bad row 10', 'WARDEN_INVALID_INPUT: bad row 20']);
      });

      it('filters by time: since inclusive, until exclusive', async () => {
        const q = { since: BASE_TS + 100, until: BASE_TS + 200 };
        const rows = await s.events.queryPredictions({ ...q, limit: EVENT_COUNT });
        expect(rows.length).toBe(100);
        expect(rows[0]!.requestId).toBe('req-100');
        expect(rows.at(-1)!.requestId).toBe('req-199');
        expect(await s.events.countPredictions(q)).toBe(100);
        expect(await s.events.countPredictions({ since: BASE_TS + EVENT_COUNT })).toBe(0);
        expect(await s.events.countPredictions({ until: BASE_TS })).toBe(0);
      });

      it('pages forward with afterSeq and limit through every event exactly once', async () => {
        const ids: string[] = [];
        let after: number | undefined;
        let pages = 0;
        for (;;) {
          const page = await s.events.queryPredictions({ limit: 777, ...(after === undefined ? {} : { afterSeq: after }) });
          if (page.length === 0) break;
          expect(page.length).toBeLessThanOrEqual(777);
          ids.push(...page.map((e) => e.requestId));
          after = page.at(-1)!.seq;
          pages++;
        }
        expect(pages).toBe(Math.ceil(EVENT_COUNT / 777));
        expect(ids).toEqual(all.map((e) => e.requestId));
        // Paging combines with filters.
        const errorsOnly = await s.events.queryPredictions({ status: 'error', limit: 2 });
        const next = await s.events.queryPredictions({ status: 'error', afterSeq: errorsOnly[1]!.seq, limit: 2 });
        expect(next.map((e) => e.requestId)).toEqual(['req-20', 'req-30']);
      });

      it('appends later batches after earlier ones; an empty batch is a no-op', async () => {
        const last = (await s.events.queryPredictions({ afterSeq: 0, limit: EVENT_COUNT })).at(-1)!.seq;
        await s.events.appendPredictions([]);
        await s.events.appendPredictions([{ ...event(7), requestId: 'late' }]);
        const tail = await s.events.queryPredictions({ afterSeq: last, limit: 10 });
        expect(tail.map((e) => e.requestId)).toEqual(['late']);
        expect(await s.events.countPredictions({})).toBe(EVENT_COUNT + 1);
      });
    });

    eventsPart('EventStore: labels', () => {
      const NOW = BASE_TS + 3_600_000;
      const DAY = 24 * 3600 * 1000;
      /** A logged 3-row request: input row r is [r, 10 r], output row r is r / 10. */
      const threeRows = (requestId: string, extra: Partial<PredictionEvent> = {}): PredictionEvent => ({
        requestId,
        ts: BASE_TS,
        model: 'm',
        version: 2,
        status: 'ok',
        latencyMs: 1,
        inputs: [{ name: 'input', dims: [3, 2], datatype: 'FP32', data: [0, 0, 1, 10, 2, 20] }],
        outputs: [{ name: 'probability', shape: [3, 1], datatype: 'FP32', data: [0, 0.1, 0.2] }],
        ...extra,
      });
      const joined = async () => (await s.events.queryLabelled({ model: 'm', version: 2, limit: 100 })).map((r) => ({ requestId: r.requestId, row: r.row, key: r.key, label: r.label }));

      it('persists caller keys and joins labels by key and by request id + row, with that row of inputs and outputs', async () => {
        await s.events.appendPredictions([threeRows('r1', { keys: ['k0', 'k1', 'k2'] })]);
        expect((await s.events.queryPredictions({ requestId: 'r1', limit: 1 }))[0]?.keys).toEqual(['k0', 'k1', 'k2']);
        const res = await s.events.appendLabels(
          [
            { requestId: 'r1', row: 2, value: 'busy', source: 'human', ts: BASE_TS + 1000 },
            { key: 'k1', value: true },
          ],
          NOW,
        );
        expect(res).toEqual({ accepted: 2, duplicates: 0, unmatched: 0, late: 0, invalid: 0, errors: [] });
        const rows = await s.events.queryLabelled({ model: 'm', version: 2, limit: 10 });
        expect(rows.map(({ id: _id, ...r }) => r)).toEqual([
          { requestId: 'r1', row: 2, ts: BASE_TS, outputs: { probability: [0.2] }, inputs: { input: [2, 20] }, label: 'busy', labelTs: BASE_TS + 1000, source: 'human', late: false },
          { requestId: 'r1', row: 1, key: 'k1', ts: BASE_TS, outputs: { probability: [0.1] }, inputs: { input: [1, 10] }, label: true, labelTs: NOW, source: 'system', late: false },
        ]);
        expect(await s.events.queryLabelled({ model: 'm', version: 3, limit: 10 })).toEqual([]);
      });

      it('joins each key to its own prediction in a batch of hundreds, across the rows of every write statement', async () => {
        // 203 requests with distinct inputs, every third one refused (its keys name nothing), in one append.
        const events = Array.from({ length: 203 }, (_, i): PredictionEvent => ({
          ...threeRows(`req-${i}`, { keys: [`a${i}`, `b${i}`, `c${i}`] }),
          inputs: [{ name: 'input', dims: [3, 2], datatype: 'FP32', data: [i, 0, i, 1, i, 2] }],
          ...(i % 3 === 2 ? { status: 'error' as const, outputs: null, error: 'WARDEN_INVALID_INPUT: test' } : {}),
        }));
        await s.events.appendPredictions(events);
        const picks = [0, 1, 63, 64, 65, 127, 128, 200, 201, 202];
        const res = await s.events.appendLabels(picks.map((i) => ({ key: `b${i}`, value: i })), NOW);
        const refused = picks.filter((i) => i % 3 === 2).length;
        expect(res).toMatchObject({ accepted: picks.length, unmatched: refused, invalid: 0 });
        const rows = await s.events.queryLabelled({ model: 'm', version: 2, limit: 100 });
        expect(rows.map((r) => [r.requestId, r.row, r.inputs])).toEqual(
          picks.filter((i) => i % 3 !== 2).map((i) => [`req-${i}`, 1, { input: [i, 1] }]),
        );
      });

      it('keeps the later label of a row and counts every duplicate; a label by key and one by request id of one row fold into one', async () => {
        await s.events.appendPredictions([threeRows('r1', { keys: ['k0', 'k1', 'k2'] })]);
        await s.events.appendLabels([{ requestId: 'r1', value: 1, ts: BASE_TS + 20 }], NOW);
        const again = await s.events.appendLabels(
          [
            { requestId: 'r1', row: 0, value: 2, ts: BASE_TS + 10 },
            { key: 'k0', value: 3, ts: BASE_TS + 30 },
          ],
          NOW,
        );
        expect(again).toMatchObject({ accepted: 2, duplicates: 2, invalid: 0 });
        expect(await joined()).toEqual([{ requestId: 'r1', row: 0, key: 'k0', label: 3 }]);
        expect(await s.events.labelStats()).toMatchObject({ total: 1, matched: 1, duplicates: 2 });
      });

      it('stores a label that arrives before its prediction, counts it unmatched, and joins it once the prediction is logged', async () => {
        const res = await s.events.appendLabels(
          [
            { key: 'early-key', value: 0 },
            { requestId: 'early-id', row: 1, value: 1 },
          ],
          NOW,
        );
        expect(res).toMatchObject({ accepted: 2, unmatched: 2, invalid: 0 });
        expect(await s.events.labelStats()).toMatchObject({ total: 2, matched: 0, unmatched: 2 });
        expect(await joined()).toEqual([]);
        await s.events.appendPredictions([threeRows('early-id'), threeRows('other', { keys: ['a', 'early-key', 'b'] })]);
        expect(await joined()).toEqual([
          { requestId: 'other', row: 1, key: 'early-key', label: 0 },
          { requestId: 'early-id', row: 1, key: undefined, label: 1 },
        ]);
        expect(await s.events.labelStats({ model: 'm', version: 2 })).toMatchObject({ total: 2, matched: 2, unmatched: 0 });
      });

      it('counts labels later than lateAfterMs after their prediction as late (default 7 days)', async () => {
        await s.events.appendPredictions([threeRows('old')]);
        const at = (d: number) => BASE_TS + d * DAY;
        const res = await s.events.appendLabels(
          [
            { requestId: 'old', row: 0, value: 1, ts: at(6) },
            { requestId: 'old', row: 1, value: 1, ts: at(8) },
          ],
          at(9),
        );
        expect(res).toMatchObject({ accepted: 2, late: 1 });
        expect(await s.events.appendLabels([{ requestId: 'old', row: 2, value: 1, ts: at(8) }], at(9), { lateAfterMs: 10 * DAY })).toMatchObject({ late: 0 });
        expect((await s.events.queryLabelled({ model: 'm', version: 2, limit: 10 })).map((r) => r.late)).toEqual([false, true, false]);
        expect(await s.events.labelStats()).toMatchObject({ total: 3, late: 1 });
      });

      it('reports each invalid label with its index and stores none of them', async () => {
        await s.events.appendPredictions([threeRows('r1')]);
        const bad = [
          { value: 1 },
          { requestId: 'r1', key: 'k', value: 1 },
          { requestId: 'r1', row: 3, value: 1 },
          { requestId: 'r1', row: -1, value: 1 },
          { requestId: 'r1', value: Number.NaN },
          { requestId: 'r1', value: { a: 1 } },
          { requestId: 'r1' },
          { requestId: 'r1', value: 1, source: 'robot' },
          { requestId: 'r1', value: 1, ts: 'yesterday' },
          { key: '', value: 1 },
          'not a label',
        ] as unknown as LabelInput[];
        const res = await s.events.appendLabels([{ requestId: 'r1', value: 0 }, ...bad], NOW);
        expect(res.accepted).toBe(1);
        expect(res.invalid).toBe(bad.length);
        expect(res.errors.map((e) => e.index)).toEqual(bad.map((_, i) => i + 1));
        expect(res.errors[2]!.error).toMatch(/row 3 is out of range: request r1 has 3 rows/);
        expect(await s.events.labelStats()).toMatchObject({ total: 1 });
      });

      it('keeps a caller key with its first prediction and counts the collision', async () => {
        await s.events.appendPredictions([threeRows('first', { keys: ['x', 'y', 'z'] }), threeRows('second', { keys: ['z', 'u', 'v'] })]);
        await s.events.appendLabels([{ key: 'z', value: 5 }], NOW);
        expect(await joined()).toEqual([{ requestId: 'first', row: 2, key: 'z', label: 5 }]);
        expect((await s.events.labelStats()).duplicateKeys).toBe(1);
        expect((await s.events.labelStats({ model: 'm', version: 2 })).duplicateKeys).toBe(1);
        expect((await s.events.labelStats({ model: 'other' })).duplicateKeys).toBe(0);
      });

      it('pages joined rows by afterId and filters them by prediction time', async () => {
        await s.events.appendPredictions([threeRows('a'), threeRows('b', { ts: BASE_TS + 500 })]);
        await s.events.appendLabels(
          ['a', 'b'].flatMap((requestId) => [0, 1, 2].map((row) => ({ requestId, row, value: row }))),
          NOW,
        );
        const first = await s.events.queryLabelled({ model: 'm', version: 2, limit: 4 });
        const rest = await s.events.queryLabelled({ model: 'm', version: 2, limit: 4, afterId: first.at(-1)!.id });
        expect([...first, ...rest].map((r) => `${r.requestId}/${r.row}`)).toEqual(['a/0', 'a/1', 'a/2', 'b/0', 'b/1', 'b/2']);
        const late = await s.events.queryLabelled({ model: 'm', version: 2, limit: 10, since: BASE_TS + 1, until: BASE_TS + 501 });
        expect(late.map((r) => r.requestId)).toEqual(['b', 'b', 'b']);
      });
    });

    eventsPart('EventStore: SLO series', () => {
      const M = 60_000;
      const T = BASE_TS - (BASE_TS % M);

      it('adds traffic counts per (slo, bucket, source), sums sources on read, oldest first, in range', async () => {
        const e = s.events;
        await e.addSliCounts([
          { slo: 'lat', ts: T + M, source: 'traffic', good: 9, total: 10 },
          { slo: 'lat', ts: T, source: 'traffic', good: 5, total: 5 },
          { slo: 'other', ts: T, source: 'traffic', good: 1, total: 2 },
        ]);
        // A second replica (or a later flush) adds to the same rows.
        await e.addSliCounts([{ slo: 'lat', ts: T + M, source: 'traffic', good: 1, total: 3 }]);
        await e.addSliCounts([]);
        expect(await e.querySli({ slo: 'lat' })).toEqual([
          { ts: T, good: 5, total: 5 },
          { ts: T + M, good: 10, total: 13 },
        ]);
        expect(await e.querySli({ slo: 'lat', since: T + M })).toEqual([{ ts: T + M, good: 10, total: 13 }]);
        expect(await e.querySli({ slo: 'lat', until: T + M })).toEqual([{ ts: T, good: 5, total: 5 }]);
        expect(await e.querySli({ slo: 'none' })).toEqual([]);
        // Fractional counts survive (REAL columns).
        await e.addSliCounts([{ slo: 'frac', ts: T, source: 'traffic', good: 0.5, total: 1.5 }]);
        expect(await e.querySli({ slo: 'frac' })).toEqual([{ ts: T, good: 0.5, total: 1.5 }]);
      });

      it('sums good and total over each range in one read, as summing the read buckets does', async () => {
        const e = s.events;
        const recs = Array.from({ length: 40 }, (_, i) => ({ slo: 'sum', ts: T + i * M, source: i % 3 === 0 ? 'v1/w' : 'traffic', good: i % 7, total: (i % 7) + (i % 4) }));
        await e.addSliCounts(recs.filter((r) => r.source === 'traffic'));
        await e.setSliCounts(recs.filter((r) => r.source !== 'traffic'));
        await e.addSliCounts([{ slo: 'sum-other', ts: T + 5 * M, source: 'traffic', good: 100, total: 100 }]);
        const ranges = [
          { since: T, until: T + 40 * M },
          { since: T + 5 * M, until: T + 6 * M },
          { since: T + 10 * M + 1, until: T + 30 * M },
          { since: T - 100 * M, until: T },
          { since: T + 39 * M, until: T + 1000 * M },
        ];
        const buckets = await e.querySli({ slo: 'sum' });
        const brute = ranges.map((r) => {
          const inside = buckets.filter((b) => b.ts >= r.since && b.ts < r.until);
          return { good: inside.reduce((a, b) => a + b.good, 0), total: inside.reduce((a, b) => a + b.total, 0) };
        });
        expect(await e.sumSli({ slo: 'sum', ranges })).toEqual(brute);
        expect(brute[3]).toEqual({ good: 0, total: 0 });
        expect(await e.sumSli({ slo: 'sum', ranges: [] })).toEqual([]);
        expect(await e.sumSli({ slo: 'nothing', ranges: [ranges[0]!] })).toEqual([{ good: 0, total: 0 }]);
      });

      it('replaces window counts by source, and sums them with other sources of the bucket', async () => {
        const e = s.events;
        await e.setSliCounts([
          { slo: 'acc', ts: T, source: 'v1/0-60000', good: 80, total: 100 },
          { slo: 'acc', ts: T, source: 'v2/0-60000', good: 10, total: 10 },
        ]);
        // Late labels re-evaluate v1's window: its row is replaced, not added to.
        await e.setSliCounts([{ slo: 'acc', ts: T, source: 'v1/0-60000', good: 150, total: 200 }]);
        expect(await e.querySli({ slo: 'acc' })).toEqual([{ ts: T, good: 160, total: 210 }]);
      });

      it('deletes one SLO, or buckets older than a time, and counts the rows removed', async () => {
        const e = s.events;
        await e.addSliCounts([
          { slo: 'a', ts: T, source: 'traffic', good: 1, total: 1 },
          { slo: 'a', ts: T + M, source: 'traffic', good: 1, total: 1 },
          { slo: 'b', ts: T, source: 'traffic', good: 1, total: 1 },
          { slo: 'b', ts: T + 2 * M, source: 'traffic', good: 1, total: 1 },
        ]);
        expect(await e.deleteSli({})).toBe(0);
        expect(await e.deleteSli({ before: T + M })).toBe(2);
        expect(await e.querySli({ slo: 'a' })).toEqual([{ ts: T + M, good: 1, total: 1 }]);
        expect(await e.deleteSli({ slo: 'b' })).toBe(1);
        expect(await e.querySli({ slo: 'b' })).toEqual([]);
        expect(await e.deleteSli({ slo: 'a', before: T })).toBe(0);
        expect(await e.deleteSli({ slo: 'a', before: T + 2 * M })).toBe(1);
      });
    });

    eventsPart('EventStore: traffic buckets and window summaries', () => {
      const bucket = (over: Partial<TrafficBucketRecord> = {}): TrafficBucketRecord => ({
        model: 'm', version: 1, step: 'minute', ts: 60_000, requests: 3, ok: 2, clientErrors: 1, serverErrors: 0, shadow: 0, rows: 4,
        latencySumMs: 6, minMs: 1, maxMs: 3, cpuMs: 2, histogram: [0, 1, 2], errors: { WARDEN_BAD_REQUEST: 1 }, ...over,
      });

      it('adds each record to its bucket (replicas writing the same minute add up) and reads a range in order', async () => {
        const e = s.events;
        await e.addTraffic([bucket(), bucket({ step: 'hour', ts: 0 })]);
        await e.addTraffic([bucket({ minMs: 0.5, maxMs: 9, histogram: [1, 0, 0, 0, 5], errors: { WARDEN_INTERNAL: 2 }, serverErrors: 2 }), bucket({ version: 2, ts: 120_000 })]);
        const minutes = await e.queryTraffic({ model: 'm', step: 'minute', since: 0, until: 3_600_000 });
        expect(minutes.map((b) => [b.ts, b.version])).toEqual([[60_000, 1], [120_000, 2]]);
        expect(minutes[0]).toEqual(bucket({ requests: 6, ok: 4, clientErrors: 2, serverErrors: 2, rows: 8, latencySumMs: 12, minMs: 0.5, maxMs: 9, cpuMs: 4, histogram: [1, 1, 2, 0, 5], errors: { WARDEN_BAD_REQUEST: 1, WARDEN_INTERNAL: 2 } }));
        expect((await e.queryTraffic({ model: 'm', step: 'minute', since: 0, until: 3_600_000, version: 2 })).map((b) => b.version)).toEqual([2]);
        expect(await e.queryTraffic({ model: 'm', step: 'hour', since: 0, until: 3_600_000 })).toEqual([bucket({ step: 'hour', ts: 0 })]);
        expect(await e.queryTraffic({ model: 'other', step: 'minute', since: 0, until: 3_600_000 })).toEqual([]);
        expect(await e.pruneTraffic({ step: 'minute', before: 100_000 })).toBe(1);
        expect((await e.queryTraffic({ model: 'm', step: 'minute', since: 0, until: 3_600_000 })).map((b) => b.ts)).toEqual([120_000]);
        expect(await e.queryTraffic({ model: 'm', step: 'hour', since: 0, until: 3_600_000 })).toHaveLength(1);
        await e.addTraffic([bucket({ model: 'a', ts: 60_000, cpuMs: 1.5 })]);
        // Every model's buckets of the range, without histograms, for cost/.
        expect(await e.trafficUsage({ step: 'minute', since: 0, until: 180_000 })).toEqual([
          { model: 'a', version: 1, ts: 60_000, requests: 3, ok: 2, shadow: 0, cpuMs: 1.5 },
          { model: 'm', version: 2, ts: 120_000, requests: 3, ok: 2, shadow: 0, cpuMs: 2 },
        ]);
        expect(await e.trafficUsage({ step: 'hour', since: 3_600_000, until: 7_200_000 })).toEqual([]);
      });

      it('keeps a summary beside each window result, and returns older results whole', async () => {
        const e = s.events;
        const result = (start: number, summary?: unknown) => ({
          model: 'm', version: 1, windowStart: start, windowEnd: start + 10, rows: 5, datasetDrift: false, qualityFailures: 0,
          report: { drift: { columns: [] } }, createdAt: 1, ...(summary !== undefined ? { summary } : {}),
        });
        await e.saveMonitorResult(result(0, { a: 1 }));
        await e.saveMonitorResult(result(10));
        const rows = await e.listMonitorSummaries({ model: 'm', version: 1 });
        expect(rows.map((r) => [r.windowStart, r.summaryJson, r.result?.rows])).toEqual([[0, '{"a":1}', undefined], [10, undefined, 5]]);
        expect((await e.listMonitorResults({ model: 'm', version: 1 })).map((r) => r.windowStart)).toEqual([0, 10]);
      });

      it('keeps the fuller of two evaluations of a window: a replica that merged fewer rows does not overwrite it', async () => {
        const e = s.events;
        const result = (rows: number, tag: string, withSummary = true) => ({
          model: 'm', version: 1, windowStart: 0, windowEnd: 10, rows, datasetDrift: false, qualityFailures: 0,
          report: { tag }, createdAt: rows, ...(withSummary ? { summary: { tag } } : {}),
        });
        const stored = async () => {
          const [r] = await e.listMonitorResults({ model: 'm', version: 1 });
          const [sum] = await e.listMonitorSummaries({ model: 'm', version: 1 });
          return [r?.rows, (r?.report as { tag: string }).tag, sum?.summaryJson ?? null];
        };
        await e.saveMonitorResult(result(30, 'full'));
        await e.saveMonitorResult(result(20, 'partial'));
        expect(await stored()).toEqual([30, 'full', '{"tag":"full"}']);
        // Nor does a smaller one without a summary delete the fuller one's.
        await e.saveMonitorResult(result(10, 'small', false));
        expect(await stored()).toEqual([30, 'full', '{"tag":"full"}']);
        // As many rows (labels arrived since) or more: replaced, summary with it.
        await e.saveMonitorResult(result(30, 'relabelled'));
        expect(await stored()).toEqual([30, 'relabelled', '{"tag":"relabelled"}']);
        await e.saveMonitorResult(result(40, 'more', false));
        expect(await stored()).toEqual([40, 'more', null]);
      });
    });

    metadataPart('MetadataStore: alerting', () => {
      it('appends alert history in order and filters it by time, deployment, alertname, fingerprint and kind, paging by id', async () => {
        const m = s.metadata;
        await m.appendAlertHistory([
          { at: 100, kind: 'transition', fingerprints: ['aaaa'], alertname: 'Drift', deployment: 'fraud', data: { from: 'inactive', to: 'pending' } },
          { at: 200, kind: 'transition', fingerprints: ['bbbb'], alertname: 'Quality', deployment: 'churn', data: { from: 'pending', to: 'firing' } },
          { at: 300, kind: 'notification', fingerprints: ['aaaa', 'bbbb'], deployment: 'fraud', receiver: 'hook', data: { ok: true, attempts: 1 } },
        ]);
        await m.appendAlertHistory([]);
        const all = await m.listAlertHistory({ limit: 10 });
        expect(all.map((e) => e.at)).toEqual([100, 200, 300]);
        expect(all[2]).toEqual({ id: all[2]!.id, at: 300, kind: 'notification', fingerprints: ['aaaa', 'bbbb'], deployment: 'fraud', receiver: 'hook', data: { ok: true, attempts: 1 } });
        expect(all[0]!.id).toBeLessThan(all[1]!.id);
        expect((await m.listAlertHistory({ limit: 10, since: 200, until: 300 })).map((e) => e.at)).toEqual([200]);
        expect((await m.listAlertHistory({ limit: 10, deployment: 'fraud' })).map((e) => e.at)).toEqual([100, 300]);
        expect((await m.listAlertHistory({ limit: 10, alertname: 'Quality' })).map((e) => e.at)).toEqual([200]);
        expect((await m.listAlertHistory({ limit: 10, fingerprint: 'bbbb' })).map((e) => e.at)).toEqual([200, 300]);
        expect((await m.listAlertHistory({ limit: 10, fingerprint: 'bbb' })).map((e) => e.at)).toEqual([]);
        expect((await m.listAlertHistory({ limit: 10, kind: 'notification' })).map((e) => e.at)).toEqual([300]);
        expect((await m.listAlertHistory({ limit: 1, afterId: all[0]!.id })).map((e) => e.at)).toEqual([200]);
        expect(await m.pruneAlertHistory(250)).toBe(2);
        expect((await m.listAlertHistory({ limit: 10 })).map((e) => e.at)).toEqual([300]);
      });

      it('saves, replaces and lists silences and suppressions by id, and keeps custom rules', async () => {
        const m = s.metadata;
        const silence = { id: 's1', matchers: [{ name: 'deployment', value: 'fraud', isRegex: false, isEqual: true }], startsAt: 1, endsAt: 2, createdBy: 'ana', comment: 'c', createdAt: 1, updatedAt: 1 };
        await m.saveSilence(silence);
        await m.saveSilence({ ...silence, id: 's2', createdAt: 5, updatedAt: 5 });
        await m.saveSilence({ ...silence, endsAt: 9, updatedAt: 3 });
        expect(await m.getSilence('s1')).toEqual({ ...silence, endsAt: 9, updatedAt: 3 });
        expect(await m.getSilence('nope')).toBeUndefined();
        expect((await m.listSilences()).map((x) => x.id)).toEqual(['s1', 's2']);

        const sup = { id: 'r1', deployment: 'fraud', startsAt: 1, until: 10, reason: 'rollout', createdBy: 'rollouts', createdAt: 1 };
        await m.saveSuppression(sup);
        await m.saveSuppression({ ...sup, until: 4 });
        expect(await m.listSuppressions()).toEqual([{ ...sup, until: 4 }]);

        expect(await m.getAlertRules()).toBeUndefined();
        await m.saveAlertRules([{ name: 'X' }], 7);
        await m.saveAlertRules([{ name: 'Y', threshold: 1 }], 8);
        expect(await m.getAlertRules()).toEqual({ rules: [{ name: 'Y', threshold: 1 }], updatedAt: 8 });
      });
    });

    artifactsPart('ArtifactStore', () => {
      const bytes = new Uint8Array(randomBytes(4096));

      it('stores by sha256, reads back, and deletes', async () => {
        const a = s.artifacts;
        const put = await a.put(bytes);
        expect(put).toEqual({ sha256: sha(bytes), sizeBytes: 4096, written: true });
        expect(await a.has(put.sha256)).toBe(true);
        expect(Buffer.from(await a.get(put.sha256)).equals(Buffer.from(bytes))).toBe(true);
        expect(await a.delete(put.sha256)).toBe(true);
        expect(await a.delete(put.sha256)).toBe(false);
        expect(await a.has(put.sha256)).toBe(false);
      });

      it('treats a second put of the same bytes as a no-op', async () => {
        const first = await s.artifacts.put(bytes);
        const second = await s.artifacts.put(new Uint8Array(bytes));
        expect(second).toEqual({ ...first, written: false });
        expect(Buffer.from(await s.artifacts.get(first.sha256)).equals(Buffer.from(bytes))).toBe(true);
        // One copy: a single delete removes it.
        expect(await s.artifacts.delete(first.sha256)).toBe(true);
        expect(await s.artifacts.has(first.sha256)).toBe(false);
      });

      it('refuses to return bytes modified behind its back (WARDEN_ARTIFACT_TAMPERED naming the sha)', async () => {
        const { sha256 } = await s.artifacts.put(bytes);
        await s.tamperArtifact(sha256);
        const e = await expectWardenError(s.artifacts.get(sha256), 'WARDEN_ARTIFACT_TAMPERED');
        expect(e.message).toContain(sha256);
        expect(e.status).toBe(500);
      });

      it('repairs a tampered artifact when the original bytes are put again', async () => {
        const { sha256 } = await s.artifacts.put(bytes);
        await s.tamperArtifact(sha256);
        await s.artifacts.put(bytes);
        expect(Buffer.from(await s.artifacts.get(sha256)).equals(Buffer.from(bytes))).toBe(true);
      });

      it('answers WARDEN_ARTIFACT_TAMPERED for a missing artifact', async () => {
        const { sha256 } = await s.artifacts.put(bytes);
        await s.artifacts.delete(sha256);
        const e = await expectWardenError(s.artifacts.get(sha256), 'WARDEN_ARTIFACT_TAMPERED');
        expect(e.message).toContain(sha256);
        await expectWardenError(s.artifacts.get(sha(new Uint8Array([1, 2, 3]))), 'WARDEN_ARTIFACT_TAMPERED');
      });

      it('refuses an address that is not a sha256 digest', async () => {
        await expectWardenError(s.artifacts.get('../../etc/passwd'), 'WARDEN_BAD_REQUEST');
        expect(await s.artifacts.has('../../etc/passwd')).toBe(false);
      });
    });

    // The rest of each port's contract, in files of their own.
    if (ports.includes('metadata')) metadataContract(() => s);
    if (ports.includes('metadata')) sloContract(() => s);
    if (ports.includes('events')) eventsContract(() => s);
  });
}
