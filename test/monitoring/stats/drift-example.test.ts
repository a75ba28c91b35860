// Recomputes the n = 8,645 rows of the worked example in docs/drift-statistics.md (numbers from
// test/fixtures/stats/drift_example.py, SciPy) with Warden's implementation.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cvm2, jensenShannon, ks2, wassersteinNormed } from '../../../src/monitoring/drift/stats/index.ts';
import { expectPValue, expectStatistic } from './scipy-fixtures.ts';

interface Row {
  n: number;
  ks_statistic: number;
  ks_pvalue: number;
  cvm_pvalue: number;
  wasserstein_normed: number;
  jensenshannon_30_bins: number;
  ref_counts_30_bins: number[];
  cur_counts_30_bins: number[];
}

const example = JSON.parse(readFileSync(new URL('../../fixtures/stats/drift-example.json', import.meta.url), 'utf8')) as {
  meta: { shift: number };
  rows: Row[];
  raw_grid: Row;
  dequantised_2011: number[];
};

function check(ref: Float64Array, row: Row): void {
  const cur = ref.map((v) => v + example.meta.shift);
  const ks = ks2(ref, cur);
  expect(ref.length).toBe(row.n);
  expectStatistic(ks.statistic, row.ks_statistic, 'KS D');
  expectPValue(ks.pValue, row.ks_pvalue, 'KS p');
  expectPValue(cvm2(ref, cur).pValue, row.cvm_pvalue, 'CvM p');
  expectStatistic(wassersteinNormed(ref, cur), row.wasserstein_normed, 'Wasserstein normed');
  expectStatistic(jensenShannon(row.ref_counts_30_bins, row.cur_counts_30_bins), row.jensenshannon_30_bins, 'JS');
}

describe('docs/drift-statistics.md worked example (bike-sharing temp, 2011, shifted by 0.005)', () => {
  it('de-quantised reference, n = 8,645: KS does not reject, Wasserstein normed ≈ 0.025', () => {
    const row = example.rows.find((r) => r.n === 8645)!;
    check(Float64Array.from(example.dequantised_2011), row);
    expect(row.ks_pvalue).toBeGreaterThan(0.05);
    expect(row.wasserstein_normed).toBeLessThan(0.1);
  });

  it('raw 0.02 grid from data/bike-sharing/hour.csv, n = 8,645', () => {
    const csv = readFileSync(new URL('../../../data/bike-sharing/hour.csv', import.meta.url), 'utf8').trim().split('\n');
    const header = csv[0]!.split(',');
    const yr = header.indexOf('yr');
    const temp = header.indexOf('temp');
    const values = csv
      .slice(1)
      .map((line) => line.split(','))
      .filter((cells) => cells[yr] === '0')
      .map((cells) => Number(cells[temp]));
    check(Float64Array.from(values), example.raw_grid);
  });

  it('the p-value falls with n while the distance stays put', () => {
    const ps = example.rows.map((r) => r.ks_pvalue);
    for (let i = 1; i < ps.length; i++) expect(ps[i]!).toBeLessThan(ps[i - 1]!);
    expect(ps.at(-1)!).toBeLessThan(1e-10);
    for (const r of example.rows) expect(r.wasserstein_normed).toBeCloseTo(0.025, 2);
  });
});
