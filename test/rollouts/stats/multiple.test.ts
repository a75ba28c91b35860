// Holm and Benjamini–Hochberg adjusted p-values against statsmodels' multipletests (as reimplemented and,
// where statsmodels is installed, compared with it in test/fixtures/rollouts/make_fixtures.py).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { benjaminiHochberg, holm } from '../../../src/rollouts/stats/index.ts';

const ref = JSON.parse(readFileSync(new URL('../../fixtures/rollouts/reference.json', import.meta.url), 'utf8')) as {
  multiple: { how: string; cases: { pValues: number[]; holm: number[]; benjaminiHochberg: number[] }[] };
};

describe.each([
  ['holm', holm, 'holm'],
  ['benjaminiHochberg', benjaminiHochberg, 'benjaminiHochberg'],
] as const)('%s = statsmodels multipletests', (_name, adjust, key) => {
  it.each(ref.multiple.cases.map((c) => [JSON.stringify(c.pValues).slice(0, 60), c] as const))('%s', (_p, c) => {
    const out = adjust(c.pValues);
    expect(out).toHaveLength(c.pValues.length);
    out.forEach((v, i) => expect(Math.abs(v - c[key][i]!), `[${i}] ${v} vs ${c[key][i]}`).toBeLessThanOrEqual(1e-15));
  });
  it('keeps the input order, never lowers a p-value, caps at 1 and preserves the ranking', () => {
    const p = [0.04, 0.001, 0.3, 0.02, 0.9, 0.02];
    const out = adjust(p);
    out.forEach((v, i) => {
      expect(v).toBeGreaterThanOrEqual(p[i]!);
      expect(v).toBeLessThanOrEqual(1);
      for (let j = 0; j < p.length; j++) if (p[i]! < p[j]!) expect(v).toBeLessThanOrEqual(out[j]!);
    });
    expect(out[3]).toBe(out[5]); // ties get the same adjusted value
    expect(p).toEqual([0.04, 0.001, 0.3, 0.02, 0.9, 0.02]); // input untouched
  });
  it('empty and single inputs', () => {
    expect(adjust([])).toEqual([]);
    expect(adjust([0.03])).toEqual([0.03]);
  });
  it('refuses p-values outside [0, 1] with a RangeError', () => {
    expect(() => adjust([0.1, 1.2])).toThrow(new RangeError(`${_name}: pValues[1] must be in [0, 1], got 1.2`));
    expect(() => adjust([NaN])).toThrow(/pValues\[0\] must be in \[0, 1\], got NaN/);
    expect(() => adjust([-0.01, 0.5])).toThrow(RangeError);
  });
});

describe('Holm versus Benjamini–Hochberg', () => {
  it('BH is never more conservative than Holm, and Holm never more than Bonferroni', () => {
    for (const c of ref.multiple.cases) {
      const m = c.pValues.length;
      const h = holm(c.pValues);
      const b = benjaminiHochberg(c.pValues);
      c.pValues.forEach((p, i) => {
        expect(b[i]!).toBeLessThanOrEqual(h[i]! + 1e-15);
        expect(h[i]!).toBeLessThanOrEqual(Math.min(1, m * p) + 1e-15);
      });
    }
  });
  it('BH rejects more than Holm where many p-values sit just under α', () => {
    const p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216];
    expect(holm(p).filter((v) => v <= 0.05)).toHaveLength(1); // 0.01, then 9 × 0.008 = 0.072
    expect(benjaminiHochberg(p).filter((v) => v <= 0.05)).toHaveLength(2); // 0.01, 10/2 × 0.008 = 0.04
    const q = [0.01, 0.02, 0.03, 0.04, 0.05];
    holm(q).forEach((v, i) => expect(v).toBeCloseTo([0.05, 0.08, 0.09, 0.09, 0.09][i]!, 15)); // 5·0.01, 4·0.02, 3·0.03, then the running max
    expect(holm(q).filter((v) => v <= 0.05)).toHaveLength(1);
    expect(benjaminiHochberg(q).every((v) => Math.abs(v - 0.05) < 1e-15)).toBe(true); // all five at q = 0.05
  });
});
