import { WardenError } from '../../errors.ts';
import type { ArtifactStore } from '../ports.ts';
import { sha256Hex } from '../artifacts/local-dir.ts';
import { inTransaction, migratePg, openPgPool, parsePgUrl, type PgMigration, type PgOptions, type PgPool } from './database.ts';

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * Bytes per stored chunk. A model is split so that no single value approaches PostgreSQL's 1 GB field limit and no
 * query moves more than a few megabytes at once: a 500 MB model is read in 125 round trips, each small enough for the
 * server's and the driver's buffers.
 */
export const ARTIFACT_CHUNK_BYTES = 4 * 1024 * 1024;

export const pgArtifactMigrations: PgMigration[] = [
  [
    `CREATE TABLE artifacts (
       sha256 TEXT PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
       size_bytes BIGINT NOT NULL,
       chunks INTEGER NOT NULL,
       created_at BIGINT NOT NULL)`,
    `CREATE TABLE artifact_chunks (
       sha256 TEXT NOT NULL REFERENCES artifacts(sha256) ON DELETE CASCADE,
       idx INTEGER NOT NULL,
       bytes BYTEA NOT NULL,
       PRIMARY KEY (sha256, idx))`,
    // Chunks are already compressed model weights more often than not: skip TOAST's compression attempt.
    `ALTER TABLE artifact_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL`,
  ],
];

function checkSha(sha256: string): void {
  if (!SHA256.test(sha256)) throw new WardenError('WARDEN_BAD_REQUEST', `not a sha256 digest: ${sha256}`);
}

/**
 * Content-addressed model files in PostgreSQL, so every replica reads what any replica was given. A file is written
 * whole in one transaction (its row and all its chunks) and verified against its address on every read, exactly as
 * the local directory store is.
 */
export class PgArtifactStore implements ArtifactStore {
  private constructor(
    private readonly pool: PgPool,
    private readonly ownsPool: boolean,
  ) {}

  /** Opens the store at `url` and applies its migrations. */
  static async open(url: string, opts: PgOptions = {}): Promise<PgArtifactStore> {
    const target = parsePgUrl(url);
    const pool = openPgPool(target, { applicationName: 'warden-artifacts', maxConnections: 4, ...opts });
    try {
      await migratePg(pool, target.schema, 'artifacts', pgArtifactMigrations);
    } catch (e) {
      await pool.end();
      throw e;
    }
    return new PgArtifactStore(pool, true);
  }

  async put(bytes: Uint8Array): Promise<{ sha256: string; sizeBytes: number; written: boolean }> {
    const sha256 = sha256Hex(bytes);
    // An intact copy makes this a no-op; a damaged one is replaced, so pushing the original file again repairs it.
    if (await this.intact(sha256)) return { sha256, sizeBytes: bytes.byteLength, written: false };
    const chunks = Math.max(1, Math.ceil(bytes.byteLength / ARTIFACT_CHUNK_BYTES));
    await inTransaction(this.pool, async (c) => {
      // Two replicas given the same file at once take turns: the second rewrites the same bytes.
      await c.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [sha256]);
      await c.query('DELETE FROM artifacts WHERE sha256 = $1', [sha256]);
      await c.query('INSERT INTO artifacts (sha256, size_bytes, chunks, created_at) VALUES ($1, $2, $3, $4)', [sha256, bytes.byteLength, chunks, Date.now()]);
      for (let i = 0; i < chunks; i++) {
        const part = Buffer.from(bytes.buffer, bytes.byteOffset + i * ARTIFACT_CHUNK_BYTES, Math.min(ARTIFACT_CHUNK_BYTES, bytes.byteLength - i * ARTIFACT_CHUNK_BYTES));
        await c.query('INSERT INTO artifact_chunks (sha256, idx, bytes) VALUES ($1, $2, $3)', [sha256, i, part]);
      }
    });
    return { sha256, sizeBytes: bytes.byteLength, written: true };
  }

  async get(sha256: string): Promise<Uint8Array> {
    checkSha(sha256);
    const bytes = await this.read(sha256);
    if (!bytes) throw new WardenError('WARDEN_ARTIFACT_TAMPERED', `artifact ${sha256} is missing from the PostgreSQL artifact store; push the model file again`);
    const actual = sha256Hex(bytes);
    if (actual !== sha256) {
      throw new WardenError(
        'WARDEN_ARTIFACT_TAMPERED',
        `artifact ${sha256} was modified in the PostgreSQL artifact store (its bytes now hash to ${actual}); refusing to load it — push the original file again`,
      );
    }
    return bytes;
  }

  /** The stored bytes, or undefined when the artifact (or one of its chunks) is missing. */
  private async read(sha256: string): Promise<Buffer | undefined> {
    const head = await this.pool.query<{ size_bytes: number; chunks: number }>('SELECT size_bytes, chunks FROM artifacts WHERE sha256 = $1', [sha256]);
    const row = head.rows[0];
    if (!row) return undefined;
    const out = Buffer.allocUnsafe(row.size_bytes);
    let offset = 0;
    // One chunk per query keeps the driver from holding the whole file twice (its row buffer and ours).
    for (let i = 0; i < row.chunks; i++) {
      const r = await this.pool.query<{ bytes: Buffer }>('SELECT bytes FROM artifact_chunks WHERE sha256 = $1 AND idx = $2', [sha256, i]);
      const part = r.rows[0]?.bytes;
      if (!part) return undefined;
      if (offset + part.byteLength > out.byteLength) return Buffer.concat([out.subarray(0, offset), part]);
      part.copy(out, offset);
      offset += part.byteLength;
    }
    return offset === out.byteLength ? out : out.subarray(0, offset);
  }

  private async intact(sha256: string): Promise<boolean> {
    const bytes = await this.read(sha256);
    return bytes !== undefined && sha256Hex(bytes) === sha256;
  }

  async has(sha256: string): Promise<boolean> {
    if (!SHA256.test(sha256)) return false;
    const r = await this.pool.query('SELECT 1 FROM artifacts WHERE sha256 = $1', [sha256]);
    return r.rowCount === 1;
  }

  async delete(sha256: string): Promise<boolean> {
    if (!SHA256.test(sha256)) return false;
    const r = await this.pool.query('DELETE FROM artifacts WHERE sha256 = $1', [sha256]);
    return r.rowCount === 1;
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }
}
