import { WardenError } from '../../errors.ts';
import type { ColumnProfile, ColumnSpec, DatasetProfile, ProfileSchema } from '../profile/index.ts';
import * as stats from './stats/index.ts';
import { DRIFT_TESTS, defaultTest, isDriftTest, type DriftTestName } from './tests.ts';

/** Per-column override of the test and its threshold. */
export interface ColumnDriftConfig {
  test?: DriftTestName;
  threshold?: number;
}

export interface DriftConfig {
  columns?: Record<string, ColumnDriftConfig>;
  /** Dataset drift when at least this share of feature columns drifts (default 0.5). */
  datasetDriftShare?: number;
}

export interface ColumnDrift {
  column: string;
  role: 'feature' | 'prediction';
  kind: 'numeric' | 'categorical';
  test: DriftTestName;
  /** 'p_value': drift when score < threshold; 'distance': drift when score ≥ threshold. */
  scoreKind: 'p_value' | 'distance';
  score: number;
  /** The test statistic behind a p-value (KS D, chi² …); equal to score for distances. */
  statistic: number;
  threshold: number;
  drift: boolean;
  referenceRows: number;
  currentRows: number;
  /** Why no verdict was possible (e.g. no valid values in the window). */
  skipped?: string;
}

export interface DriftReport {
  columns: ColumnDrift[];
  /** Share of feature columns that drifted. */
  driftShare: number;
  datasetDrift: boolean;
  datasetDriftShare: number;
  predictionDrift: boolean;
}

/** Validates a drift config against a schema: unknown columns and tests are errors, not silent no-ops. */
export function checkDriftConfig(schema: ProfileSchema, config: DriftConfig): void {
  for (const [name, c] of Object.entries(config.columns ?? {})) {
    const spec = schema.columns.find((s) => s.name === name);
    if (!spec) throw new WardenError('WARDEN_BAD_REQUEST', `drift config names column ${JSON.stringify(name)}, which the reference does not have`);
    if (c.test !== undefined && !isDriftTest(c.test)) {
      throw new WardenError('WARDEN_BAD_REQUEST', `unknown drift test ${JSON.stringify(c.test)} for ${name}; use one of ${Object.keys(DRIFT_TESTS).join(', ')}`);
    }
    if (c.test && DRIFT_TESTS[c.test].input === 'sample' && spec.kind !== 'numeric') {
      throw new WardenError('WARDEN_BAD_REQUEST', `test ${c.test} needs a numeric column; ${name} is categorical`);
    }
    if ((c.test === 'z' || c.test === 'fisher') && (spec.kind !== 'categorical' || (spec.categories?.length ?? 0) > 2)) {
      throw new WardenError('WARDEN_BAD_REQUEST', `test ${c.test} needs a binary categorical column; ${name} is not`);
    }
    if (c.threshold !== undefined && !(Number.isFinite(c.threshold) && c.threshold >= 0)) {
      throw new WardenError('WARDEN_BAD_REQUEST', `drift threshold for ${name} must be a non-negative number`);
    }
  }
  const share = config.datasetDriftShare;
  if (share !== undefined && !(share > 0 && share <= 1)) throw new WardenError('WARDEN_BAD_REQUEST', 'datasetDriftShare must be in (0, 1]');
}

/**
 * One side of a comparison: its profile (counts, histograms, categories) and, for sample-based tests,
 * the values of column i — the profile's bounded sample online, or every value offline.
 */
export interface DriftSide {
  profile: DatasetProfile;
  values?: (column: number) => Float64Array;
}

function sampleColumn(p: DatasetProfile, i: number): Float64Array {
  const out: number[] = [];
  for (const row of p.sample) {
    const v = row[i];
    if (typeof v === 'number') out.push(v);
  }
  return Float64Array.from(out);
}

/** Aligned count vectors over the union of the reference's bins or categories and the window's new ones. */
export function alignedCounts(spec: ColumnSpec, ref: ColumnProfile, cur: ColumnProfile): { ref: number[]; cur: number[]; labels: string[] } {
  if (spec.kind === 'numeric') {
    const edges = spec.edges ?? [];
    const labels = (ref.hist ?? []).map((_, j) => (j === 0 ? `< ${edges[0] ?? '∞'}` : `≥ ${edges[j - 1]}`));
    return { ref: [...(ref.hist ?? [])], cur: [...(cur.hist ?? [])], labels };
  }
  const labels = [...(spec.categories ?? [])];
  const refCounts = labels.map((k) => ref.categories?.[k] ?? 0);
  const curCounts = labels.map((k) => cur.categories?.[k] ?? 0);
  for (const [k, n] of Object.entries(cur.newCategories ?? {})) {
    labels.push(k);
    refCounts.push(0);
    curCounts.push(n);
  }
  if ((cur.otherNew ?? 0) > 0) {
    labels.push('(other new)');
    refCounts.push(0);
    curCounts.push(cur.otherNew!);
  }
  return { ref: refCounts, cur: curCounts, labels };
}

