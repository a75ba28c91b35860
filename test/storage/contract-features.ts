/**
 * The FeatureStore contract (src/storage/ports.ts): one suite both adapters pass, SQLite (sqlite-features.test.ts) and
 * PostgreSQL (postgres-features.test.ts). `open` is called before every test and must return an empty store; `close`
 * closes it and removes what `open` created.
 *
 * Ids are only compared, never computed: a database sequence may skip numbers.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WardenError } from '../../src/errors.ts';
import { MAX_FEATURE_BATCH, type FeatureRowRecord, type FeatureStore } from '../../src/storage/index.ts';

export interface FeatureStoreUnderTest {
  features: FeatureStore;
  close(): Promise<void>;
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

async function badRequest(p: Promise<unknown>, message: RegExp): Promise<void> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(WardenError);
  expect((e as WardenError).code).toBe('WARDEN_BAD_REQUEST');
  expect((e as WardenError).message).toMatch(message);
}

const row = (view: string, entityKey: string, eventTs: number, createdTs = eventTs, values: FeatureRowRecord['values'] = { x: eventTs }): FeatureRowRecord => ({
  view,
  entityKey,
  eventTs,
  createdTs,
  values,
});

/** Without the id a scan adds. */
const record = ({ id: _id, ...r }: FeatureRowRecord & { id: number }): FeatureRowRecord => r;

/** Byte order of the UTF-8 encodings, as SQLite's BINARY and PostgreSQL's "C" collations compare. */
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** Every ordering of `xs`. */
function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

/** A value of every kind JSON carries, with the spellings a round trip could change. */
const VALUES: FeatureRowRecord['values'] = {
  tenth: 0.1,
  third: 1 / 3,
  sum: 0.1 + 0.2,
  maxSafe: Number.MAX_SAFE_INTEGER,
  minSafe: Number.MIN_SAFE_INTEGER,
  pow53plus: 2 ** 60,
  tiny: 5e-324,
  huge: Number.MAX_VALUE,
  exp: 1e21,
  int: 42,
  zero: 0,
  negative: -17.25,
  quoted: 'he said "hi" \\ \'x\' \n\t',
  unicode: 'ü é 日本 😀 \u001f \u2028',
  empty: '',
  jsonish: '{"a":1}',
  yes: true,
  no: false,
  none: null,
};

/** Strict equality per value (0.1 stays 0.1, not 0.1000000000000000055…) and the key order kept. */
function expectExactValues(got: FeatureRowRecord['values'], want: FeatureRowRecord['values']): void {
  expect(Object.keys(got)).toEqual(Object.keys(want));
  for (const k of Object.keys(want)) expect(Object.is(got[k], want[k]), `${k}: ${String(got[k])} !== ${String(want[k])}`).toBe(true);
}

