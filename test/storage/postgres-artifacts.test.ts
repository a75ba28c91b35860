import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { SqliteEventStore, SqliteMetadataStore, sha256Hex } from '../../src/storage/index.ts';
import { ARTIFACT_CHUNK_BYTES, PgArtifactStore } from '../../src/storage/postgres/artifact-store.ts';
import { freshPgSchema, pgTestUrl } from '../helpers/postgres.ts';
import { runStorageContract } from './contract.ts';

/** Runs SQL in the test schema behind the store's back. */
async function sql(url: string, schema: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const base = new URL(url);
  base.searchParams.delete('schema');
  const c = new pg.Client({ connectionString: base.toString(), options: `-c search_path=${schema}` });
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

describe.skipIf(!pgTestUrl())('PostgreSQL artifact store', () => {
  runStorageContract(
    'postgres artifacts',
    async () => {
      const s = await freshPgSchema();
      const artifacts = await PgArtifactStore.open(s.url);
      const dir = mkdtempSync(path.join(tmpdir(), 'warden-pga-'));
      const metadata = new SqliteMetadataStore(path.join(dir, 'metadata.db'));
      const events = new SqliteEventStore(path.join(dir, 'events.db'));
      return {
        metadata,
        events,
        artifacts,
        // Flips the first byte of the first chunk, as a bad disk or an operator's UPDATE would.
        tamperArtifact: async (sha256) => {
          await sql(s.url, s.schema, `UPDATE artifact_chunks SET bytes = overlay(bytes placing decode(lpad(to_hex(get_byte(bytes, 0) # 255), 2, '0'), 'hex') from 1 for 1) WHERE sha256 = $1 AND idx = 0`, [sha256]);
        },
        async close() {
          await artifacts.close();
          await metadata.close();
          await events.close();
          rmSync(dir, { recursive: true, force: true });
          await s.drop();
        },
      };
    },
    ['artifacts'],
  );

  it('splits a file larger than a chunk, and a file put on one replica is read whole on another', async () => {
    const s = await freshPgSchema();
    const [a, b] = await Promise.all([PgArtifactStore.open(s.url), PgArtifactStore.open(s.url)]);
    try {
      const bytes = new Uint8Array(randomBytes(2 * ARTIFACT_CHUNK_BYTES + 12_345));
      const put = await a.put(bytes);
      expect(put).toEqual({ sha256: sha256Hex(bytes), sizeBytes: bytes.byteLength, written: true });
      const chunks = await sql(s.url, s.schema, 'SELECT idx, length(bytes) AS n FROM artifact_chunks WHERE sha256 = $1 ORDER BY idx', [put.sha256]);
      expect(chunks.rows).toEqual([
        { idx: 0, n: ARTIFACT_CHUNK_BYTES },
        { idx: 1, n: ARTIFACT_CHUNK_BYTES },
        { idx: 2, n: 12_345 },
      ]);
      expect(Buffer.from(await b.get(put.sha256)).equals(Buffer.from(bytes))).toBe(true);
      // A lost chunk is caught on read, not served short.
      await sql(s.url, s.schema, 'DELETE FROM artifact_chunks WHERE sha256 = $1 AND idx = 1', [put.sha256]);
      await expect(b.get(put.sha256)).rejects.toMatchObject({ code: 'WARDEN_ARTIFACT_TAMPERED' });
      // Both replicas pushing the same file at once end with one intact copy.
      const again = await Promise.all([a.put(bytes), b.put(bytes)]);
      expect(again.map((r) => r.sha256)).toEqual([put.sha256, put.sha256]);
      expect(Buffer.from(await a.get(put.sha256)).equals(Buffer.from(bytes))).toBe(true);
      // An empty file is a valid artifact too.
      const empty = await a.put(new Uint8Array(0));
      expect((await b.get(empty.sha256)).byteLength).toBe(0);
    } finally {
      await a.close();
      await b.close();
      await s.drop();
    }
  });
});
