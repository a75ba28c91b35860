import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { meanVectorDistance } from '../../../src/monitoring/embeddings/index.ts';
import { fromJson, relativeError } from './synthetic.ts';

// Reference values: test/fixtures/embeddings/make_fixtures.py (scipy.spatial.distance.cosine / .euclidean of means).
const fixture = JSON.parse(readFileSync(new URL('../../fixtures/embeddings/reference.json', import.meta.url), 'utf8'));

describe('meanVectorDistance', () => {
  it('matches scipy cosine distance and euclidean distance of the mean vectors', () => {
    const r = meanVectorDistance(fromJson(fixture.mmd.ref), fromJson(fixture.mmd.cur));
    expect(relativeError(r.cosine, fixture.meanDistance.cosine)).toBeLessThan(1e-12);
    expect(relativeError(r.euclidean, fixture.meanDistance.euclidean)).toBeLessThan(1e-12);
  });

  it('is 0 for equal means, 2 (cosine) for opposite ones and NaN (cosine) for a zero mean', () => {
    const set = (data: number[]) => ({ rows: data.length / 2, dim: 2, data: Float64Array.from(data) });
    expect(meanVectorDistance(set([1, 2, 3, 4]), set([2, 3]))).toEqual({ cosine: 0, euclidean: 0 });
    expect(meanVectorDistance(set([1, 1]), set([-1, -1])).cosine).toBeCloseTo(2, 15);
    const zero = meanVectorDistance(set([1, 1, -1, -1]), set([1, 0]));
    expect(zero.cosine).toBeNaN();
    expect(zero.euclidean).toBe(1);
  });

  it('rejects malformed input', () => {
    expect(() => meanVectorDistance({ rows: 2, dim: 2, data: new Float64Array(3) }, { rows: 1, dim: 2, data: new Float64Array(2) })).toThrow(/expected rows·dim/);
    expect(() => meanVectorDistance({ rows: 1, dim: 2, data: Float64Array.of(1, Number.NaN) }, { rows: 1, dim: 2, data: new Float64Array(2) })).toThrow(/finite/);
  });
});