export function featuresContract(name: string, open: () => Promise<FeatureStoreUnderTest>): void {
  describe(`FeatureStore contract: ${name}`, () => {
    let s: FeatureStoreUnderTest;
    let f: FeatureStore;
    beforeEach(async () => {
      s = await open();
      f = s.features;
    });
    afterEach(async () => {
      await s.close();
    });

    describe('pushed rows', () => {
      it('appends and scans a view in insertion order, page by page after the last id', async () => {
        const rows = Array.from({ length: 7 }, (_, i) => row('v', `k${i % 3}`, 1_000 - i, 2_000 + i));
        expect(await f.appendFeatureRows(rows.slice(0, 4))).toBe(4);
        expect(await f.appendFeatureRows([row('w', 'k0', 1), row('w', 'k1', 2)])).toBe(2);
        expect(await f.appendFeatureRows(rows.slice(4))).toBe(3);
        expect(await f.appendFeatureRows([])).toBe(0);

        const pages: (FeatureRowRecord & { id: number })[][] = [];
        let afterId: number | undefined;
        for (;;) {
          const page = await f.scanFeatureRows({ view: 'v', limit: 3, ...(afterId !== undefined ? { afterId } : {}) });
          pages.push(page);
          if (page.length < 3) break;
          afterId = page[page.length - 1]!.id;
        }
        expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
        const all = pages.flat();
        // Insertion order, not event time or key order; every field as written.
        expect(all.map(record)).toEqual(rows);
        for (let i = 1; i < all.length; i++) expect(all[i]!.id).toBeGreaterThan(all[i - 1]!.id);
        expect(all.every((r) => Number.isSafeInteger(r.id))).toBe(true);
        // The last page is followed by nothing.
        expect(await f.scanFeatureRows({ view: 'v', afterId: all[6]!.id, limit: 3 })).toEqual([]);
        // The other view is apart, and an unknown one is empty.
        expect((await f.scanFeatureRows({ view: 'w', limit: 10 })).map(record)).toEqual([row('w', 'k0', 1), row('w', 'k1', 2)]);
        expect(await f.scanFeatureRows({ view: 'nope', limit: 10 })).toEqual([]);
      });

      it('createdAfter keeps only rows created strictly after it, still in insertion order and paged by id', async () => {
        // Created times out of insertion order, as a backfill writes them.
        const created = [50, 10, 60, 30, 70, 20, 80];
        await f.appendFeatureRows(created.map((c, i) => row('v', `k${i}`, i, c)));
        const all = await f.scanFeatureRows({ view: 'v', createdAfter: 30, limit: 10 });
        expect(all.map((r) => r.createdTs)).toEqual([50, 60, 70, 80]);
        expect(all.map((r) => r.entityKey)).toEqual(['k0', 'k2', 'k4', 'k6']);
        const first = await f.scanFeatureRows({ view: 'v', createdAfter: 30, limit: 2 });
        expect(first.map((r) => r.createdTs)).toEqual([50, 60]);
        const second = await f.scanFeatureRows({ view: 'v', createdAfter: 30, afterId: first[1]!.id, limit: 2 });
        expect(second.map((r) => r.createdTs)).toEqual([70, 80]);
        expect(await f.scanFeatureRows({ view: 'v', createdAfter: 80, limit: 10 })).toEqual([]);
        expect((await f.scanFeatureRows({ view: 'v', createdAfter: 0, limit: 10 })).length).toBe(7);
      });
    });

    describe('online store', () => {
      it('a row replaces the stored one only when newer by event time, or equal event time and newer created time', async () => {
        // A new entity is written (counted).
        expect(await f.upsertOnline([row('v', 'e', 100, 100, { x: 1 })], 1)).toBe(1);
        // Older event time never replaces, whatever its created time.
        expect(await f.upsertOnline([row('v', 'e', 99, 10_000, { x: 2 })], 2)).toBe(0);
        // The same row again (equal event and created time) replaces nothing.
        expect(await f.upsertOnline([row('v', 'e', 100, 100, { x: 3 })], 3)).toBe(0);
        expect(await f.getOnline('v', ['e'])).toEqual([row('v', 'e', 100, 100, { x: 1 })]);
        // Equal event time, newer created time: a correction, it replaces.
        expect(await f.upsertOnline([row('v', 'e', 100, 101, { x: 4 })], 4)).toBe(1);
        expect(await f.getOnline('v', ['e'])).toEqual([row('v', 'e', 100, 101, { x: 4 })]);
        // Newer event time replaces even with an older created time.
        expect(await f.upsertOnline([row('v', 'e', 200, 50, { x: 5 })], 5)).toBe(1);
        expect(await f.getOnline('v', ['e'])).toEqual([row('v', 'e', 200, 50, { x: 5 })]);
        // The write time is that of the last write that replaced: refused writes leave it.
        expect((await f.onlineChangedSince({ since: 0, limit: 10 })).map((r) => r.updatedAt)).toEqual([5]);
        // A batch counts what it wrote: one new entity, one replaced, one kept.
        await f.upsertOnline([row('v', 'old', 10)], 6);
        expect(await f.upsertOnline([row('v', 'new', 1), row('v', 'e', 300), row('v', 'old', 9)], 7)).toBe(2);
        expect((await f.getOnline('v', ['new', 'e', 'old'])).map((r) => r.eventTs)).toEqual([1, 300, 10]);
      });

      it('ends at the newest row whatever order the rows arrive in, one per call or all in one batch', async () => {
        const versions = [
          { eventTs: 10, createdTs: 10 },
          { eventTs: 10, createdTs: 20 },
          { eventTs: 20, createdTs: 5 },
          { eventTs: 5, createdTs: 100 },
        ];
        const winner = { eventTs: 20, createdTs: 5 };
        let p = 0;
        const keys: string[] = [];
        for (const order of permutations(versions)) {
          const one = `one-${p}`;
          const batch = `batch-${p++}`;
          keys.push(one, batch);
          let written = 0;
          for (const v of order) written += await f.upsertOnline([row('v', one, v.eventTs, v.createdTs, { from: `${v.eventTs}/${v.createdTs}` })], 1);
          expect(written).toBeGreaterThanOrEqual(1);
          // Within one batch the newest row is the one written, once.
          expect(await f.upsertOnline(order.map((v) => row('v', batch, v.eventTs, v.createdTs, { from: `${v.eventTs}/${v.createdTs}` })), 1)).toBe(1);
        }
        const stored = await f.getOnline('v', keys);
        expect(stored.length).toBe(48);
        for (const r of stored) expect({ eventTs: r.eventTs, createdTs: r.createdTs, values: r.values }).toEqual({ ...winner, values: { from: '20/5' } });
        // Of two equal rows in one batch the first stays, as a stored row stays against an equal one.
        expect(await f.upsertOnline([row('v', 'tie', 1, 1, { n: 'first' }), row('v', 'tie', 1, 1, { n: 'second' })], 1)).toBe(1);
        expect((await f.getOnline('v', ['tie']))[0]!.values).toEqual({ n: 'first' });
      });

      it('getOnline returns the stored rows of the keys asked for, in that order, each once, missing ones left out', async () => {
        await f.upsertOnline([row('v', 'a', 1), row('v', 'b', 2), row('v', 'c', 3), row('w', 'd', 4)], 10);
        expect((await f.getOnline('v', ['c', 'missing', 'a', 'c'])).map((r) => r.entityKey)).toEqual(['c', 'a']);
        expect(await f.getOnline('v', ['b'])).toEqual([row('v', 'b', 2)]);
        // A key of another view is not this view's.
        expect(await f.getOnline('v', ['d'])).toEqual([]);
        expect(await f.getOnline('nope', ['a'])).toEqual([]);
        expect(await f.getOnline('v', [])).toEqual([]);
      });

      it('scanOnline pages a view in byte order of the keys (unicode, composite keys with \\u001f)', async () => {
        const keys = [
          'b', 'a', 'B', 'ab', 'a\u001fz', 'a\u001f1', 'a\u001f', 'a b', '10', '9', 'é', 'ü', 'z', '\uff01', '😀', '日本', 'station\u001f2024-01-01', 'station\u001f2023-12-31',
          'quote"\'', 'back\\slash',
        ];
        await f.upsertOnline(keys.map((k, i) => row('v', k, i)), 1);
        await f.upsertOnline([row('w', 'a', 1), row('w', 'zz', 1)], 1);
        const want = [...keys].sort(byBytes);
        // Byte order is not JavaScript's string order (UTF-16 units): U+FF01 sorts before an emoji only in bytes.
        expect(want.indexOf('\uff01')).toBeLessThan(want.indexOf('😀'));
        expect([...keys].sort().indexOf('\uff01')).toBeGreaterThan([...keys].sort().indexOf('😀'));

        const pages: FeatureRowRecord[][] = [];
        let afterKey: string | undefined;
        for (;;) {
          const page = await f.scanOnline({ view: 'v', limit: 3, ...(afterKey !== undefined ? { afterKey } : {}) });
          pages.push(page);
          if (page.length < 3) break;
          afterKey = page[page.length - 1]!.entityKey;
        }
        expect(pages.flat().map((r) => r.entityKey)).toEqual(want);
        expect(pages.every((p) => p.length <= 3)).toBe(true);
        expect(pages.flat().map((r) => r.view).every((v) => v === 'v')).toBe(true);
        // Rows come whole; afterKey need not be a stored key.
        expect(await f.scanOnline({ view: 'v', afterKey: 'a\u001f0', limit: 2 })).toEqual([row('v', 'a\u001f1', 5), row('v', 'a\u001fz', 4)]);
        expect((await f.scanOnline({ view: 'v', afterKey: '😀', limit: 5 })).map((r) => r.entityKey)).toEqual([]);
        expect((await f.scanOnline({ view: 'w', limit: 5 })).map((r) => r.entityKey)).toEqual(['a', 'zz']);
        expect(await f.scanOnline({ view: 'nope', limit: 5 })).toEqual([]);
      });

      it('onlineChangedSince: rows written at or after `since`, oldest write first (then view and key), at most `limit`', async () => {
        await f.upsertOnline([row('b', 'k2', 1), row('b', 'k1', 1), row('a', 'k9', 1)], 100);
        await f.upsertOnline([row('a', 'k1', 1)], 200);
        // k2 of b rewritten later: it moves to its new write time.
        await f.upsertOnline([row('b', 'k2', 2)], 300);
        const at = (rs: { view: string; entityKey: string; updatedAt: number }[]) => rs.map((r) => `${r.updatedAt} ${r.view}/${r.entityKey}`);
        expect(at(await f.onlineChangedSince({ since: 0, limit: 10 }))).toEqual(['100 a/k9', '100 b/k1', '200 a/k1', '300 b/k2']);
        // The bound is inclusive.
        expect(at(await f.onlineChangedSince({ since: 200, limit: 10 }))).toEqual(['200 a/k1', '300 b/k2']);
        expect(at(await f.onlineChangedSince({ since: 201, limit: 10 }))).toEqual(['300 b/k2']);
        expect(await f.onlineChangedSince({ since: 301, limit: 10 })).toEqual([]);
        expect(at(await f.onlineChangedSince({ since: 0, limit: 2 }))).toEqual(['100 a/k9', '100 b/k1']);
        // Whole rows, the write time beside.
        expect(await f.onlineChangedSince({ since: 300, limit: 1 })).toEqual([{ ...row('b', 'k2', 2), updatedAt: 300 }]);
      });
    });

    describe('materialization state', () => {
      it('saves, reads and replaces a view state, with or without a cursor', async () => {
        expect(await f.getMaterialization('v')).toBeUndefined();
        await f.saveMaterialization({ view: 'v', watermark: 1_700_000_000_000, rows: 12, updatedAt: 5 });
        const first = await f.getMaterialization('v');
        expect(first).toEqual({ view: 'v', watermark: 1_700_000_000_000, rows: 12, updatedAt: 5 });
        expect(first).not.toHaveProperty('cursor');
        const cursor = { sha256: 'ab'.repeat(32), bytes: 123_456_789, header: ['id', 'temp'], nested: { a: [1, 0.1, null, true, 'x"y'] } };
        await f.saveMaterialization({ view: 'v', watermark: 1_700_000_000_500, cursor, rows: 30, updatedAt: 6 });
        await f.saveMaterialization({ view: 'w', watermark: 0, rows: 0, updatedAt: 7 });
        const second = await f.getMaterialization('v');
        expect(second).toEqual({ view: 'v', watermark: 1_700_000_000_500, cursor, rows: 30, updatedAt: 6 });
        expect(Object.keys(second!.cursor!)).toEqual(Object.keys(cursor));
        // Saved again without a cursor: the cursor is gone, not kept from before.
        await f.saveMaterialization({ view: 'v', watermark: 1_700_000_001_000, rows: 31, updatedAt: 8 });
        expect(await f.getMaterialization('v')).toEqual({ view: 'v', watermark: 1_700_000_001_000, rows: 31, updatedAt: 8 });
        expect(await f.getMaterialization('w')).toEqual({ view: 'w', watermark: 0, rows: 0, updatedAt: 7 });
        // "Nothing copied yet" as the materializer writes it, and an empty cursor, read back as written.
        await f.saveMaterialization({ view: 'x', watermark: Number.MIN_SAFE_INTEGER, cursor: {}, rows: 0, updatedAt: 9 });
        expect(await f.getMaterialization('x')).toEqual({ view: 'x', watermark: Number.MIN_SAFE_INTEGER, cursor: {}, rows: 0, updatedAt: 9 });
      });
    });

    describe('deleteView', () => {
      it("removes the view's pushed rows, online rows and materialization state, and nothing of other views", async () => {
        for (const view of ['gone', 'kept']) {
          await f.appendFeatureRows([row(view, 'a', 1), row(view, 'b', 2)]);
          await f.upsertOnline([row(view, 'a', 1), row(view, 'b', 2)], 10);
          await f.saveMaterialization({ view, watermark: 2, cursor: { bytes: 10 }, rows: 2, updatedAt: 10 });
        }
        await f.deleteView('gone');
        expect(await f.scanFeatureRows({ view: 'gone', limit: 10 })).toEqual([]);
        expect(await f.getOnline('gone', ['a', 'b'])).toEqual([]);
        expect(await f.scanOnline({ view: 'gone', limit: 10 })).toEqual([]);
        expect(await f.getMaterialization('gone')).toBeUndefined();
        expect((await f.onlineChangedSince({ since: 0, limit: 10 })).map((r) => r.view)).toEqual(['kept', 'kept']);

        expect((await f.scanFeatureRows({ view: 'kept', limit: 10 })).length).toBe(2);
        expect((await f.scanOnline({ view: 'kept', limit: 10 })).length).toBe(2);
        expect(await f.getMaterialization('kept')).toEqual({ view: 'kept', watermark: 2, cursor: { bytes: 10 }, rows: 2, updatedAt: 10 });
        // Deleting it again, or a view never written, is no error.
        await f.deleteView('gone');
        await f.deleteView('never');
        // A view of the same name starts empty: rows written after the delete are its only ones.
        await f.upsertOnline([row('gone', 'a', 0)], 11);
        expect(await f.getOnline('gone', ['a'])).toEqual([row('gone', 'a', 0)]);
      });
    });

    describe('values', () => {
      it('round-trip exactly through pushed rows, the online store and its change feed (numbers, strings, booleans, null)', async () => {
        const big = row('v', 'k\u001f"1"', Date.UTC(2100, 0, 1), Date.UTC(2100, 0, 2), VALUES);
        await f.appendFeatureRows([big]);
        await f.upsertOnline([big], Date.UTC(2100, 0, 3));
        const reads = [
          (await f.scanFeatureRows({ view: 'v', limit: 1 }))[0]!,
          (await f.getOnline('v', [big.entityKey]))[0]!,
          (await f.scanOnline({ view: 'v', limit: 1 }))[0]!,
          (await f.onlineChangedSince({ since: 0, limit: 1 }))[0]!,
        ];
        for (const r of reads) {
          expect(r.entityKey).toBe(big.entityKey);
          expect([r.eventTs, r.createdTs]).toEqual([big.eventTs, big.createdTs]);
          expectExactValues(r.values, VALUES);
        }
        // An empty set of values is a row too.
        await f.upsertOnline([row('v', 'empty', 1, 1, {})], 1);
        expect((await f.getOnline('v', ['empty']))[0]!.values).toEqual({});
      });

      it('refuses values JSON cannot carry back (NaN, infinity, objects) and the whole batch with them', async () => {
        for (const bad of [NaN, Infinity, -Infinity, { nested: 1 }, [1, 2], undefined]) {
          const rows = [row('v', 'ok', 1), row('v', 'bad', 1, 1, { x: bad as never })];
          await badRequest(f.appendFeatureRows(rows), /feature "x" has value/);
          await badRequest(f.upsertOnline(rows, 1), /feature "x" has value/);
        }
        await badRequest(f.upsertOnline([row('v', 'k', 1.5)], 1), /eventTs must be a whole number/);
        expect(await f.scanFeatureRows({ view: 'v', limit: 10 })).toEqual([]);
        expect(await f.scanOnline({ view: 'v', limit: 10 })).toEqual([]);
      });
    });

    describe('batch limit', () => {
      it(`takes ${MAX_FEATURE_BATCH} rows in one call and refuses more, writing nothing`, async () => {
        const rows = (n: number, view = 'v') => Array.from({ length: n }, (_, i) => row(view, `k${String(i).padStart(5, '0')}`, i, i, { i, s: `row ${i}` }));
        await badRequest(f.appendFeatureRows(rows(MAX_FEATURE_BATCH + 1)), /appendFeatureRows: 5001 rows in one call, at most 5,000: split them into batches/);
        await badRequest(f.upsertOnline(rows(MAX_FEATURE_BATCH + 1), 1), /upsertOnline: 5001 rows in one call, at most 5,000/);
        await badRequest(f.getOnline('v', rows(MAX_FEATURE_BATCH + 1).map((r) => r.entityKey)), /getOnline: 5001 entity keys in one call, at most 5,000/);
        for (const limit of [MAX_FEATURE_BATCH + 1, 0, -1, 1.5]) {
          await badRequest(f.scanFeatureRows({ view: 'v', limit }), /scanFeatureRows: limit must be a whole number from 1 to 5,000/);
          await badRequest(f.scanOnline({ view: 'v', limit }), /scanOnline: limit must be a whole number from 1 to 5,000/);
          await badRequest(f.onlineChangedSince({ since: 0, limit }), /onlineChangedSince: limit must be/);
        }
        expect(await f.scanFeatureRows({ view: 'v', limit: 10 })).toEqual([]);
        expect(await f.onlineChangedSince({ since: 0, limit: 10 })).toEqual([]);

        // Exactly the limit: one call each way.
        const full = rows(MAX_FEATURE_BATCH);
        expect(await f.appendFeatureRows(full)).toBe(MAX_FEATURE_BATCH);
        expect(await f.upsertOnline(full, 2)).toBe(MAX_FEATURE_BATCH);
        expect((await f.scanFeatureRows({ view: 'v', limit: MAX_FEATURE_BATCH })).map(record)).toEqual(full);
        expect(await f.scanOnline({ view: 'v', limit: MAX_FEATURE_BATCH })).toEqual(full);
        expect((await f.getOnline('v', full.map((r) => r.entityKey))).length).toBe(MAX_FEATURE_BATCH);
        expect((await f.onlineChangedSince({ since: 2, limit: MAX_FEATURE_BATCH })).length).toBe(MAX_FEATURE_BATCH);
        // The same batch again replaces nothing.
        expect(await f.upsertOnline(full, 3)).toBe(0);
      });
    });
  });
}
