/**
 * The audit context of one state-changing request or control-loop action (docs/audit.md): who acts, under which
 * request id, and the before → after notes the domains add while they work. Carried by AsyncLocalStorage, so a domain
 * deep in the call (the registry moving an alias, a rollout changing state) notes its change without every caller
 * passing the context down. Only audited routes and loop actions enter one; the inference path never does.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { AuditActor } from '../../storage/index.ts';

/** A change a domain made: what object, and its state before and after (small JSON: ids, versions, states). */
export interface AuditNote {
  /** e.g. `deployment:bike-demand`, `model:bike-demand`. */
  object: string;
  /** A name for the change, e.g. `alias.set`, `rollout.abort`, `version.register`. */
  change: string;
  before?: unknown;
  after?: unknown;
}

export interface AuditContext {
  requestId: string;
  /** Set for loop actions; for requests the recorder reads the key from the request when it writes. */
  actor?: AuditActor;
  notes: AuditNote[];
}

/** At most this many notes are kept per request or action (a bulk change notes each object once at most). */
export const MAX_NOTES = 100;

const storage = new AsyncLocalStorage<AuditContext>();

/**
 * Contexts open now. On Node 20 an enabled AsyncLocalStorage keeps async_hooks and promise hooks on for the whole
 * process, so every inference request, which never enters a context, paid for them once any audited call had run
 * (≈ 7 % of the serving thread, docs/benchmarks.md). The storage is disabled whenever no context is open, and
 * enabled again by the next one. A continuation a closed context left running sees no context: it can note
 * nothing, and its notes would have come after the entry was written anyway.
 */
let open = 0;

function closeOne(): void {
  if (--open === 0) storage.disable();
}

/** Runs `fn` inside a context: everything it starts, sync or async, notes into `ctx`. The context closes when `fn` (or the promise it returns) settles. */
export function runInAuditContext<T>(ctx: AuditContext, fn: () => T): T {
  let result!: T;
  const close = openAuditContext(ctx, () => {
    result = fn();
  });
  if (result instanceof Promise) return result.finally(close) as T;
  close();
  return result;
}

/**
 * Runs `fn` inside a context that stays open until the returned function is called (a request: from its first hook
 * until its response is closed). Calling it more than once closes once.
 */
export function openAuditContext(ctx: AuditContext, fn: () => void): () => void {
  open++;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    closeOne();
  };
  try {
    storage.run(ctx, fn);
  } catch (err) {
    close();
    throw err;
  }
  return close;
}

/** Contexts open now (tests). */
export function openAuditContexts(): number {
  return open;
}

/** Whether the storage, and with it Node's async hooks, is on (tests). */
export function auditStorageEnabled(): boolean {
  // `enabled` is Node's own flag on the instance, not in its typings.
  return (storage as unknown as { enabled?: boolean }).enabled === true;
}

/** The context of the request or loop action running now, if any. */
export function currentAudit(): AuditContext | undefined {
  return storage.getStore();
}

/** Records a change in the current context; outside one (a test calling a domain directly), nothing to record. */
export function noteAudit(note: AuditNote): void {
  const ctx = storage.getStore();
  if (!ctx) return;
  if (ctx.notes.length < MAX_NOTES) ctx.notes.push(note);
  else if (ctx.notes.length === MAX_NOTES) ctx.notes.push({ object: '', change: 'notes.truncated', after: { kept: MAX_NOTES } });
}

/**
 * The current request's or action's id, for records a domain writes itself (deployment events): the audit entry with
 * this id says who made the change and with which key. Undefined outside a context.
 */
export function auditRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}
