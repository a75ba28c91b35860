import type { Logger } from 'pino';
import type { MetadataStore } from '../storage/index.ts';

export interface LeaderLeaseOptions {
  metadata: Pick<MetadataStore, 'acquireLease' | 'releaseLease'>;
  /** The role, e.g. `alerting`: one holder per name across every replica sharing the store. */
  name: string;
  /** This replica's identity (host:pid:random). */
  holder: string;
  /** How long a grant lasts (ms); a holder that stops renewing loses it this long after its last renewal. */
  ttlMs: number;
  logger: Logger;
  now?: () => number;
  /** Told when this replica takes or loses the role. */
  onChange?: (leading: boolean) => void;
}

/**
 * Leadership of one control loop among replicas, by a lease in the metadata store: `leading()` takes the lease when
 * it is free or expired and renews it past half its time, so a killed holder is replaced within `ttlMs` plus one
 * loop interval. A store that cannot be reached makes this replica step down (it cannot know who leads).
 */
export class LeaderLease {
  private until = 0;
  private leader = false;

  constructor(private readonly opts: LeaderLeaseOptions) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Whether this replica holds the role now, renewing or taking the lease when due. */
  async leading(): Promise<boolean> {
    const now = this.now();
    if (this.leader && now < this.until - this.opts.ttlMs / 2) return true;
    let acquired = false;
    try {
      const lease = await this.opts.metadata.acquireLease(this.opts.name, this.opts.holder, this.opts.ttlMs, now);
      acquired = lease.acquired;
      if (acquired) this.until = lease.expiresAt;
    } catch (err) {
      this.opts.logger.warn({ err, lease: this.opts.name }, 'lease: cannot reach the store; not leading until it answers');
    }
    if (acquired !== this.leader) {
      this.leader = acquired;
      this.opts.logger.info({ lease: this.opts.name, holder: this.opts.holder, leading: acquired }, acquired ? `took the ${this.opts.name} lease` : `lost the ${this.opts.name} lease`);
      this.opts.onChange?.(acquired);
    }
    return acquired;
  }

  /** The last answer of `leading()`, without asking the store. */
  get isLeader(): boolean {
    return this.leader && this.now() < this.until;
  }

  /** Gives the role up at shutdown so another replica takes it at once instead of after the ttl. */
  async release(): Promise<void> {
    if (!this.leader) return;
    this.leader = false;
    await this.opts.metadata.releaseLease(this.opts.name, this.opts.holder).catch(() => undefined);
  }
}
