/**
 * @module monitoring/drift/stats
 *
 * The drift statistics, each equal to its SciPy counterpart (SciPy 1.17; fixtures in
 * test/fixtures/stats/scipy.json say which call produced each expected value, and the tests hold
 * statistics to 1e-6 relative and p-values to 1e-6 absolute). Sample tests take Float64Arrays,
 * sort each sample once and merge in one O(n) pass, so a million values per side costs a sort; a
 * NaN in a sample gives NaN, like SciPy's nan_policy='propagate'. Count-based functions take any
 * array-like of non-negative counts and normalise where SciPy does. docs/drift-statistics.md explains
 * what each measures, its p-value method, and why Warden prefers distances for large references.
 */

/** Two-sample Kolmogorov-Smirnov test (scipy.stats.ks_2samp, method='auto': exact up to 10,000 per side). */
export { ks2, KS_EXACT_MAX_N } from './ks.ts';
/** Two-sample Cramér-von Mises test (scipy.stats.cramervonmises_2samp, method='auto': exact up to 20 per side). */
export { cvm2, CVM_EXACT_MAX_N } from './cramer-von-mises.ts';
/** k-sample Anderson-Darling test (scipy.stats.anderson_ksamp, midrank; p-value capped to [0.001, 0.25]). */
export { andersonKsamp } from './anderson.ts';
/** χ² contingency, χ² goodness of fit, pooled two-proportion z and Fisher's exact test. */
export { chi2Contingency, chisquare, twoProportionZ, fisherExact } from './contingency.ts';
/** Wasserstein-1 and energy distances on samples or on weights over shared values, and Evidently's normed Wasserstein. */
export {
  wasserstein,
  wassersteinNormed,
  wassersteinFromWeights,
  energyDistance,
  energyDistanceFromWeights,
  WASSERSTEIN_STD_FLOOR,
} from './distances.ts';
/** PSI, Kullback-Leibler, Jensen-Shannon distance, Hellinger and total variation on counts over shared bins. */
export { psi, kl, jensenShannon, hellinger, totalVariation, PSI_EMPTY_BIN } from './divergences.ts';
