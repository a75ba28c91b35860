// Sample size and minimum detectable effect against scipy.stats.norm.ppf-based Python (the MDE found by
// root finding there, not by the closed form), the normal quantile against scipy.special.ndtri, and a
// seeded simulation showing a z-test at the planned size has the planned power.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../../src/random.ts';
import { minimumDetectableEffect, requiredSampleSizePerArm } from '../../../src/rollouts/stats/index.ts';
import { normalQuantile } from '../../../src/rollouts/stats/power.ts';

type Num = number | 'Infinity' | '-Infinity' | 'NaN';
const num = (x: Num): number => (typeof x === 'number' ? x : Number(x));

interface Design {
  kind: 'sd' | 'rate';
  value: number;
  alpha: number;
  power: number;
}
const ref = JSON.parse(readFileSync(new URL('../../fixtures/rollouts/reference.json', import.meta.url), 'utf8')) as {
  sampleSize: { cases: (Design & { mde: number; nRaw: Num; nPerArm: number })[] };
  minimumDetectableEffect: { cases: (Design & { nPerArm: number; mde: Num })[] };
  normalQuantile: { cases: { p: number; ppf: Num }[] };
};

const metric = (c: Design) => (c.kind === 'sd' ? { sd: c.value } : { baselineRate: c.value });

describe('normalQuantile = scipy.special.ndtri to a few ulps (AS241 against Cephes)', () => {
  it.each(ref.normalQuantile.cases.map((c) => [c.p, c] as const))('p = %s', (_p, c) => {
    const e = num(c.ppf);
    expect(Math.abs(normalQuantile(c.p) - e), `${normalQuantile(c.p)} vs ${e}`).toBeLessThanOrEqual(2e-15 * Math.abs(e)); // a few ulps
  });
  it('ends and outside', () => {
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
    expect(normalQuantile(1.5)).toBeNaN();
    expect(normalQuantile(NaN)).toBeNaN();
  });
});

describe('requiredSampleSizePerArm = ceil(z²·V/mde²) with scipy.stats.norm.ppf quantiles', () => {
  it.each(ref.sampleSize.cases.map((c) => [`${c.kind}=${c.value} mde=${c.mde} α=${c.alpha} power=${c.power}`, c] as const))('%s → %#', (_n, c) => {
    expect(requiredSampleSizePerArm({ ...metric(c), mde: c.mde, alpha: c.alpha, power: c.power })).toBe(c.nPerArm);
  });
  it('familiar values: 0.1 sd at α 0.05, power 0.8 needs 1,570 per arm; 10% → 12% needs 3,839 (unpooled variance)', () => {
    expect(requiredSampleSizePerArm({ sd: 1, mde: 0.1, alpha: 0.05, power: 0.8 })).toBe(1570);
    expect(requiredSampleSizePerArm({ baselineRate: 0.1, mde: 0.02, alpha: 0.05, power: 0.8 })).toBe(3839);
  });
});

describe('minimumDetectableEffect = root of the sample-size equation (scipy.optimize.brentq)', () => {
  it.each(ref.minimumDetectableEffect.cases.map((c) => [`${c.kind}=${c.value} n=${c.nPerArm} α=${c.alpha} power=${c.power}`, c] as const))('%s', (_n, c) => {
    const got = minimumDetectableEffect({ ...metric(c), nPerArm: c.nPerArm, alpha: c.alpha, power: c.power });
    const e = num(c.mde);
    if (!Number.isFinite(e)) expect(got).toBe(e);
    else expect(Math.abs(got - e), `${got} vs ${e}`).toBeLessThanOrEqual(1e-12 * e);
  });
  it('inverts requiredSampleSizePerArm: the MDE at n needs at most n, and a slightly smaller effect needs more', () => {
    for (const design of [{ sd: 2.5 }, { baselineRate: 0.03 }, { baselineRate: 0.6 }]) {
      for (const n of [100, 2345, 50000]) {
        const mde = minimumDetectableEffect({ ...design, nPerArm: n, alpha: 0.05, power: 0.8 });
        expect(requiredSampleSizePerArm({ ...design, mde: mde * (1 + 1e-9), alpha: 0.05, power: 0.8 })).toBeLessThanOrEqual(n);
        expect(requiredSampleSizePerArm({ ...design, mde: mde * 0.999, alpha: 0.05, power: 0.8 })).toBeGreaterThan(n);
      }
    }
  });
});