function runTest(test: DriftTestName, spec: ColumnSpec, i: number, refSide: DriftSide, curSide: DriftSide): { score: number; statistic: number } | string {
  const def = DRIFT_TESTS[test];
  const ref = refSide.profile;
  const cur = curSide.profile;
  if (def.input === 'sample') {
    const a = refSide.values ? refSide.values(i) : sampleColumn(ref, i);
    const b = curSide.values ? curSide.values(i) : sampleColumn(cur, i);
    if (a.length < 2 || b.length < 2) return 'fewer than 2 valid values on one side';
    switch (test) {
      case 'ks': {
        const r = stats.ks2(a, b);
        return { score: r.pValue, statistic: r.statistic };
      }
      case 'cramer_von_mises': {
        const r = stats.cvm2(a, b);
        return { score: r.pValue, statistic: r.statistic };
      }
      case 'anderson': {
        const r = stats.andersonKsamp([a, b]);
        return { score: r.pValue, statistic: r.statistic };
      }
      case 'wasserstein': {
        const d = stats.wassersteinNormed(a, b);
        return { score: d, statistic: d };
      }
      default: {
        const d = stats.energyDistance(a, b);
        return { score: d, statistic: d };
      }
    }
  }
  const counts = alignedCounts(spec, ref.columns[i]!, cur.columns[i]!);
  const nRef = counts.ref.reduce((x, y) => x + y, 0);
  const nCur = counts.cur.reduce((x, y) => x + y, 0);
  if (nRef === 0 || nCur === 0) return 'no valid values on one side';
  switch (test) {
    case 'chisquare': {
      const keep = counts.ref.map((_, j) => counts.ref[j]! + counts.cur[j]! > 0);
      const table = [counts.ref.filter((_, j) => keep[j]), counts.cur.filter((_, j) => keep[j])];
      if (table[0]!.length < 2) return { score: 1, statistic: 0 };
      const r = stats.chi2Contingency(table);
      return { score: r.pValue, statistic: r.statistic };
    }
    case 'z':
    case 'fisher': {
      // The share of the reference's first category; anything else (incl. new categories) is "not it".
      // For a two-valued numeric column that is its first non-empty bin: the underflow bin is empty
      // in the reference by construction, and comparing it would never detect anything.
      const j = Math.max(0, counts.ref.findIndex((n) => n > 0));
      const a = counts.ref[j] ?? 0;
      const b = counts.cur[j] ?? 0;
      if (test === 'z') {
        const r = stats.twoProportionZ(a, nRef, b, nCur);
        return { score: r.pValue, statistic: r.statistic };
      }
      const r = stats.fisherExact([
        [a, nRef - a],
        [b, nCur - b],
      ]);
      return { score: r.pValue, statistic: r.statistic };
    }
    case 'psi': {
      const d = stats.psi(counts.ref, counts.cur);
      return { score: d, statistic: d };
    }
    case 'kl': {
      const d = stats.kl(counts.cur, counts.ref);
      return { score: d, statistic: d };
    }
    case 'jensenshannon': {
      const d = stats.jensenShannon(counts.ref, counts.cur);
      return { score: d, statistic: d };
    }
    case 'hellinger': {
      const d = stats.hellinger(counts.ref, counts.cur);
      return { score: d, statistic: d };
    }
    default: {
      const d = stats.totalVariation(counts.ref, counts.cur);
      return { score: d, statistic: d };
    }
  }
}

/**
 * Compares a window's profile with the reference profile, column by column, with the configured or
 * default test, and decides dataset drift from the share of drifted features. Pure: same inputs, same report.
 */
export function evaluateDrift(schema: ProfileSchema, ref: DriftSide | DatasetProfile, cur: DriftSide | DatasetProfile, config: DriftConfig = {}): DriftReport {
  const refSide: DriftSide = 'profile' in ref ? ref : { profile: ref };
  const curSide: DriftSide = 'profile' in cur ? cur : { profile: cur };
  const reference = refSide.profile;
  const current = curSide.profile;
  const columns: ColumnDrift[] = schema.columns.map((spec, i) => {
    const override = config.columns?.[spec.name] ?? {};
    const test = override.test ?? defaultTest(spec.kind, spec.uniqueCount ?? spec.categories?.length ?? Infinity, reference.rows);
    const def = DRIFT_TESTS[test];
    const threshold = override.threshold ?? def.threshold;
    const base = {
      column: spec.name,
      role: spec.role,
      kind: spec.kind,
      test,
      scoreKind: def.kind,
      threshold,
      referenceRows: reference.rows,
      currentRows: current.rows,
    };
    const r = runTest(test, spec, i, refSide, curSide);
    if (typeof r === 'string') return { ...base, score: NaN, statistic: NaN, drift: false, skipped: r };
    const drift = def.kind === 'p_value' ? r.score < threshold : r.score >= threshold;
    return { ...base, score: r.score, statistic: r.statistic, drift };
  });
  const features = columns.filter((c) => c.role === 'feature' && !c.skipped);
  const driftShare = features.length ? features.filter((c) => c.drift).length / features.length : 0;
  const datasetDriftShare = config.datasetDriftShare ?? 0.5;
  return {
    columns,
    driftShare,
    datasetDrift: features.length > 0 && driftShare >= datasetDriftShare,
    datasetDriftShare,
    predictionDrift: columns.some((c) => c.role === 'prediction' && c.drift),
  };
}
