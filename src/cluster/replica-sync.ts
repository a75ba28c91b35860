import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ChangeFeed, ChangeTopic, MetadataChange } from '../storage/index.ts';

/** What a replica does when a topic changed: `keys` are the changed keys, or undefined for "everything" (resync). */
export type ChangeHandler = (keys: ReadonlySet<string> | undefined) => Promise<void>;

export interface ReplicaSyncOptions {
  feed: ChangeFeed;
  handlers: Partial<Record<ChangeTopic, ChangeHandler>>;
  logger: Logger;
  promRegistry: Registry;
  /** How often the feed is read (ms): the bound on how stale a replica's caches are, plus the refresh itself. */
  intervalMs: number;
  /**
   * Each read goes back this far before the last change seen (ms), because sequence numbers are handed out at
   * insert and committed later: a change committed after a higher one was read would otherwise be skipped.
   */
  overlapMs?: number;
  /** Every handler also runs for "everything" this often (ms), healing anything a replica might have missed. */
  resyncMs?: number;
  /** Changes older than this are pruned from the feed (ms), by whichever replica holds the prune turn. */
  retentionMs?: number;
}

/** Changes read per poll at most; a longer backlog is read over the next polls. */
const PAGE = 1_000;

/**
 * Keeps one replica's in-memory state (serving table, keys, references, review policies, SLOs) in line with the
 * shared metadata store: every `intervalMs` it reads the change feed and calls the handler of each changed topic
 * once with the keys that changed. Handlers are idempotent refreshes, so reading a change twice costs a refresh,
 * never a wrong state.
 */
export class ReplicaSync {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Store-clock time up to which changes have been read. */
  private cursor = 0;
  /** seq → at of changes read within the overlap, so each is handled once. */
  private readonly seen = new Map<number, number>();
  private lastResync = 0;
  private lastPrune = 0;
  private readonly metrics: { changes: Counter<'topic'>; failures: Counter; lag: Gauge };

  constructor(private readonly opts: ReplicaSyncOptions) {
    this.metrics = {
      changes: new Counter({ name: 'warden_replica_sync_changes_total', help: 'Metadata changes this replica applied from the shared store, by topic.', labelNames: ['topic'], registers: [opts.promRegistry] }),
      failures: new Counter({ name: 'warden_replica_sync_failures_total', help: 'Reads of the change feed or refreshes that failed (retried at the next poll).', registers: [opts.promRegistry] }),
      lag: new Gauge({ name: 'warden_replica_sync_age_seconds', help: 'Seconds since this replica last read the change feed successfully.', registers: [opts.promRegistry] }),
    };
  }

  async start(): Promise<void> {
    this.cursor = await this.opts.feed.storeNow();
    this.lastResync = Date.now();
    let lastOk = Date.now();
    this.metrics.lag.set(0);
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.poll()
        .then(() => {
          lastOk = Date.now();
        })
        .catch((err) => {
          this.metrics.failures.inc();
          this.opts.logger.warn({ err }, 'replica sync: reading the change feed failed; retrying');
        })
        .finally(() => {
          this.metrics.lag.set((Date.now() - lastOk) / 1000);
          this.running = undefined;
        });
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  /** One read of the feed and the refreshes it calls for (tests call it directly). */
  async poll(): Promise<number> {
    const overlap = this.opts.overlapMs ?? 10_000;
    const changes = await this.opts.feed.listChanges({ sinceAt: this.cursor - overlap, limit: PAGE });
    const fresh: MetadataChange[] = [];
    for (const c of changes) {
      if (this.seen.has(c.seq)) continue;
      this.seen.set(c.seq, c.at);
      fresh.push(c);
    }
    if (changes.length) this.cursor = Math.max(this.cursor, changes[changes.length - 1]!.at);
    // A full page may hide more at the same times; the next poll reads on from there (seen ones are skipped).
    for (const [seq, at] of this.seen) if (at < this.cursor - overlap) this.seen.delete(seq);
    const byTopic = new Map<ChangeTopic, Set<string>>();
    for (const c of fresh) {
      let keys = byTopic.get(c.topic);
      if (!keys) byTopic.set(c.topic, (keys = new Set()));
      keys.add(c.key);
    }
    const resync = this.opts.resyncMs !== undefined && Date.now() - this.lastResync >= this.opts.resyncMs;
    for (const [topic, handler] of Object.entries(this.opts.handlers) as [ChangeTopic, ChangeHandler][]) {
      const keys = byTopic.get(topic);
      if (!keys && !resync) continue;
      try {
        await handler(resync ? undefined : keys);
        if (keys) this.metrics.changes.inc({ topic }, keys.size);
      } catch (err) {
        this.metrics.failures.inc();
        this.opts.logger.warn({ err, topic }, 'replica sync: refresh failed; it is retried at the next resync');
      }
    }
    if (resync) this.lastResync = Date.now();
    const retention = this.opts.retentionMs ?? 3_600_000;
    if (Date.now() - this.lastPrune > retention / 4) {
      this.lastPrune = Date.now();
      // Every replica may prune: deleting what is already gone is a no-op.
      await this.opts.feed.pruneChanges(this.cursor - retention).catch(() => 0);
    }
    return fresh.length;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
