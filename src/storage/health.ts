import { WardenError } from '../errors.ts';

/** The stores a write can fail in. */
export type StoreName = 'metadata' | 'events' | 'artifacts';

/** Why a store refused a write, in words a caller can act on. */
export interface StoreFault {
  /** The error code the store gave (SQLITE_FULL, ENOSPC, EROFS …). */
  code: string;
  cause: string;
  fix: string;
}

const FULL = { cause: 'the disk holding the data directory is full', fix: 'free space there or move storage.dataDir to a larger disk; writes succeed again as soon as there is room' };
const READ_ONLY = {
  cause: 'the data directory is read-only or not writable by the Warden process',
  fix: 'make storage.dataDir writable by the user running Warden (or remount its filesystem read-write)',
};
const IO = { cause: 'the disk reported an I/O error', fix: "check the disk and the data directory's filesystem (dmesg, fsck)" };
const GONE = { cause: 'a store file cannot be opened (the data directory was moved, removed or unmounted)', fix: 'restore storage.dataDir and restart Warden' };
const LOCKED = { cause: 'the store is locked by another process', fix: 'stop other processes writing the data directory, or retry' };

const PG_DOWN = {
  cause: 'the PostgreSQL server at storage.url cannot be reached (stopped, restarting, or the network is down)',
  fix: 'start PostgreSQL or restore the network; Warden reconnects by itself and queued prediction events are written when it is back',
};
const PG_FULL = { cause: "the PostgreSQL server's disk is full", fix: 'free space on the database server; writes succeed again as soon as there is room' };
const PG_READ_ONLY = {
  cause: 'the PostgreSQL server only accepts reads (a standby, or default_transaction_read_only)',
  fix: 'point storage.url at the primary; after a failover, at the new primary',
};
const PG_BUSY = { cause: 'the PostgreSQL server refused a new connection (too many connections)', fix: 'lower storage.maxConnections per replica or raise max_connections on the server' };

/** Socket errors of the PostgreSQL driver: the server is gone or the network is. */
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html) → what happened. */
function pgFaultOf(code: string): Omit<StoreFault, 'code'> | undefined {
  if (!/^[0-9A-Z]{5}$/.test(code)) return undefined;
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return PG_DOWN;
  if (code === '53100') return PG_FULL;
  if (code === '53300') return PG_BUSY;
  if (code === '25006') return PG_READ_ONLY;
  return undefined;
}

/** The driver's own errors carry no code; their messages are stable across pg 8.x. */
const PG_DRIVER_DOWN = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection terminated unexpectedly)/;

/** SQLite extended result codes and errno names → what happened. */
function faultOf(code: string): Omit<StoreFault, 'code'> | undefined {
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return FULL;
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return READ_ONLY;
  if (code.startsWith('SQLITE_IOERR') || code === 'EIO' || code === 'SQLITE_CORRUPT') return IO;
  if (code.startsWith('SQLITE_CANTOPEN')) return GONE;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return LOCKED;
  return undefined;
}

/**
 * Whether an error is the store refusing a write (disk full, read-only, I/O error, locked) rather than a bug: those
 * reach callers as 503 WARDEN_STORE_UNAVAILABLE naming the cause, not as 500 "internal error". Errors that crossed
 * the writer thread keep their code in `code` (see the worker event store).
 */
export function classifyStoreError(e: unknown): StoreFault | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string') {
    const message = e instanceof Error ? e.message : '';
    return PG_DRIVER_DOWN.test(message) ? { code: 'PG_CONNECTION', ...PG_DOWN } : undefined;
  }
  if (NET_CODES.has(code)) return { code, ...PG_DOWN };
  const pgFault = pgFaultOf(code);
  if (pgFault) return { code, ...pgFault };
  // A store's own probe found its folder missing (see the artifact store): the data directory is gone.
  const fault = code === 'ENOENT' && (e as { store?: unknown }).store !== undefined ? GONE : faultOf(code);
  return fault ? { code, ...fault } : undefined;
}

/** Which store an unclassified error came from: SQLite codes are a database's, errno names the artifact files'. */
export function storeOfError(e: unknown): StoreName {
  const code = String((e as { code?: unknown }).code ?? '');
  const message = e instanceof Error ? e.message : '';
  const tagged = (e as { store?: unknown }).store;
  if (tagged === 'events' || tagged === 'artifacts' || tagged === 'metadata') return tagged;
  if (message.startsWith('event store')) return 'events';
  return code.startsWith('SQLITE') ? 'metadata' : 'artifacts';
}

/** The caller-facing error for a write a store refused. */
export function storeUnavailable(store: StoreName, fault: StoreFault): WardenError {
  return new WardenError('WARDEN_STORE_UNAVAILABLE', `cannot store this write: ${fault.cause} (${store} store, ${fault.code}); ${fault.fix}`, {
    store,
    cause: fault.code,
  });
}

