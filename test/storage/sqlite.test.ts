import Database from 'better-sqlite3';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  LocalDirArtifactStore,
  SqliteEventStore,
  SqliteMetadataStore,
  openStores,
  type Stores,
} from '../../src/storage/index.ts';
import { openSqlite } from '../../src/storage/sqlite/database.ts';
import { metadataMigrations } from '../../src/storage/sqlite/metadata-store.ts';
import { runStorageContract, type StorageUnderTest } from './contract.ts';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'warden-storage-'));

/** Where LocalDirArtifactStore keeps a digest under `<dataDir>/artifacts`. */
const artifactFile = (dataDir: string, sha256: string) => path.join(dataDir, 'artifacts', 'sha256', sha256.slice(0, 2), sha256);

/** Flips the first byte of a stored artifact (files are written read-only, as an operator would find them). */
async function flipFirstByte(file: string): Promise<void> {
  await chmod(file, 0o644);
  const bytes = await readFile(file);
  bytes[0] = bytes[0]! ^ 0xff;
  await writeFile(file, bytes);
}

function underTest(dir: string, stores: Pick<Stores, 'metadata' | 'events' | 'artifacts'> & { close(): Promise<void> }): StorageUnderTest {
  return {
    metadata: stores.metadata,
    events: stores.events,
    artifacts: stores.artifacts,
    tamperArtifact: (sha256) => flipFirstByte(artifactFile(dir, sha256)),
    async close() {
      await stores.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// What `warden serve` opens: openStores picks the event store the server runs with.
runStorageContract('sqlite + local-dir (openStores)', async () => {
  const dir = tmp();
  return underTest(dir, openStores(dir));
});

// The in-thread SQLite event store on its own, as the worker-thread writer and `logs` reads use it.
runStorageContract('sqlite (in-thread events) + local-dir', async () => {
  const dir = tmp();
  const metadata = new SqliteMetadataStore(path.join(dir, 'metadata.db'));
  const events = new SqliteEventStore(path.join(dir, 'events.db'));
  const artifacts = new LocalDirArtifactStore(path.join(dir, 'artifacts'));
  return underTest(dir, {
    metadata,
    events,
    artifacts,
    async close() {
      await metadata.close();
      await events.close();
    },
  });
});

describe('SQLite stores on disk', () => {
  let dir: string;
  beforeEach(() => {
    dir = tmp();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps models, versions, aliases, keys, events and artifacts across close and reopen', async () => {
    const first = openStores(dir);
    const bytes = new TextEncoder().encode('not really onnx, but bytes are bytes');
    const { sha256 } = await first.artifacts.put(bytes);
    await first.metadata.createModel({ name: 'm', description: 'kept', createdAt: 1 });
    await first.metadata.createVersion({
      model: 'm',
      sha256,
      sizeBytes: bytes.byteLength,
      format: 'onnx',
      signature: { inputs: [], outputs: [] },
      metadata: {},
      createdAt: 2,
    });
    await first.metadata.setAlias('m', 'champion', 1, 3);
    await first.metadata.createApiKey({ id: 'k', name: 'ci', role: 'admin', hash: 'h', createdAt: 4 });
    await first.events.appendPredictions([
      { requestId: 'r1', ts: 5, model: 'm', version: 1, status: 'ok', latencyMs: 1, inputs: { x: 1 }, outputs: { y: 2 } },
    ]);
    await first.close();

    const second = openStores(dir);
    try {
      expect((await second.metadata.getModel('m'))?.description).toBe('kept');
      expect((await second.metadata.getVersion('m', 1))?.sha256).toBe(sha256);
      expect((await second.metadata.getAlias('m', 'champion'))?.version).toBe(1);
      expect((await second.metadata.findApiKeyByHash('h'))?.id).toBe('k');
      expect((await second.events.queryPredictions({ requestId: 'r1', limit: 1 }))[0]?.outputs).toEqual({ y: 2 });
      expect(Buffer.from(await second.artifacts.get(sha256)).toString()).toBe('not really onnx, but bytes are bytes');
      // The counter survives too: the next version is 2.
      expect((await second.metadata.createVersion({ ...(await second.metadata.getVersion('m', 1))!, createdAt: 6 })).version).toBe(2);
    } finally {
      await second.close();
    }
  });

  it('applies migrations once: opening the same files twice (in turn and side by side) changes nothing', async () => {
    const a = openStores(dir);
    await a.metadata.createModel({ name: 'm', description: '', createdAt: 1 });
    await a.close();
    const b = openStores(dir);
    const c = openStores(dir);
    try {
      expect((await b.metadata.listModels()).map((m) => m.name)).toEqual(['m']);
      expect((await c.metadata.listModels()).map((m) => m.name)).toEqual(['m']);
    } finally {
      await b.close();
      await c.close();
    }
    const db = new Database(path.join(dir, 'metadata.db'), { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(metadataMigrations.length);
    } finally {
      db.close();
    }
  });

  it('upgrades a schema-1 metadata.db: the version counter continues after the highest existing version', async () => {
    const file = path.join(dir, 'metadata.db');
    const old = openSqlite(file, metadataMigrations.slice(0, 1));
    old.prepare(`INSERT INTO models (name, description, created_at) VALUES ('m', '', 1)`).run();
    const insert = old.prepare(
      `INSERT INTO model_versions (model, version, sha256, size_bytes, format, signature, metadata, created_at)
       VALUES ('m', ?, ?, 1, 'onnx', '{"inputs":[],"outputs":[]}', '{}', 1)`,
    );
    insert.run(1, '1'.repeat(64));
    insert.run(4, '4'.repeat(64));
    old.close();
    const store = new SqliteMetadataStore(file);
    try {
      const next = await store.createVersion({
        model: 'm',
        sha256: '5'.repeat(64),
        sizeBytes: 1,
        format: 'onnx',
        signature: { inputs: [], outputs: [] },
        metadata: {},
        createdAt: 2,
      });
      expect(next.version).toBe(5);
    } finally {
      await store.close();
    }
  });

  it('lays out metadata.db and events.db in WAL mode and artifacts read-only under artifacts/sha256/<2 hex>/', async () => {
    const stores = openStores(dir);
    const { sha256 } = await stores.artifacts.put(new Uint8Array([1, 2, 3]));
    await stores.close();
    for (const name of ['metadata.db', 'events.db']) {
      const db = new Database(path.join(dir, name), { readonly: true });
      try {
        expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      } finally {
        db.close();
      }
    }
    const st = statSync(artifactFile(dir, sha256));
    expect(st.size).toBe(3);
    expect(st.mode & 0o222).toBe(0);
  });
});

describe('SQLite event store encoding', () => {
  it('stores plain arrays holding nulls as valid JSON (the fast tensor path must not write [1,,3])', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'warden-enc-'));
    const store = new SqliteEventStore(path.join(dir, 'events.db'));
    await store.appendPredictions([
      { requestId: 'r1', ts: 1, model: 'm', version: 1, status: 'ok', latencyMs: 1, inputs: [{ name: 'input', datatype: 'FP32', dims: [1, 3], data: [1, null, 3] }], outputs: null },
    ]);
    const [e] = await store.queryPredictions({ requestId: 'r1', limit: 1 });
    expect((e!.inputs as { data: unknown[] }[])[0]!.data).toEqual([1, null, 3]);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
