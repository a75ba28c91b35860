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

export interface KeyOptions {
  /** Model (deployment) names the key is limited to; each must exist. */
  scopes?: unknown;
  /** Epoch ms, an ISO-8601 time, or a duration from now (`30d`, `12h`). */
  expires?: unknown;
  now?: number;
}

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `90s`, `1h30m`, `30d`, `0` (or a number of ms) → milliseconds; anything else is a 400 naming `what`. */
export function parseDuration(raw: unknown, what: string): number {
  if (typeof raw === 'number' && Number.isFinite(raw) && raw >= 0) return raw;
  const text = typeof raw === 'string' ? raw.trim() : '';
  if (text === '0') return 0;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)];
  if (text === '' || parts.map((p) => p[0]).join('') !== text) throw bad(`${what} must be a duration such as "30s", "1h" or "30d", got ${JSON.stringify(raw)}`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * UNITS[p[2]!]!, 0);
}
const MAX_SCOPES = 100;
const MAX_EXPIRY_MS = 10 * 365 * 86_400_000;
/** A rotation's overlap at most: long enough to roll any fleet, short enough that an old secret does not linger. */
export const MAX_OVERLAP_MS = 30 * 86_400_000;

/** Validates scopes: 1–100 distinct names of models that exist (an unknown name is a typo that would lock the key out). */
async function checkScopes(store: MetadataStore, role: Role, raw: unknown): Promise<string[] | undefined> {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_SCOPES || raw.some((s) => typeof s !== 'string' || s.length === 0 || s.length > 256)) {
    throw bad(`"scopes" must be a list of 1 to ${MAX_SCOPES} model (deployment) names`);
  }
  if (role === 'admin') throw bad('an admin key manages the whole server (keys, limits, game days) and cannot be scoped; scope a viewer, predictor or deployer key');
  const names = [...new Set(raw as string[])];
  for (const name of names) {
    if (!(await store.getModel(name))) {
      throw bad(`scope names unknown model ${JSON.stringify(name)}; a scope is the name of a registered model (its deployment): see GET /api/v1/models or 'warden models list'`);
    }
  }
  return names;
}

/** Expiry as epoch ms: a number, an ISO-8601 time or a duration from `now`; it must lie in the future, within 10 years. */
export function parseExpiry(raw: unknown, now: number): number | undefined {
  if (raw === undefined || raw === null) return undefined;
  let at: number;
  if (typeof raw === 'number') at = raw;
  else if (typeof raw === 'string' && /^\d+(\.\d+)?(ms|s|m|h|d|w)/.test(raw.trim())) at = now + parseDuration(raw, 'expiry');
  else if (typeof raw === 'string') at = Date.parse(raw);
  else throw bad('expiry must be epoch ms, an ISO-8601 time or a duration such as "30d"');
  if (!Number.isFinite(at)) throw bad(`expiry ${JSON.stringify(raw)} is not a time; use epoch ms, ISO-8601 (2030-01-31T00:00:00Z) or a duration such as "30d"`);
  if (at <= now) throw bad(`expiry ${new Date(at).toISOString()} is not in the future`);
  if (at > now + MAX_EXPIRY_MS) throw bad('expiry must be within 10 years; leave it out for a key that never expires');
  return Math.round(at);
}

/** Creates a key with a role, optionally scoped and expiring; returns the secret once. */
export async function createApiKey(store: MetadataStore, name: string, role: Role, opts: KeyOptions = {}): Promise<CreatedKey> {
  const now = opts.now ?? Date.now();
  if (!isRole(role)) throw bad(`unknown role ${JSON.stringify(role)}; use one of ${ROLES.join(', ')}`);
  if (!name || name.length > 200) throw bad('key name must be 1-200 characters');
  const scopes = await checkScopes(store, role, opts.scopes);
  const expiresAt = parseExpiry(opts.expires, now);
  const id = randomBytes(6).toString('hex');
  const secret = newSecret(id);
  const record: ApiKeyRecord = { id, name, role, hash: hashApiKey(secret), createdAt: now, ...(scopes ? { scopes } : {}), ...(expiresAt !== undefined ? { expiresAt } : {}) };
  await store.createApiKey(record);
  return { record, secret };
}

const newSecret = (id: string) => `wdn_${id}_${randomBytes(32).toString('base64url')}`;

/**
 * Gives an active key a new secret; the old one keeps working for `overlapMs` (0: refused at once), so clients can
 * move over without an outage. A second rotation ends the first old secret at once.
 */
export async function rotateApiKey(store: MetadataStore, id: string, overlapMs: number, now = Date.now()): Promise<CreatedKey> {
  if (!Number.isFinite(overlapMs) || overlapMs < 0 || overlapMs > MAX_OVERLAP_MS) throw bad('overlap must be between 0 and 30 days (e.g. "1h")');
  const secret = newSecret(id);
  const record = await store.rotateApiKey(id, hashApiKey(secret), now + Math.round(overlapMs));
  if (!record) throw new WardenError('WARDEN_NOT_FOUND', `no active key ${id}; 'warden keys list' shows the keys`);
  return { record, secret };
}

/** A key without its verifiers: what listings show. */
export function publicKey(k: ApiKeyRecord): Omit<ApiKeyRecord, 'hash' | 'previousHash'> {
  const { hash: _h, previousHash: _p, ...rest } = k;
  return rest;
}