/** A store's degraded state: since when writes fail, the last failure and why. */
export interface StoreStatus {
  store: StoreName;
  code: string;
  cause: string;
  fix: string;
  since: number;
  lastFailureAt: number;
}

/**
 * What this replica knows of its stores' health, from the writes it makes: a store is degraded from a failed write
 * until a write to it succeeds, or until `holdMs` pass with no further failure (a store nobody writes to is not
 * probed). The prediction log writes every flush, so the events store's state follows the disk closely.
 */
export class StoreHealth {
  private readonly state = new Map<StoreName, StoreStatus>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly holdMs = 60_000,
  ) {}

  /** A write to `store` failed for `fault`. */
  fault(store: StoreName, fault: StoreFault): void {
    const at = this.now();
    const prev = this.state.get(store);
    this.state.set(store, { store, ...fault, since: prev?.since ?? at, lastFailureAt: at });
  }

  /** A write to `store` succeeded. */
  ok(store: StoreName): void {
    if (this.state.size) this.state.delete(store);
  }

  /** The degraded stores, oldest failure first. */
  degraded(): StoreStatus[] {
    const cutoff = this.now() - this.holdMs;
    for (const [k, s] of this.state) if (s.lastFailureAt < cutoff) this.state.delete(k);
    return [...this.state.values()].sort((a, b) => a.since - b.since);
  }
}

/**
 * The port methods that write, by store. A success of one of these clears the store's degraded state; any method's
 * failure with a store fault marks it. Join-then-read calls (`queryLabelled`, `labelStats`) may write nothing, so
 * their successes prove nothing and are not listed; a name-based guess got that wrong (labelStats looked like a
 * label write and cleared a full disk's state on every read).
 */
const WRITES: Record<StoreName, ReadonlySet<string>> = {
  metadata: new Set([
    'createModel', 'deleteModel', 'createVersion', 'amendVersion', 'deleteVersion', 'setAlias', 'deleteAlias', 'saveReference',
    'deleteReference', 'createApiKey', 'revokeApiKey', 'rotateApiKey', 'touchApiKeys', 'saveRateLimit', 'deleteRateLimit', 'saveCostBudget', 'deleteCostBudget', 'saveQuota', 'deleteQuota', 'addQuotaUsage', 'pruneQuotaUsage', 'saveReviewPolicy', 'deleteReviewPolicy', 'enqueueReviewItems',
    'claimReviewItem', 'labelReviewItem', 'appendAlertHistory', 'pruneAlertHistory', 'saveSilence', 'saveSuppression', 'saveAlertRules', 'saveFeatureRepo', 'saveDeploymentFeatures', 'deleteDeploymentFeatures',
    'createRollout', 'updateRollout', 'appendRolloutDecisions', 'acquireLease', 'releaseLease',
  ]),
  events: new Set(['appendBatch', 'appendPredictions', 'appendLabels', 'appendProfiles', 'saveMonitorResult', 'addSliCounts', 'setSliCounts', 'deleteSli', 'appendOutcomes', 'addTraffic', 'pruneTraffic', 'prunePredictions']),
  artifacts: new Set(['put', 'delete']),
};

/** An artifact `put` of bytes already stored writes nothing: only one that wrote proves the disk takes writes. */
function wroteSomething(method: string, result: unknown): boolean {
  return !(method === 'put' && typeof result === 'object' && result !== null && (result as { written?: unknown }).written === false);
}

/**
 * The store with its calls reported to \`health\`: a call failing with a store fault marks the store degraded
 * (whoever made it, a route or a control loop), and a write that succeeded clears it.
 */
export function watchWrites<T extends object>(store: T, name: StoreName, health: StoreHealth): T {
  const writes = WRITES[name];
  const failed = (e: unknown): never => {
    const fault = classifyStoreError(e);
    if (fault) {
      health.fault(name, fault);
      // The three PostgreSQL stores share one server, so the error alone cannot say which store refused it.
      if (typeof e === 'object' && e !== null && (e as { store?: unknown }).store === undefined) (e as { store?: StoreName }).store = name;
    }
    throw e;
  };
  const succeeded = (method: string, v: unknown): unknown => {
    if (writes.has(method) && wroteSomething(method, v)) health.ok(name);
    return v;
  };
  const wrapped = new Map<string, unknown>();
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string' || typeof value !== 'function' || prop === 'close' || prop === 'constructor') return value;
      let fn = wrapped.get(prop);
      if (!fn) {
        fn = (...args: unknown[]) => {
          let result: unknown;
          try {
            result = (value as (...a: unknown[]) => unknown).apply(target, args);
          } catch (e) {
            return failed(e);
          }
          if (result instanceof Promise) return result.then((v: unknown) => succeeded(prop, v), failed);
          return succeeded(prop, result);
        };
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
}
