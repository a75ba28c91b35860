/**
 * The contract between alert sources (rules on Warden's metrics, SLO burn rates, any other domain) and the
 * alerting engine. Other domains produce `AlertCondition`s through an `AlertSource`; the engine owns state,
 * grouping, silences, inhibition, suppression and notification.
 */

export type Severity = 'page' | 'ticket';
/** One alert condition as a source sees it at evaluation time. */
export interface AlertCondition {
  alertname: string;                 // e.g. 'SLOErrorBudgetBurn', 'DataDrift'
  labels: Record<string, string>;    // include `deployment` (model name) when about one; the engine adds `severity`
  severity: Severity;
  active: boolean;                   // the condition holds now
  value?: number;
  forMs?: number;                    // must hold this long before firing (Prometheus `for`); default 0
  summary: string;
  description: string;
  runbookUrl: string;                // e.g. 'docs/runbooks/data-drift.md' (relative to the repo; config can set a base URL)
}
export interface AlertSource { name: string; evaluate(now: number): Promise<AlertCondition[]> }
