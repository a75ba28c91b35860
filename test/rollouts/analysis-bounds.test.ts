/**
 * The analysis' own bounds, checked by brute force: the time-uniform Bernoulli confidence sequence (agreement) and
 * the DKW band with alpha spent over looks (prediction distance) must hold at every look at once with probability
 * ≥ 1 − alpha. Seeded Monte Carlo under the null, peeking after every batch as the controller does.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/random.ts';
import { bernoulliConfidenceSequence, dkwRadius, predictionColumns } from '../../src/rollouts/index.ts';
import { ksStatisticSorted } from '../../src/monitoring/index.ts';

describe('analysis bounds', () => {
  it('the Bernoulli confidence sequence covers the true rate at every look in ≥ 95 % of runs', () => {
    const rand = mulberry32(7);
    for (const p of [0.5, 0.9, 0.99]) {
      let missed = 0;
      const runs = 400;
      for (let run = 0; run < runs; run++) {
        let s = 0;
        for (let n = 1; n <= 3000; n++) {
          if (rand() < p) s++;
          if (n % 50 === 0) {
            const cs = bernoulliConfidenceSequence(s, n, 0.05);
            if (cs.lower > p || cs.upper < p) {
              missed++;
              break;
            }
          }
        }
      }
      // 3 binomial standard errors above 5 %.
      expect(missed / runs, `p=${p}`).toBeLessThanOrEqual(0.05 + 3 * Math.sqrt(0.05 * 0.95 / runs));
    }
  });

  it('narrows as rows arrive, and is the whole [0, 1] with none', () => {
    expect(bernoulliConfidenceSequence(0, 0, 0.05)).toMatchObject({ lower: 0, upper: 1 });
    const w = (n: number) => {
      const cs = bernoulliConfidenceSequence(n * 0.95, n, 0.05);
      return cs.upper - cs.lower;
    };
    expect(w(100)).toBeGreaterThan(w(1000));
    expect(w(1000)).toBeGreaterThan(w(10000));
    expect(w(10000)).toBeLessThan(0.05);
  });

  it('the DKW band over looks rarely calls two samples of one distribution apart', () => {
    const rand = mulberry32(11);
    const runs = 200;
    let falseAlarm = 0;
    for (let run = 0; run < runs; run++) {
      const a: number[] = [];
      const b: number[] = [];
      for (let look = 1; look <= 20; look++) {
        // A 10 % canary: the candidate side gets a ninth of the stable side's rows.
        for (let i = 0; i < 270; i++) a.push(rand());
        for (let i = 0; i < 30; i++) b.push(rand());
        const d = ksStatisticSorted(Float64Array.from(a).sort(), Float64Array.from(b).sort());
        if (d - dkwRadius(a.length, 0.05, look) - dkwRadius(b.length, 0.05, look) > 0) {
          falseAlarm++;
          break;
        }
      }
    }
    expect(falseAlarm / runs).toBeLessThanOrEqual(0.05);
  });

  it('the DKW band still finds a real shift', () => {
    const rand = mulberry32(3);
    const a = Float64Array.from({ length: 2000 }, () => rand()).sort();
    const b = Float64Array.from({ length: 2000 }, () => rand() * 0.5).sort();
    const d = ksStatisticSorted(a, b);
    expect(d - dkwRadius(2000, 0.05, 10) * 2).toBeGreaterThan(0.2);
  });

  it('compares a class label and P(class 1) for classifiers, the value for regressors', () => {
    const cls = predictionColumns({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
      outputs: [
        { name: 'label', datatype: 'INT64', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] },
      ],
    });
    expect(cls).toEqual({ label: { output: 'label', column: 0, kind: 'label' }, numeric: { output: 'probabilities', column: 1, kind: 'probability' } });
    const reg = predictionColumns({ inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }], outputs: [{ name: 'variable', datatype: 'FP32', shape: [-1, 1] }] });
    expect(reg).toEqual({ numeric: { output: 'variable', column: 0, kind: 'value' } });
  });
});