describe('a two-sided z-test at the planned size has the planned power (seeded simulation, 2,000 runs)', () => {
  const RUNS = 2000;
  const Z = 1.959963984540054; // Φ⁻¹(0.975)
  /** Binomial standard error of an estimated 0.8 from 2,000 runs is 0.009; allow 3 of them. */
  const TOL = 0.027;
  it('means: 0.2 sd, α 0.05, power 0.8', () => {
    const n = requiredSampleSizePerArm({ sd: 1, mde: 0.2, alpha: 0.05, power: 0.8 });
    const random = mulberry32(5);
    const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    let rejected = 0;
    for (let run = 0; run < RUNS; run++) {
      let sa = 0;
      let sb = 0;
      for (let i = 0; i < n; i++) {
        sa += normal();
        sb += 0.2 + normal();
      }
      if (Math.abs((sb - sa) / n / Math.sqrt(2 / n)) > Z) rejected++;
    }
    expect(Math.abs(rejected / RUNS - 0.8)).toBeLessThanOrEqual(TOL); // measured 0.8125
  });
  it('proportions: 10% → 13%, α 0.05, power 0.8 (unpooled z, the variance the formula assumes)', () => {
    const n = requiredSampleSizePerArm({ baselineRate: 0.1, mde: 0.03, alpha: 0.05, power: 0.8 });
    const random = mulberry32(6);
    let rejected = 0;
    for (let run = 0; run < RUNS; run++) {
      let sa = 0;
      let sb = 0;
      for (let i = 0; i < n; i++) {
        if (random() < 0.1) sa++;
        if (random() < 0.13) sb++;
      }
      const pa = sa / n;
      const pb = sb / n;
      if (Math.abs((pb - pa) / Math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / n)) > Z) rejected++;
    }
    expect(Math.abs(rejected / RUNS - 0.8)).toBeLessThanOrEqual(TOL); // measured 0.799
  });
});

describe('invalid designs throw a RangeError naming the problem', () => {
  it.each([
    [{ mde: 0.1, alpha: 0.05, power: 0.8 }, /give exactly one of baselineRate \(a proportion\) or sd \(a mean\)/],
    [{ sd: 1, baselineRate: 0.1, mde: 0.1, alpha: 0.05, power: 0.8 }, /give exactly one of/],
    [{ sd: 0, mde: 0.1, alpha: 0.05, power: 0.8 }, /sd must be a positive finite number, got 0/],
    [{ baselineRate: 1, mde: 0.1, alpha: 0.05, power: 0.8 }, /baselineRate must be in \(0, 1\), got 1/],
    [{ baselineRate: 0.95, mde: 0.1, alpha: 0.05, power: 0.8 }, /baselineRate \+ mde must be in \(0, 1\)/],
    [{ sd: 1, mde: 0, alpha: 0.05, power: 0.8 }, /mde must be a non-zero finite number, got 0/],
    [{ sd: 1, mde: 0.1, alpha: 0, power: 0.8 }, /alpha must be in \(0, 1\), got 0/],
    [{ sd: 1, mde: 0.1, alpha: 1, power: 0.8 }, /alpha must be in \(0, 1\), got 1/],
    [{ sd: 1, mde: 0.1, alpha: 0.05, power: 1 }, /power must be in \(0, 1\), got 1/],
    [{ sd: 1, mde: 0.1, alpha: 0.05, power: 0.02 }, /power \(0\.02\) must exceed alpha\/2 \(0\.025\)/],
  ])('requiredSampleSizePerArm(%j)', (o, message) => {
    expect(() => requiredSampleSizePerArm(o as Parameters<typeof requiredSampleSizePerArm>[0])).toThrow(RangeError);
    expect(() => requiredSampleSizePerArm(o as Parameters<typeof requiredSampleSizePerArm>[0])).toThrow(message);
  });
  it('minimumDetectableEffect', () => {
    expect(() => minimumDetectableEffect({ sd: 1, nPerArm: 0, alpha: 0.05, power: 0.8 })).toThrow(new RangeError('minimumDetectableEffect: nPerArm must be a positive finite number, got 0'));
    expect(() => minimumDetectableEffect({ nPerArm: 10, alpha: 0.05, power: 0.8 })).toThrow(/exactly one of/);
    expect(() => minimumDetectableEffect({ sd: 1, nPerArm: 10, alpha: 1.2, power: 0.8 })).toThrow(/alpha must be in \(0, 1\)/);
  });
});
