import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { EventStore } from '../storage/index.ts';

const DAY_MS = 86_400_000;

export interface PredictionRetentionOptions {
  events: Pick<EventStore, 'prunePredictions'>;
  /** Whole UTC days of predictions kept; older days are removed. Unset: kept, except for the models listed below. */
  retentionDays?: number;
  /** Per model: whole UTC days kept instead (0: all of that model's predictions are kept). */
  retentionDaysByModel?: Readonly<Record<string, number>>;
  logger: Logger;
  promRegistry: Registry;
  /** How often it runs (ms); the first run is `firstRunMs` after start. */
  intervalMs?: number;
  firstRunMs?: number;
  now?: () => number;
}

/**
 * Retention of the prediction log (predictionLog.retentionDays, retentionDaysByModel): every hour, the days that ended
 * more than the model's retention ago go; labelled rows are kept with their labels. On PostgreSQL each day is a partition dropped whole and the drop is serialized by an
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
      const now = (this.opts.now ?? Date.now)();
      const cutoff = (days: number | undefined) => (days === undefined || days === 0 ? Number.NEGATIVE_INFINITY : now - days * DAY_MS);
      const before = cutoff(this.opts.retentionDays);
      const byModel = Object.fromEntries(Object.entries(this.opts.retentionDaysByModel ?? {}).map(([m, d]) => [m, cutoff(d)]));
      try {
        const days = await this.opts.events.prunePredictions(before, byModel);
        this.pruned.inc(days);
        if (days > 0) {
          this.opts.logger.info(
            { days, retentionDays: this.opts.retentionDays ?? null, retentionDaysByModel: this.opts.retentionDaysByModel ?? {} },
            'prediction log retention: removed old days (labelled rows kept with their labels)',
          );
        }
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
