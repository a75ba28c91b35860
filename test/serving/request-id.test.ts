import { describe, expect, it } from 'vitest';
import { requestIdFrom, timeOrderedId } from '../../src/serving/index.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids', () => {
  it('are UUID version 7 with the RFC variant and the current Unix milliseconds', () => {
    const before = Date.now();
    const id = timeOrderedId();
    const after = Date.now();
    expect(id).toMatch(V7);
    const ms = parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    // A burst past 4,096 ids in a millisecond runs the clock ahead; one id cannot.
    expect(ms).toBeLessThanOrEqual(after + 1);
  });

  it('sort in the order they were made, and never repeat, even within one millisecond', () => {
    // 20,000 ids take a few ms: many share a millisecond, some overflow the 12-bit counter.
    const ids = Array.from({ length: 20_000 }, () => timeOrderedId());
    expect(new Set(ids).size).toBe(ids.length);
    const sorted = [...ids].sort();
    expect(sorted).toEqual(ids);
    for (const id of ids) expect(id).toMatch(V7);
  });

  it("honour a caller's printable x-request-id and replace anything else", () => {
    expect(requestIdFrom('order-42')).toBe('order-42');
    for (const bad of [undefined, '', 'has space', 'x'.repeat(129), ['a'], 'é']) expect(requestIdFrom(bad)).toMatch(V7);
  });
});
