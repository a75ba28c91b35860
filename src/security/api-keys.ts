import { createHash, randomBytes } from 'node:crypto';
import { WardenError } from '../errors.ts';
import type { ApiKeyRecord, MetadataStore, Role } from '../storage/index.ts';

export const ROLES: readonly Role[] = ['viewer', 'predictor', 'deployer', 'admin'];

/** Each role can do what the roles before it in ROLES can. */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/**
 * Keys are 256-bit random secrets, so a plain sha256 is a safe and fast verifier (slow password
 * hashes defend low-entropy secrets and would put milliseconds on every request).
 */
export function hashApiKey(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export interface CreatedKey {
  record: ApiKeyRecord;
  /** Shown once; only its hash is stored. */
  secret: string;
}

/** Creates a key with a role; returns the secret once. */
export async function createApiKey(store: MetadataStore, name: string, role: Role, now = Date.now()): Promise<CreatedKey> {
  if (!isRole(role)) throw new WardenError('WARDEN_BAD_REQUEST', `unknown role ${JSON.stringify(role)}; use one of ${ROLES.join(', ')}`);
  if (!name || name.length > 200) throw new WardenError('WARDEN_BAD_REQUEST', 'key name must be 1-200 characters');
  const id = randomBytes(6).toString('hex');
  const secret = `wdn_${id}_${randomBytes(32).toString('base64url')}`;
  const record: ApiKeyRecord = { id, name, role, hash: hashApiKey(secret), createdAt: now };
  await store.createApiKey(record);
  return { record, secret };
}

/**
 * Keys in memory, so checking a key on the request path reads no store. Reloaded after every
 * change made through this process and on a timer for changes made by other replicas or the CLI.
 */
export class KeyRing {
  private byHash = new Map<string, ApiKeyRecord>();
  private timer: NodeJS.Timeout | undefined;
  private lastReloadAt = 0;
  private pending: Promise<void> | undefined;

  /**
   * `minMissReloadMs` bounds how often an unknown key makes the ring re-read the store: a key created a moment ago
   * (by the CLI or another replica) works on its first request, and a caller spraying made-up keys costs at most one
   * store read per interval.
   */
  constructor(
    private readonly store: MetadataStore,
    private readonly refreshMs = 10_000,
    private readonly minMissReloadMs = 500,
    private readonly now: () => number = Date.now,
  ) {}

  async start(): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => void this.reload().catch(() => undefined), this.refreshMs);
    this.timer.unref();
  }

  async reload(): Promise<void> {
    this.lastReloadAt = this.now();
    const next = new Map<string, ApiKeyRecord>();
    for (const k of await this.store.listApiKeys()) if (k.revokedAt === undefined) next.set(k.hash, k);
    this.byHash = next;
  }

  /** The active key for a presented secret, if any. */
  verify(secret: string): ApiKeyRecord | undefined {
    return this.byHash.get(hashApiKey(secret));
  }

  /**
   * Like {@link verify}, but a miss re-reads the store first (one read shared by every miss in flight, at most one
   * per `minMissReloadMs`), so a key made after the last refresh is accepted at once instead of up to `refreshMs` later.
   */
  async verifyFresh(secret: string): Promise<ApiKeyRecord | undefined> {
    const hit = this.verify(secret);
    if (hit) return hit;
    if (!this.pending) {
      const wait = Math.max(0, this.lastReloadAt + this.minMissReloadMs - this.now());
      this.pending = new Promise<void>((resolve) => setTimeout(resolve, wait).unref())
        .then(() => this.reload())
        .finally(() => {
          this.pending = undefined;
        });
    }
    await this.pending;
    return this.verify(secret);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
