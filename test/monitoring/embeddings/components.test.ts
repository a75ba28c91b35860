import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { driftedComponentsShare } from '../../../src/monitoring/embeddings/index.ts';
import { fromJson, gaussianSet } from './synthetic.ts';

// Reference values: test/fixtures/embeddings/make_fixtures.py — scipy.stats.ks_2samp per column (method='auto').
const fixture = JSON.parse(readFileSync(new URL('../../fixtures/embeddings/reference.json', import.meta.url), 'utf8'));
const ref = fromJson(fixture.ks.ref);
const cur = fromJson(fixture.ks.cur);

describe('driftedComponentsShare', () => {
  it('matches the share and components scipy.stats.ks_2samp flags, without and with Bonferroni', () => {
    expect(driftedComponentsShare(ref, cur)).toEqual(fixture.ks.none);
    expect(driftedComponentsShare(ref, cur, { correction: 'bonferroni' })).toEqual(fixture.ks.bonferroni);
    expect(driftedComponentsShare(ref, cur, { alpha: fixture.ks.alpha, correction: 'none' })).toEqual(fixture.ks.none);
  });

  it('flags about alpha of the components under no drift, and Bonferroni about none', () => {
    const a = gaussianSet(300, 200, 1);
    const b = gaussianSet(300, 200, 2);
    expect(driftedComponentsShare(a, b).share).toBeLessThan(0.1);
    expect(driftedComponentsShare(a, b, { correction: 'bonferroni' }).share).toBeLessThanOrEqual(0.01);
  });

  it('rejects bad options', () => {
    expect(() => driftedComponentsShare(ref, cur, { alpha: 0 })).toThrow(/alpha/);
    expect(() => driftedComponentsShare(ref, cur, { correction: 'holm' as never })).toThrow(/correction/);
  });
});
