import type { ColumnSpec, DatasetProfile, ProfileSchema } from './profile/index.ts';

/** Thresholds of the per-window data-quality checks (shares of the column's rows). */
export interface QualityThresholds {
  /** Minimum share of non-missing values (default 0.95). */
  completeness: number;
  /** Maximum share of NaN/±inf (default 0). */
  nonFinite: number;
  /** Maximum share of wrongly typed values (default 0). */
  typeErrors: number;
  /** Maximum share out of the allowed range (default 0.01). */
  outOfRange: number;
  /** Maximum share of categories unseen in the reference (default 0). */
  newCategories: number;
}

export const DEFAULT_QUALITY_THRESHOLDS: QualityThresholds = {
  completeness: 0.95,
  nonFinite: 0,
  typeErrors: 0,
  outOfRange: 0.01,
  newCategories: 0,
};

export type QualityMetric = 'completeness' | 'non_finite_share' | 'type_error_share' | 'out_of_range_share' | 'new_category_share';

export interface QualityCheck {
  column: string;
  metric: QualityMetric;
  value: number;
  threshold: number;
  /** True when the value breaks its threshold. */
  failed: boolean;
}

export interface QualityReport {
  rows: number;
  checks: QualityCheck[];
  failed: number;
}

function share(n: number, d: number): number {
  return d > 0 ? n / d : 0;
}

/** Data-quality checks of one window's profile: each a metric with a threshold. Pure. */
export function evaluateQuality(schema: ProfileSchema, profile: DatasetProfile, t: Partial<QualityThresholds> = {}): QualityReport {
  const th = { ...DEFAULT_QUALITY_THRESHOLDS, ...t };
  const checks: QualityCheck[] = [];
  schema.columns.forEach((spec: ColumnSpec, i) => {
    const c = profile.columns[i]!;
    const push = (metric: QualityMetric, value: number, threshold: number, failed: boolean) =>
      checks.push({ column: spec.name, metric, value, threshold, failed: c.count > 0 && failed });
    const completeness = c.count > 0 ? 1 - c.missing / c.count : 1;
    push('completeness', completeness, th.completeness, completeness < th.completeness);
    const nonFinite = share(c.nonFinite, c.count);
    push('non_finite_share', nonFinite, th.nonFinite, nonFinite > th.nonFinite);
    const typeErrors = share(c.typeErrors, c.count);
    push('type_error_share', typeErrors, th.typeErrors, typeErrors > th.typeErrors);
    if (spec.kind === 'numeric') {
      const oor = share(c.outOfRange, c.count);
      push('out_of_range_share', oor, th.outOfRange, oor > th.outOfRange);
    } else {
      const nc = share(c.outOfRange, c.count);
      push('new_category_share', nc, th.newCategories, nc > th.newCategories);
    }
  });
  return { rows: profile.rows, checks, failed: checks.filter((c) => c.failed).length };
}
