import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { EventStore } from '../storage/index.ts';

const DAY_MS = 86_400_000;

export interface PredictionRetentionOptions {
  events: Pick<EventStore, 'prunePredictions'>;
  /** Whole UTC days of predictions kept; older days are removed. */
  retentionDays: number;
  logger: Logger;
  promRegistry: Registry;
  /** How often it runs (ms); the first run is `firstRunMs` after start. */
  intervalMs?: number;
  firstRunMs?: number;
  now?: () => number;
}

/**
 * Retention of the prediction log (predictionLog.retentionDays): every hour, the days that ended more than
 * retentionDays ago go. On PostgreSQL each day is a partition dropped whole and the drop is serialized by an
 * advisory lock, so every replica may run this: whichever comes second finds nothing to drop.
 */
export class PredictionRetention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private readonly pruned: Counter;

  constructor(private readonly opts: PredictionRetentionOptions) {
    this.pruned = new Counter({
      name: 'warden_prediction_log_pruned_days_total',
      help: 'Days of predictions removed by retention (predictionLog.retentionDays).',
      registers: [opts.promRegistry],
    });
  }

  start(): void {
    const every = this.opts.intervalMs ?? 3_600_000;
    this.timer = setTimeout(() => {
      void this.run();
      this.timer = setInterval(() => void this.run(), every);
      this.timer.unref();
    }, this.opts.firstRunMs ?? 60_000);
    this.timer.unref();
  }

  /** One run; resolves with the days removed (0 when it failed: it is retried at the next run). */
  run(): Promise<number> {
    this.running ??= (async () => {
      const before = (this.opts.now ?? Date.now)() - this.opts.retentionDays * DAY_MS;
      try {
        const days = await this.opts.events.prunePredictions(before);
        this.pruned.inc(days);
        if (days > 0) this.opts.logger.info({ days, before: new Date(before).toISOString(), retentionDays: this.opts.retentionDays }, 'prediction log retention: removed old days');
        return days;
      } catch (err) {
        this.opts.logger.warn({ err }, 'prediction log retention failed; retrying at the next run');
        return 0;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