/** One accepted secret of a key: the current one, or a rotated one during its overlap. Built at reload, shared by requests. */
export interface KeyEntry {
  readonly key: ApiKeyRecord;
  /** sha256 (hex) of the secret, compared in constant time after the map lookup. */
  readonly hash: string;
  /** This secret is refused from then on (expiry, or the end of its overlap); Infinity: never. */
  readonly until: number;
  /** What ends it, for the 401. */
  readonly ends: 'expired' | 'rotated';
  /** The models a scoped key may address; undefined: unscoped. */
  readonly scopes: ReadonlySet<string> | undefined;
}

/**
 * Constant-time equality of two sha256 hex digests: every character is visited and folded into one accumulator, no
 * early exit. crypto.timingSafeEqual does the same on Buffers, but making the Buffers (a binary digest, then its hex
 * for the map) cost about 400 ns more per request (bench/security/guard.mts); the strings are already there.
 */
export function sameHash(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export interface KeyRingOptions {
  /** Re-reads keys this often, the bound on how late another replica sees a revocation without a change feed. */
  refreshMs?: number;
  minMissReloadMs?: number;
  /** Writes last-use times at most this often (one batch per flush, never one write per request). */
  lastUsedFlushMs?: number;
  now?: () => number;
}

/**
 * Keys in memory, so checking a key on the request path reads no store. Reloaded after every
 * change made through this process and on a timer for changes made by other replicas or the CLI.
 */
export class KeyRing {
  private byHash = new Map<string, KeyEntry>();
  private timer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private lastReloadAt = 0;
  private pending: Promise<void> | undefined;
  /** key id → last accepted, not yet written. */
  private used = new Map<string, number>();
  private readonly refreshMs: number;
  private readonly minMissReloadMs: number;
  private readonly lastUsedFlushMs: number;
  readonly now: () => number;

  /**
   * `minMissReloadMs` bounds how often an unknown key makes the ring re-read the store: a key created a moment ago
   * (by the CLI or another replica) works on its first request, and a caller spraying made-up keys costs at most one
   * store read per interval.
   */
  constructor(
    private readonly store: MetadataStore,
    opts: KeyRingOptions = {},
  ) {
    this.refreshMs = opts.refreshMs ?? 10_000;
    this.minMissReloadMs = opts.minMissReloadMs ?? 500;
    this.lastUsedFlushMs = opts.lastUsedFlushMs ?? 30_000;
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => void this.reload().catch(() => undefined), this.refreshMs);
    this.timer.unref();
    this.flushTimer = setInterval(() => void this.flushUsage().catch(() => undefined), this.lastUsedFlushMs);
    this.flushTimer.unref();
  }

  async reload(): Promise<void> {
    this.lastReloadAt = this.now();
    const next = new Map<string, KeyEntry>();
    for (const k of await this.store.listApiKeys()) {
      if (k.revokedAt !== undefined) continue;
      const scopes = k.scopes ? new Set(k.scopes) : undefined;
      const expires = k.expiresAt ?? Infinity;
      next.set(k.hash, { key: k, hash: k.hash, until: expires, ends: 'expired', scopes });
      // A rotated secret ends with its overlap, or with the key, whichever comes first.
      if (k.previousHash !== undefined && k.previousUntil !== undefined) {
        const rotatedFirst = k.previousUntil < expires;
        next.set(k.previousHash, { key: k, hash: k.previousHash, until: rotatedFirst ? k.previousUntil : expires, ends: rotatedFirst ? 'rotated' : 'expired', scopes });
      }
    }
    this.byHash = next;
  }

  /**
   * The entry for a presented secret, if any; the caller checks `until`. The map lookup is keyed by the sha256 of
   * what the caller sent, so its timing depends on that hash, which the caller can compute anyway, never on a stored
   * secret. The compare of the two hashes after it is the one place a stored verifier meets a presented one, and it
   * runs in constant time (see sameHash).
   */
  verify(secret: string): KeyEntry | undefined {
    const hash = createHash('sha256').update(secret).digest('hex');
    const entry = this.byHash.get(hash);
    return entry !== undefined && sameHash(entry.hash, hash) ? entry : undefined;
  }

  /**
   * Like {@link verify}, but a miss re-reads the store first (one read shared by every miss in flight, at most one
   * per `minMissReloadMs`), so a key made after the last refresh is accepted at once instead of up to `refreshMs` later.
   */
  async verifyFresh(secret: string): Promise<KeyEntry | undefined> {
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

  /** Notes an accepted request: a map write of a key already there, no store write (see flushUsage). */
  touch(id: string, at: number): void {
    this.used.set(id, at);
  }

  /** The last use this replica saw and has not written yet. */
  unflushedUse(id: string): number | undefined {
    return this.used.get(id);
  }

  /** Writes the last uses seen since the previous flush, in one batch. A failed write is merged back for the next. */
  async flushUsage(): Promise<void> {
    if (this.used.size === 0) return;
    const batch = [...this.used].map(([id, at]) => ({ id, at }));
    this.used = new Map();
    try {
      await this.store.touchApiKeys(batch);
    } catch (e) {
      for (const u of batch) if ((this.used.get(u.id) ?? -Infinity) < u.at) this.used.set(u.id, u.at);
      throw e;
    }
  }

  /** Stops the timers and writes the last uses (before the store closes). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.flushTimer) clearInterval(this.flushTimer);
    await this.flushUsage().catch(() => undefined);
  }
}
