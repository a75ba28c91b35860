// The offline drift report (`warden drift`) on the UCI bike-sharing table: 2011 against itself, against
// January 2012, and with a column subset; the sample-based tests use every value; the HTML report is
// self-contained and holds aggregates only. Plus the monitoring config's errors, which name the bad key.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  driftReportHtml,
  offlineDriftReport,
  parseMonitoringConfig,
  tableFromCsv,
  toColumnar,
  type ColumnarTable,
  type OfflineReport,
} from '../../src/monitoring/index.ts';
import * as stats from '../../src/monitoring/drift/stats/index.ts';

const csv = readFileSync(new URL('../../data/bike-sharing/hour.csv', import.meta.url), 'utf8');
const bikes = tableFromCsv(csv);
const at = (name: string) => bikes.names.indexOf(name);
const where = (keep: (row: unknown[]) => boolean): ColumnarTable => toColumnar({ names: bikes.names, rows: bikes.rows.filter(keep) });
const y2011 = where((r) => r[at('yr')] === 0);
const jan2012 = where((r) => r[at('yr')] === 1 && r[at('mnth')] === 1);
const y2012 = where((r) => r[at('yr')] === 1);

const values = (t: ColumnarTable, name: string) => t.columns[t.names.indexOf(name)] as Float64Array;
const column = (r: OfflineReport, name: string) => r.drift.columns.find((c) => c.column === name)!;

describe('toColumnar', () => {
  it('packs all-number columns into Float64Array and keeps the rest as values', () => {
    expect(y2011.rows).toBe(8645);
    expect(jan2012.rows).toBe(741); // the table lacks a few hours
    expect(values(y2011, 'temp')).toBeInstanceOf(Float64Array);
    expect(y2011.columns[at('dteday')]).toBeInstanceOf(Array);
    const t = toColumnar({ names: ['n', 's'], rows: [[1, 'a'], [null, 2]] });
    expect(Array.from(t.columns[0] as Float64Array)).toEqual([1, NaN]);
    expect(t.columns[1]).toEqual(['a', 2]);
  });
});

