import type { AlertCondition, AlertSource } from '../alerting/index.ts';
import { errorBudget, multiWindowAlerts, scaledPeriodMs, type BurnAlert, type SliPoint, type TimeOptions } from './burn-rate.ts';
import { describeSli, RUNBOOKS, type SloDefinition } from './definition.ts';

/** The alert every SLO burn raises; `window` and `severity` tell the policy rows apart. */
export const SLO_ALERTNAME = 'SLOErrorBudgetBurn';

/** What the alert source reads: the definitions and their recorded series. */
export interface SloReader {
  list(): readonly SloDefinition[];
  /** Buckets of an SLO starting in [since, until). */
  series(name: string, since: number, until: number): Promise<SliPoint[]>;
  /** How far back to read for an SLO (its period, or its longest burn window). */
  lookbackMs(slo: SloDefinition): number;
  timeScale: number;
}

const pct = (x: number) => `${(x * 100).toFixed(x >= 0.9995 || x <= -0.9995 ? 1 : 2)}%`;
const times = (x: number) => `${x >= 100 ? x.toFixed(0) : x.toFixed(2)}×`;

function duration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)}s` : `${ms}ms`;
}

/**
 * The alert conditions of one SLO at `now`: one `SLOErrorBudgetBurn` per policy row (page 1h/5m and 6h/30m,
 * ticket 1d/2h and 3d/6h), active while both of its windows burn faster than the row's factor. Every row of an
 * SLO shares `inhibit_group`, so the alerting engine mutes the SLO's tickets while one of its pages fires.
 * Pure: the series and `now` are given.
 */
export function sloConditions(slo: SloDefinition, series: readonly SliPoint[], now: number, opts: TimeOptions = {}): AlertCondition[] {
  const budget = errorBudget(slo, series, now, opts);
  const period = scaledPeriodMs(slo, opts);
  return multiWindowAlerts(slo, series, now, opts).map((b: BurnAlert) => {
    const exhaustsIn = b.longBurnRate > 0 ? duration(Math.round(period / b.longBurnRate)) : 'never';
    return {
      alertname: SLO_ALERTNAME,
      labels: {
        deployment: slo.deployment,
        slo: slo.name,
        window: b.name,
        sli: slo.sli.kind,
        inhibit_group: `${SLO_ALERTNAME}:${slo.name}`,
        ...(slo.version !== undefined ? { version: String(slo.version) } : {}),
      },
      severity: b.severity,
      active: b.firing,
      value: b.longBurnRate,
      summary: `${slo.deployment}: SLO ${slo.name} is burning its error budget at ${times(b.longBurnRate)} (${b.severity} above ${b.factor}× over ${b.name})`,
      description:
        `${describeSli(slo.sli)}; objective ${+(slo.objective * 100).toPrecision(6)}% over ${slo.period}. Burn rate ${times(b.longBurnRate)} over ${duration(b.longMs)} ` +
        `and ${times(b.shortBurnRate)} over ${duration(b.shortMs)} (threshold ${b.factor}×); at this rate the whole budget lasts ${exhaustsIn}. ` +
        `SLI over the period ${pct(budget.sli)} of ${budget.total} events; budget remaining ${pct(budget.remaining)}.`,
      runbookUrl: RUNBOOKS[slo.sli.kind],
    };
  });
}

/** SLO burn rates as an alert source for the alerting engine; one SLO failing to read does not hide the others. */
export class SloAlertSource implements AlertSource {
  readonly name = 'slo';

  constructor(
    private readonly reader: SloReader,
    private readonly onError: (slo: string, err: unknown) => void = () => undefined,
  ) {}

  async evaluate(now: number): Promise<AlertCondition[]> {
    const out: AlertCondition[] = [];
    for (const slo of this.reader.list()) {
      try {
        const series = await this.reader.series(slo.name, now - this.reader.lookbackMs(slo), now);
        out.push(...sloConditions(slo, series, now, { timeScale: this.reader.timeScale }));
      } catch (err) {
        this.onError(slo.name, err);
      }
    }
    return out;
  }
}
