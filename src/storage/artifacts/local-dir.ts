import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { WardenError } from '../../errors.ts';
import type { ArtifactStore } from '../ports.ts';

const SHA256 = /^[0-9a-f]{64}$/;

/** sha256 of bytes as lowercase hex: the content address of an artifact. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Content-addressed files under `<root>/sha256/<2 hex>/<64 hex>`. Writes go to a temp file
 * and are renamed into place, so a crash never leaves a half-written artifact under its address.
 */
export class LocalDirArtifactStore implements ArtifactStore {
  constructor(private readonly root: string) {}

  /** Where the bytes of `sha256` live on disk. */
  pathOf(sha256: string): string {
    if (!SHA256.test(sha256)) throw new WardenError('WARDEN_BAD_REQUEST', `not a sha256 digest: ${sha256}`);
    return path.join(this.root, 'sha256', sha256.slice(0, 2), sha256);
  }

  async put(bytes: Uint8Array): Promise<{ sha256: string; sizeBytes: number; written: boolean }> {
    const sha256 = sha256Hex(bytes);
    const file = this.pathOf(sha256);
    // An intact copy makes this a no-op; a modified or unreadable one is replaced, so pushing the
    // original file again repairs a tampered artifact (the remedy the TAMPERED error suggests).
    const written = !(await this.intact(sha256));
    if (written) {
      try {
        await mkdir(path.dirname(file), { recursive: true });
        const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
        await writeFile(tmp, bytes, { mode: 0o444 });
        await rename(tmp, file);
      } catch (e) {
        throw await this.whyUnwritable(e);
      }
    }
    return { sha256, sizeBytes: bytes.byteLength, written };
  }

  /**
   * The real cause of a failed write: a recursive mkdir on a read-only filesystem reports ENOENT, so ask the kernel
   * whether the root is writable at all (access(2) says EROFS even to root) and report that when it is not.
   */
  private async whyUnwritable(e: unknown): Promise<unknown> {
    try {
      await access(this.root, constants.W_OK);
      return e;
    } catch (probe) {
      return Object.assign(probe as Error, { store: 'artifacts' });
    }
  }

  async get(sha256: string): Promise<Uint8Array> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathOf(sha256));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new WardenError('WARDEN_ARTIFACT_TAMPERED', `artifact ${sha256} is missing from ${this.root}; push the model file again`);
      }
      throw e;
    }
    const actual = sha256Hex(bytes);
    if (actual !== sha256) {
      throw new WardenError(
        'WARDEN_ARTIFACT_TAMPERED',
        `artifact ${sha256} was modified on disk (its bytes now hash to ${actual}); refusing to load it — push the original file again`,
      );
    }
    return bytes;
  }

  private async intact(sha256: string): Promise<boolean> {
    try {
      return sha256Hex(await readFile(this.pathOf(sha256))) === sha256;
    } catch {
      return false;
    }
  }

  async has(sha256: string): Promise<boolean> {
    try {
      await stat(this.pathOf(sha256));
      return true;
    } catch {
      return false;
    }
  }

  async delete(sha256: string): Promise<boolean> {
    const file = this.pathOf(sha256);
    if (!(await this.has(sha256))) return false;
    await rm(file, { force: true });
    return true;
  }
}
