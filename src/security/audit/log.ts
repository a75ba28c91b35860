/**
 * The audit log's writer and reader (docs/audit.md). Entries are appended to the metadata store, which chains them by
 * hash under one writer across replicas. A request's entry is written before its answer goes out (so an acknowledged
 * change is audited); a write that fails is kept in a bounded queue and retried, counted while it waits, and counted
 * as dropped only past the bound — with an error log, never silently.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AuditActor, AuditEntry, AuditQuery, MetadataStore, NewAuditEntry } from '../../storage/index.ts';
import { runInAuditContext, type AuditContext, type AuditNote } from './context.ts';
import { verifyAuditChain, type AuditVerification } from './verify.ts';

export interface AuditLogOptions {
  metadata: Pick<MetadataStore, 'appendAudit' | 'listAudit' | 'auditHead'>;
  logger: Logger;
  promRegistry: Registry;
  /** Entries kept for retry while the store refuses writes; default 10,000. */
  maxPending?: number;
  retryMs?: number;
  now?: () => number;
}

/** A control loop acting: which loop, and the action's name (`rollout.step`, `retrain.job`, …). */
export interface LoopAction {
  loop: string;
  action: string;
  /** What the action is about, when the notes do not say. */
  object?: string;
}

export class AuditLog {
  private pending: NewAuditEntry[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** The newest entry this process wrote or read: a verification that finds the chain shorter has lost entries. */
  private known: { seq: number; hash: string } | undefined;
  private readonly written: Counter<'actor'>;
  private readonly failures: Counter;
  private readonly dropped: Counter;
  private readonly pendingGauge: Gauge;
  private readonly headGauge: Gauge;
  private readonly now: () => number;

  constructor(private readonly opts: AuditLogOptions) {
    this.now = opts.now ?? Date.now;
    const registers = [opts.promRegistry];
    this.written = new Counter({ name: 'warden_audit_entries_total', help: 'Audit log entries written, by kind of actor (key, anonymous, loop).', labelNames: ['actor'], registers });
    this.failures = new Counter({ name: 'warden_audit_write_failures_total', help: 'Audit log writes the store refused (the entries are queued and retried).', registers });
    this.dropped = new Counter({ name: 'warden_audit_dropped_total', help: 'Audit entries lost because the retry queue was full while the store refused writes.', registers });
    this.pendingGauge = new Gauge({ name: 'warden_audit_pending_entries', help: 'Audit entries waiting to be written again after a failed write.', registers });
    this.headGauge = new Gauge({ name: 'warden_audit_head_seq', help: 'Sequence number of the newest audit entry this replica wrote or read; it never goes down unless entries were deleted.', registers });
  }

  /** Reads the head, so a later verification can tell entries deleted from the end. */
  async start(): Promise<void> {
    const head = await this.opts.metadata.auditHead();
    if (head) this.remember(head);
  }

  async stop(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.pending.length) await this.flush().catch(() => undefined);
    if (this.pending.length) this.opts.logger.error({ entries: this.pending.length }, 'audit: entries could not be written before shutdown');
  }

  private remember(e: { seq: number; hash: string }): void {
    if (!this.known || e.seq > this.known.seq) {
      this.known = { seq: e.seq, hash: e.hash };
      this.headGauge.set(e.seq);
    }
  }

  /** Appends entries now (behind any queued for retry); a failure queues them and resolves. */
  async record(entries: NewAuditEntry[]): Promise<void> {
    if (entries.length === 0) return;
    if (this.pending.length) {
      this.enqueue(entries);
      await this.flush();
      return;
    }
    try {
      const stored = await this.opts.metadata.appendAudit(entries);
      for (const e of entries) this.written.inc({ actor: e.actor.kind });
      const last = stored[stored.length - 1];
      if (last) this.remember(last);
    } catch (err) {
      this.failures.inc();
      this.opts.logger.warn({ err, entries: entries.length }, 'audit: the store refused the entries; they are queued and retried');
      this.enqueue(entries);
    }
  }

  private enqueue(entries: NewAuditEntry[]): void {
    const max = this.opts.maxPending ?? 10_000;
    const room = max - this.pending.length;
    if (room < entries.length) {
      const lost = entries.length - Math.max(room, 0);
      this.dropped.inc(lost);
      this.opts.logger.error({ lost, pending: this.pending.length }, 'audit: the retry queue is full; entries are lost (see warden_audit_dropped_total)');
    }
    this.pending.push(...entries.slice(0, Math.max(room, 0)));
    this.pendingGauge.set(this.pending.length);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.pending.length === 0) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.flush();
    }, this.opts.retryMs ?? 1000);
    this.retryTimer.unref();
  }

  /** Writes the queued entries, in order, 500 at a time. */
  flush(): Promise<void> {
    this.flushing ??= (async () => {
      try {
        while (this.pending.length) {
          const batch = this.pending.slice(0, 500);
          try {
            const stored = await this.opts.metadata.appendAudit(batch);
            this.pending.splice(0, batch.length);
            for (const e of batch) this.written.inc({ actor: e.actor.kind });
            const last = stored[stored.length - 1];
            if (last) this.remember(last);
          } catch (err) {
            this.failures.inc();
            this.opts.logger.warn({ err, pending: this.pending.length }, 'audit: retry failed; trying again');
            break;
          }
        }
      } finally {
        this.pendingGauge.set(this.pending.length);
        this.flushing = undefined;
        this.scheduleRetry();
      }
    })();
    return this.flushing;
  }

  /**
   * Runs a control loop's action in an audit context: the changes the domains note while it runs become entries of
   * the loop (one per note, or none when it changed nothing), written when it ends, even if it failed part-way.
   */
  async loop<T>(a: LoopAction, fn: () => Promise<T>): Promise<T> {
    const ctx: AuditContext = { requestId: `loop-${a.loop}-${randomBytes(6).toString('hex')}`, actor: { kind: 'loop', id: a.loop, role: '' }, notes: [] };
    try {
      return await runInAuditContext(ctx, fn);
    } finally {
      if (ctx.notes.length) await this.record(entriesOfNotes(ctx, a.action, a.object ?? '', this.now(), {}));
    }
  }

  list(q: AuditQuery): Promise<AuditEntry[]> {
    return this.opts.metadata.listAudit(q);
  }

  /** Walks the whole chain; also checks it reaches the newest entry this process knows of. */
  async verify(opts: { expectHead?: { seq: number; hash?: string } } = {}): Promise<AuditVerification> {
    const expect = opts.expectHead ?? this.known;
    const result = await verifyAuditChain(this.opts.metadata, expect ? { expectHead: expect } : {});
    if (result.head) this.remember(result.head);
    return result;
  }
}

/** One entry per note (each object changed), or one for the action itself when nothing was noted. */
export function entriesOfNotes(ctx: AuditContext, action: string, object: string, at: number, base: Record<string, unknown>, actor?: AuditActor): NewAuditEntry[] {
  const who = actor ?? ctx.actor ?? { kind: 'anonymous', id: '', role: '' };
  const notes: (AuditNote | undefined)[] = ctx.notes.length ? ctx.notes : [undefined];
  return notes.map((n) => ({
    at,
    actor: who,
    action: n ? (action.includes(' ') ? `${action} → ${n.change}` : n.change) : action,
    object: n?.object || object,
    summary: { ...base, ...(n ? { change: n.change, ...(n.before !== undefined ? { before: n.before } : {}), ...(n.after !== undefined ? { after: n.after } : {}) } : {}) },
    requestId: ctx.requestId,
  }));
}