describe('offlineDriftReport', () => {
  const same = offlineDriftReport(y2011, y2011);
  const jan = offlineDriftReport(y2011, jan2012);

  it('finds no drift anywhere when 2011 is compared with itself', () => {
    expect(same.reference.rows).toBe(8645);
    expect(same.current.rows).toBe(8645);
    expect(same.drift.columns.map((c) => c.column)).toEqual(bikes.names);
    for (const c of same.drift.columns) {
      expect(c.drift, c.column).toBe(false);
      expect(c.score, c.column).toBe(0);
      expect(c.skipped).toBeUndefined();
    }
    expect(same.drift).toMatchObject({ driftShare: 0, datasetDrift: false, predictionDrift: false });
    expect(same.quality.failed).toBe(0);
  });

  it('uses distances for a reference above 1,000 rows: normed Wasserstein for numbers, Jensen–Shannon for the rest', () => {
    const tests = Object.fromEntries(same.drift.columns.map((c) => [c.column, c.test]));
    expect(tests).toMatchObject({ temp: 'wasserstein', atemp: 'wasserstein', hum: 'wasserstein', cnt: 'wasserstein', hr: 'wasserstein' });
    expect(tests).toMatchObject({ season: 'jensenshannon', weathersit: 'jensenshannon', dteday: 'jensenshannon', yr: 'jensenshannon' });
  });

  it('finds temperature drift between 2011 and January 2012', () => {
    for (const name of ['temp', 'atemp']) {
      expect(column(jan, name)).toMatchObject({ test: 'wasserstein', drift: true });
      expect(column(jan, name).score).toBeGreaterThan(1);
    }
    expect(column(jan, 'season').drift).toBe(true);
    for (const name of ['hr', 'weekday', 'workingday', 'weathersit']) expect(column(jan, name).drift, name).toBe(false);
    expect(jan.drift.datasetDrift).toBe(true);
    expect(jan.drift.driftShare).toBeGreaterThanOrEqual(0.5);
  });

  it('runs the sample tests on every value of both tables', () => {
    for (const name of ['temp', 'atemp', 'hum', 'cnt']) {
      expect(column(jan, name).score).toBe(stats.wassersteinNormed(values(y2011, name), values(jan2012, name)));
    }
    expect(jan.schema.sampleSize).toBe(0);
    const ks = offlineDriftReport(y2011, jan2012, { columns: ['hum'], drift: { columns: { hum: { test: 'ks' } } } });
    const expected = stats.ks2(values(y2011, 'hum'), values(jan2012, 'hum'));
    expect(column(ks, 'hum')).toMatchObject({ test: 'ks', score: expected.pValue, statistic: expected.statistic });
  });

  it('reports only the columns asked for, in that order', () => {
    const r = offlineDriftReport(y2011, y2012, { columns: ['hum', 'temp', 'season'] });
    expect(r.drift.columns.map((c) => c.column)).toEqual(['hum', 'temp', 'season']);
    expect(r.schema.columns.map((c) => c.name)).toEqual(['hum', 'temp', 'season']);
    expect(r.histograms.map((h) => h.column)).toEqual(['hum', 'temp', 'season']);
    expect(new Set(r.quality.checks.map((q) => q.column))).toEqual(new Set(['hum', 'temp', 'season']));
    expect(column(r, 'hum').score).toBe(column(offlineDriftReport(y2011, y2012), 'hum').score);
  });

  it('marks prediction columns and decides prediction drift from them', () => {
    const r = offlineDriftReport(y2011, y2012, { columns: ['temp', 'cnt'], predictionColumns: ['cnt'] });
    expect(column(r, 'cnt')).toMatchObject({ role: 'prediction', drift: true });
    expect(r.drift.predictionDrift).toBe(true);
    expect(r.drift.driftShare).toBe(0);
  });

  it('refuses unknown columns and bad drift configs', () => {
    expect(() => offlineDriftReport(y2011, jan2012, { columns: ['temp', 'rain'] })).toThrow(/column rain is not in the reference/);
    const cur = toColumnar({ names: ['temp'], rows: [[0.1], [0.2]] });
    expect(() => offlineDriftReport(y2011, cur, { columns: ['temp', 'hum'] })).toThrow(/column hum is not in the current data/);
    expect(() => offlineDriftReport(y2011, jan2012, { columns: ['season'], drift: { columns: { season: { test: 'ks' } } } })).toThrow(/needs a numeric column/);
  });

  it('treats blanks in a numeric column as missing', () => {
    const rows = bikes.rows.filter((r) => r[at('yr')] === 1).map((r, i) => (i % 10 === 0 ? r.map((v, j) => (j === at('temp') ? null : v)) : r));
    const r = offlineDriftReport(y2011, toColumnar({ names: bikes.names, rows }), { columns: ['temp'] });
    const completeness = r.quality.checks.find((q) => q.metric === 'completeness')!;
    expect(completeness.value).toBeCloseTo(0.9, 3);
    expect(completeness.failed).toBe(true);
    expect(r.quality.checks.find((q) => q.metric === 'non_finite_share')!.value).toBe(0);
  });

  it('reports progress', () => {
    const messages: string[] = [];
    offlineDriftReport(y2011, jan2012, { columns: ['temp'], onProgress: (m) => messages.push(m) });
    expect(messages[0]).toMatch(/choosing bins and categories for 1 columns/);
    expect(messages.at(-1)).toBe('running drift tests');
  });
});

