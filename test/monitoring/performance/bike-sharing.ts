// The CBPE check on bike-sharing that docs/performance.md reports: the built-in logistic trainer's busy/not-busy
// model (trained on 2011, label cnt > 109, the 2011 median), calibrated on all 2011 rows, then estimated month
// by month on 2012 and compared with the realized accuracy. Shared by bike-sharing.test.ts, which checks the
// docs table, and test/fixtures/performance/print-bike-table.ts, which prints it.
import { readFileSync } from 'node:fs';
import { BIKE_SHARING_CSV, bikeSharingDemoOptions, train } from '../../../src/lifecycle/index.ts';
import {
  calibrate,
  cbpeEstimate,
  classificationMetrics,
  fitCalibration,
} from '../../../src/monitoring/performance/index.ts';

/** One row of the docs table. */
export interface MonthRow {
  period: string;
  rows: number;
  busyRealized: number;
  busyEstimated: number;
  accuracyRealized: number;
  accuracyEstimated: number;
}

export interface BikeTable {
  threshold: number;
  reference: MonthRow;
  months: MonthRow[];
  /** Mean over the 2012 months of |estimated − realized accuracy|. */
  meanAbsoluteError: number;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Trains the demo classifier and computes the table; takes about a second. */
export async function bikeSharingCbpe(): Promise<BikeTable> {
  const model = await train(bikeSharingDemoOptions('logistic'));
  const threshold = model.threshold;
  if (threshold === undefined) throw new Error('the logistic demo model has no threshold');

  const [header, ...lines] = readFileSync(BIKE_SHARING_CSV, 'utf8').trim().split(/\r?\n/).map((l) => l.split(','));
  if (!header) throw new Error(`${BIKE_SHARING_CSV} is empty`);
  const col = (name: string): number => {
    const j = header.indexOf(name);
    if (j < 0) throw new Error(`${BIKE_SHARING_CSV} has no column ${name}`);
    return j;
  };
  const featureColumns = model.features.map((f) => col(f.name));
  const [yr, mnth, cnt] = [col('yr'), col('mnth'), col('cnt')];
  const k = featureColumns.length;

  const score = (rows: string[][]): { labels: Uint8Array; raw: Float32Array } => {
    const x = new Float32Array(rows.length * k);
    rows.forEach((row, i) => featureColumns.forEach((j, f) => (x[i * k + f] = Number(row[j]))));
    return { labels: Uint8Array.from(rows, (row) => (Number(row[cnt]) > threshold ? 1 : 0)), raw: model.predict(x) };
  };

  const reference = score(lines.filter((row) => row[yr] === '0'));
  const cal = fitCalibration(reference.labels, reference.raw);
  const evaluate = (period: string, rows: string[][]): MonthRow => {
    const { labels, raw } = score(rows);
    const calibrated = calibrate(cal, raw);
    const realized = classificationMetrics(labels, raw);
    return {
      period,
      rows: rows.length,
      busyRealized: realized.positiveRate,
      busyEstimated: calibrated.reduce((a, b) => a + b, 0) / calibrated.length,
      accuracyRealized: realized.accuracy,
      accuracyEstimated: cbpeEstimate(raw, calibrated).accuracy,
    };
  };

  const months = MONTHS.map((name, m) =>
    evaluate(`2012 ${name}`, lines.filter((row) => row[yr] === '1' && row[mnth] === String(m + 1))),
  );
  const errors = months.map((r) => Math.abs(r.accuracyEstimated - r.accuracyRealized));
  return {
    threshold,
    reference: evaluate('2011 (reference)', lines.filter((row) => row[yr] === '0')),
    months,
    meanAbsoluteError: errors.reduce((a, b) => a + b, 0) / errors.length,
  };
}

/** The markdown table docs/performance.md shows, one string per line. */
export function bikeTableMarkdown(table: BikeTable): string[] {
  const f = (x: number): string => x.toFixed(3);
  const line = (r: MonthRow): string =>
    `| ${r.period} | ${r.rows} | ${f(r.busyRealized)} | ${f(r.busyEstimated)} | ${f(r.accuracyRealized)} | ` +
    `${f(r.accuracyEstimated)} | ${f(r.accuracyEstimated - r.accuracyRealized)} |`;
  return [
    '| period | rows | busy share, realized | busy share, estimated (mean calibrated p) | accuracy, realized | accuracy, CBPE | estimate − realized |',
    '|---|---:|---:|---:|---:|---:|---:|',
    line(table.reference),
    ...table.months.map(line),
    `| **2012 mean absolute error** | | | | | | **${f(table.meanAbsoluteError)}** |`,
  ];
}
