import type { DriftReport } from './drift/engine.ts';
import type { WindowImportance } from './importance.ts';
import type { WindowPerformance } from './performance-window.ts';

/** One drift verdict of a window's summary. */
export interface FeatureDriftSummary {
  column: string;
  role: 'feature' | 'prediction';
  test: string;
  /** The test's own score: a p-value (lower is worse) or a distance (higher is worse), per scoreKind. */
  score: number | null;
  scoreKind: 'p_value' | 'distance';
  threshold: number;
  drift: boolean;
  /**
   * How far past its threshold the column is, the same way for every test: score / threshold for distances,
   * threshold / score for p-values; above 1 is drift. Capped at 1e9 (a p-value of 0); null when the test was skipped.
   */
  severity: number | null;
}

/** A window without histograms: what a list of a year of windows needs. */
export interface WindowSummary {
  windowStart: number;
  windowEnd: number;
  rows: number;
  datasetDrift: boolean;
  driftShare: number;
  predictionDrift: boolean;
  qualityFailures: number;
  /** Every drift verdict, worst first: drifted columns, then by severity. */
  features: FeatureDriftSummary[];
  performance?: WindowPerformance;
  /** Global importance: mean |SHAP| per feature to 4 significant digits, most important first (the report has the exact values). */
  importance?: { method: string; rows: number; background: number; features: Record<string, number> };
}

const MAX_SEVERITY = 1e9;

/** Four significant digits: enough to rank and show a score, and a year of summaries stays small. */
const sig4 = (v: number) => (v === 0 || !Number.isFinite(v) ? v : Number(v.toPrecision(4)));

function severity(c: DriftReport['columns'][number]): number | null {
  if (c.skipped !== undefined || !Number.isFinite(c.score)) return null;
  const s = c.scoreKind === 'p_value' ? (c.score <= 0 ? MAX_SEVERITY : c.threshold / c.score) : c.threshold <= 0 ? (c.score > 0 ? MAX_SEVERITY : 0) : c.score / c.threshold;
  return sig4(Math.min(MAX_SEVERITY, s));
}

/** Worst first: drifted before not, then higher severity, skipped last, then by name (stable for equal scores). */
export function worstFirst(a: FeatureDriftSummary, b: FeatureDriftSummary): number {
  if (a.drift !== b.drift) return a.drift ? -1 : 1;
  if (a.severity !== b.severity) return (b.severity ?? -1) - (a.severity ?? -1);
  return a.column.localeCompare(b.column);
}

/** The stored report part of a window (as MonitoringService writes it). */
interface StoredReport {
  drift: DriftReport;
  quality?: { failed?: number };
  extraFeatures?: Record<string, number>;
  performance?: WindowPerformance;
  importance?: WindowImportance;
}

/** Summarises one window's report: the verdicts without histograms, samples or per-bin detail. */
export function summarizeWindow(w: { windowStart: number; windowEnd: number; rows: number; qualityFailures: number }, report: unknown): WindowSummary {
  const r = report as StoredReport;
  const features = (r.drift?.columns ?? [])
    .map(
      (c): FeatureDriftSummary => ({
        column: c.column,
        role: c.role,
        test: c.test,
        score: Number.isFinite(c.score) ? sig4(c.score) : null,
        scoreKind: c.scoreKind,
        threshold: c.threshold,
        drift: c.drift,
        severity: severity(c),
      }),
    )
    .sort(worstFirst);
  return {
    windowStart: w.windowStart,
    windowEnd: w.windowEnd,
    rows: w.rows,
    datasetDrift: r.drift?.datasetDrift ?? false,
    driftShare: r.drift?.driftShare ?? 0,
    predictionDrift: r.drift?.predictionDrift ?? false,
    qualityFailures: w.qualityFailures,
    features,
    ...(r.performance ? { performance: r.performance } : {}),
    ...(r.importance ? { importance: importanceSummary(r.importance) } : {}),
  };
}

function importanceSummary(i: WindowImportance): NonNullable<WindowSummary['importance']> {
  const ranked = Object.entries(i.features).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return { method: i.method, rows: i.rows, background: i.background, features: Object.fromEntries(ranked.map(([f, x]) => [f, sig4(x)])) };
}
