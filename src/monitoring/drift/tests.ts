import type { ColumnKind } from '../profile/index.ts';

/** Every drift test Warden runs, by the name used in config, API and reports. */
export const DRIFT_TESTS = {
  ks: { label: 'Kolmogorov–Smirnov', kind: 'p_value', input: 'sample', threshold: 0.05, scipy: 'scipy.stats.ks_2samp' },
  cramer_von_mises: { label: 'Cramér–von Mises', kind: 'p_value', input: 'sample', threshold: 0.05, scipy: 'scipy.stats.cramervonmises_2samp' },
  anderson: { label: 'Anderson–Darling k-sample', kind: 'p_value', input: 'sample', threshold: 0.05, scipy: 'scipy.stats.anderson_ksamp' },
  chisquare: { label: 'chi-squared (contingency)', kind: 'p_value', input: 'counts', threshold: 0.05, scipy: 'scipy.stats.chi2_contingency' },
  z: { label: 'two-proportion Z', kind: 'p_value', input: 'counts', threshold: 0.05, scipy: 'pooled two-proportion z (scipy.stats.norm)' },
  fisher: { label: 'Fisher exact', kind: 'p_value', input: 'counts', threshold: 0.05, scipy: 'scipy.stats.fisher_exact' },
  wasserstein: { label: 'Wasserstein (normed by reference std)', kind: 'distance', input: 'sample', threshold: 0.1, scipy: 'scipy.stats.wasserstein_distance / np.std(ref)' },
  energy: { label: 'energy distance', kind: 'distance', input: 'sample', threshold: 0.1, scipy: 'scipy.stats.energy_distance' },
  psi: { label: 'population stability index', kind: 'distance', input: 'counts', threshold: 0.1, scipy: 'numpy formula' },
  kl: { label: 'Kullback–Leibler divergence (natural log)', kind: 'distance', input: 'counts', threshold: 0.1, scipy: 'scipy.stats.entropy' },
  jensenshannon: { label: 'Jensen–Shannon distance (natural log)', kind: 'distance', input: 'counts', threshold: 0.1, scipy: 'scipy.spatial.distance.jensenshannon' },
  hellinger: { label: 'Hellinger distance', kind: 'distance', input: 'counts', threshold: 0.1, scipy: 'numpy formula' },
  tv: { label: 'total variation distance', kind: 'distance', input: 'counts', threshold: 0.1, scipy: 'numpy formula' },
} as const;

export type DriftTestName = keyof typeof DRIFT_TESTS;

export function isDriftTest(name: string): name is DriftTestName {
  return Object.hasOwn(DRIFT_TESTS, name);
}

/** Reference size at and below which the default is a p-value test (Evidently's documented rule). */
export const SMALL_REFERENCE_ROWS = 1000;

/**
 * The default test for a column, following Evidently's documented rule: with a reference of at most
 * 1,000 rows, KS (p < 0.05) for numeric columns with more than 5 unique values, chi-squared for
 * categorical columns with more than 2 values, otherwise the two-proportion Z-test; with a larger
 * reference, Wasserstein distance normed by the reference std (≥ 0.1) for numeric columns and
 * Jensen–Shannon distance (≥ 0.1) for the rest. Large references get distances because p-values of
 * any test go to zero for trivial shifts at large n (docs/drift-statistics.md shows an example).
 */
export function defaultTest(kind: ColumnKind, uniqueCount: number, referenceRows: number): DriftTestName {
  const numeric = kind === 'numeric' && uniqueCount > 5;
  if (referenceRows <= SMALL_REFERENCE_ROWS) {
    if (numeric) return 'ks';
    return uniqueCount > 2 ? 'chisquare' : 'z';
  }
  return numeric ? 'wasserstein' : 'jensenshannon';
}
