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

/** Runs `fn` inside a context: everything it starts, sync or async, notes into `ctx`. */
export function runInAuditContext<T>(ctx: AuditContext, fn: () => T): T {
  return storage.run(ctx, fn);
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
