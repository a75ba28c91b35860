import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { bikeSharingCbpe, bikeTableMarkdown, type BikeTable } from './bike-sharing.ts';

const docs = readFileSync(new URL('../../../docs/performance.md', import.meta.url), 'utf8');

describe('CBPE on bike-sharing 2012 (docs/performance.md)', () => {
  let table: BikeTable;
  beforeAll(async () => {
    table = await bikeSharingCbpe();
  });

  it('uses the demo model trained on 2011 with its own busy threshold', () => {
    expect(table.threshold).toBe(108);
    expect(table.reference.rows).toBe(8645);
    expect(table.months.map((m) => m.rows).reduce((a, b) => a + b, 0)).toBe(17379 - 8645);
  });

  it('is exact on the reference it was calibrated on', () => {
    expect(Math.abs(table.reference.accuracyEstimated - table.reference.accuracyRealized)).toBeLessThan(0.005);
    expect(Math.abs(table.reference.busyEstimated - table.reference.busyRealized)).toBeLessThan(1e-9);
  });

  it('misses in 2012, when the share of busy hours itself shifts', () => {
    expect(table.meanAbsoluteError).toBeGreaterThan(0.05);
    const january = table.months[0];
    expect(january && january.busyRealized - january.busyEstimated).toBeGreaterThan(0.2);
  });

  it('matches the table in docs/performance.md line for line', () => {
    for (const line of bikeTableMarkdown(table)) expect(docs).toContain(line);
  });
});