describe('driftReportHtml', () => {
  const report = offlineDriftReport(y2011, y2012);
  const html = driftReportHtml(report);

  it('is self-contained: no scripts, no links, one inline SVG per column', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/https?:/i);
    expect(html).not.toMatch(/\b(src|href)=/i);
    expect(html.match(/<svg /g)).toHaveLength(report.drift.columns.length);
    expect(html).toContain('No dataset drift');
  });

  it('holds aggregates, not rows: bounded size and no run of row values', () => {
    expect(report.reference.rows + report.current.rows).toBe(17379);
    expect(html.length).toBeLessThan(200_000);
    expect(html).not.toContain('0.2879,0.81');
    const lines = csv.trim().split('\n').slice(1);
    let seed = 17;
    for (let k = 0; k < 50; k++) {
      seed = (seed * 48271) % 2147483647;
      const cells = lines[seed % lines.length]!.split(',');
      // temp,atemp,hum,windspeed as they sit in the CSV, and the full line.
      expect(html).not.toContain(cells.slice(10, 14).join(','));
      expect(html).not.toContain(cells.slice(11, 13).join(','));
      expect(html).not.toContain(lines[seed % lines.length]!);
    }
  });

  it('escapes what it prints', () => {
    const titled = driftReportHtml(report, '<img onerror=x> & co');
    expect(titled).toContain('&lt;img onerror=x&gt; &amp; co');
    expect(titled).not.toContain('<img');
  });

  it('lists failed data-quality checks', () => {
    const jan = driftReportHtml(offlineDriftReport(y2011, jan2012));
    expect(jan).toContain('Dataset drift');
    expect(jan).toContain('new_category_share');
    expect(driftReportHtml(offlineDriftReport(y2011, y2011))).toContain('All data-quality checks passed.');
  });
});

describe('parseMonitoringConfig', () => {
  const error = (raw: unknown) => {
    try {
      parseMonitoringConfig(raw);
    } catch (e) {
      expect(e).toMatchObject({ code: 'WARDEN_BAD_REQUEST', status: 400 });
      return (e as Error).message;
    }
    throw new Error('expected the config to be refused');
  };

  it('accepts nothing (defaults) and a full config', () => {
    expect(parseMonitoringConfig(undefined)).toEqual({});
    expect(parseMonitoringConfig(null)).toEqual({});
    const full = {
      window: { kind: 'time', sizeMs: 3_600_000 },
      drift: { columns: { temp: { test: 'psi', threshold: 0.2 } }, datasetDriftShare: 0.3 },
      quality: { completeness: 0.9, outOfRange: 0.05 },
      columns: ['temp', 'hum'],
      categorical: ['season'],
      numeric: ['hr'],
      bins: 30,
      sampleSize: 1000,
    };
    expect(parseMonitoringConfig(full)).toEqual(full);
    expect(parseMonitoringConfig({ window: { kind: 'count', size: 500 } })).toEqual({ window: { kind: 'count', size: 500 } });
  });

  it('names an unknown key, at the root or nested', () => {
    expect(error({ windw: { kind: 'time', sizeMs: 60_000 } })).toMatch(/unknown key windw/);
    expect(error({ quality: { completness: 0.9 } })).toMatch(/unknown key quality\.completness/);
    expect(error({ drift: { columns: { temp: { tets: 'ks' } } } })).toMatch(/unknown key drift\.columns\.temp\.tets/);
  });

  it('names the key of a bad value', () => {
    expect(error({ drift: { columns: { temp: { test: 'ttest' } } } })).toMatch(/drift\.columns\.temp\.test: /);
    expect(error({ drift: { datasetDriftShare: 0 } })).toMatch(/drift\.datasetDriftShare: /);
    expect(error({ quality: { completeness: 2 } })).toMatch(/quality\.completeness: /);
    expect(error({ bins: 1 })).toMatch(/bins: /);
    expect(error({ sampleSize: 10 })).toMatch(/sampleSize: /);
    expect(error({ columns: ['temp', 3] })).toMatch(/columns\.1: /);
    expect(error({ window: { kind: 'time', sizeMs: 10 } })).toMatch(/window/);
    expect(error('yes')).toMatch(/\(root\): /);
  });
});
