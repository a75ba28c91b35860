import type { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { driftReportHtml, formatOf, offlineDriftReport, readTable, toColumnar, type DriftConfig, type OfflineReport } from '../monitoring/index.ts';
import { CliError, table } from './output.ts';

interface DriftFlags {
  reference: string;
  current: string;
  columns?: string;
  categorical?: string;
  numeric?: string;
  test?: string[];
  embedding?: string[];
  multivariate?: boolean;
  datasetShare?: string;
  jsonOut?: string;
  html?: string;
  quiet?: boolean;
}

const list = (s?: string) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined);

async function load(file: string, what: string) {
  const format = formatOf(file);
  if (!format) throw new CliError(`${what} ${file}: use a .csv, .json or .parquet file`, 2);
  const bytes = await readFile(file).catch((e: Error) => {
    throw new CliError(`cannot read ${what} ${file}: ${e.message}`, 2);
  });
  return toColumnar(await readTable(bytes, format));
}

function fmt(x: number): string {
  return Number.isFinite(x) ? Number(x.toPrecision(4)).toString() : '–';
}

/** Prints the per-column table and the dataset verdict. */
export function driftTable(r: OfflineReport): string {
  const rows = r.drift.columns.map((c) => ({
    column: c.column,
    kind: c.kind,
    test: c.test,
    score: fmt(c.score),
    threshold: `${c.scoreKind === 'p_value' ? 'p<' : '≥'}${fmt(c.threshold)}`,
    drift: c.skipped ? `skipped (${c.skipped})` : c.drift ? 'DRIFT' : 'no',
  }));
  const failed = r.quality.checks.filter((q) => q.failed);
  const vectors = [
    ...(r.embeddings ?? []).map(
      (e) =>
        `embedding ${e.name} (dim ${e.dim}): ${e.drift ? 'DRIFT' : 'no drift'} — domain classifier AUC ${fmt(e.domainClassifierAuc)}, MMD² ${fmt(e.mmd2)} (p ${fmt(e.mmdPValue)}), drifted components ${fmt(100 * e.driftedComponentsShare)}%, mean-vector cosine distance ${fmt(e.meanCosineDistance)}`,
    ),
    ...(r.multivariate
      ? [
          `multivariate (PCA reconstruction, ${r.multivariate.columns.length} columns): error ${fmt(r.multivariate.error)} vs band [${fmt(r.multivariate.lower)}, ${fmt(r.multivariate.upper)}] — ${r.multivariate.alert ? 'DRIFT' : 'no drift'}`,
        ]
      : []),
  ];
  return [
    table(rows, ['column', 'kind', 'test', 'score', 'threshold', 'drift']),
    ...(vectors.length ? ['', ...vectors] : []),
    '',
    `${r.drift.datasetDrift ? 'DATASET DRIFT' : 'no dataset drift'}: ${(100 * r.drift.driftShare).toFixed(0)}% of features drifted (threshold ${(100 * r.drift.datasetDriftShare).toFixed(0)}%)`,
    failed.length ? `data quality: ${failed.map((q) => `${q.column} ${q.metric}=${fmt(q.value)}`).join(', ')}` : 'data quality: all checks passed',
  ].join('\n');
}

/** `warden drift`: the offline drift report between two files. */
export function registerDrift(program: Command): void {
  program
    .command('drift')
    .description('compare current data with a reference: drift per column, dataset drift, data quality')
    .requiredOption('--reference <file>', 'reference data (.csv, .json or .parquet)')
    .requiredOption('--current <file>', 'current data (same columns)')
    .option('--columns <a,b>', 'columns to compare (default: all columns of the reference)')
    .option('--categorical <a,b>', 'treat these columns as categorical')
    .option('--numeric <a,b>', 'treat these columns as numeric')
    .option('--test <column=test[:threshold]>', 'override a column\'s test, e.g. temp=ks:0.01 (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--embedding <name=c1,c2,…>', 'treat these numeric columns as one vector and test embedding drift (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--multivariate', 'add PCA reconstruction drift over the numeric columns')
    .option('--dataset-share <share>', 'dataset drift when this share of features drifts', '0.5')
    .option('--json-out <file>', 'write the full report as JSON')
    .option('--html <file>', 'write a self-contained HTML report')
    .option('-q, --quiet', 'no progress on stderr')
    .action(async (o: DriftFlags) => {
      const progress = o.quiet ? undefined : (m: string) => process.stderr.write(`${m}\n`);
      const drift: DriftConfig = { datasetDriftShare: Number(o.datasetShare) };
      for (const t of o.test ?? []) {
        const m = /^([^=]+)=([a-z_]+)(?::([0-9.eE+-]+))?$/.exec(t);
        if (!m) throw new CliError(`--test ${t}: use column=test or column=test:threshold`, 2);
        drift.columns ??= {};
        drift.columns[m[1]!] = { test: m[2] as never, ...(m[3] !== undefined ? { threshold: Number(m[3]) } : {}) };
      }
      const embeddings: Record<string, string[]> = {};
      for (const e of o.embedding ?? []) {
        const m = /^([^=]+)=(.+)$/.exec(e);
        if (!m) throw new CliError(`--embedding ${e}: use name=col1,col2,…`, 2);
        embeddings[m[1]!] = list(m[2])!;
      }
      progress?.(`reading ${o.reference}`);
      const ref = await load(o.reference, 'reference');
      progress?.(`reading ${o.current}`);
      const cur = await load(o.current, 'current');
      const started = Date.now();
      const report = offlineDriftReport(ref, cur, {
        ...(list(o.columns) ? { columns: list(o.columns)! } : {}),
        ...(list(o.categorical) ? { categorical: list(o.categorical)! } : {}),
        ...(list(o.numeric) ? { numeric: list(o.numeric)! } : {}),
        drift,
        ...(Object.keys(embeddings).length ? { embeddings } : {}),
        ...(o.multivariate ? { multivariate: {} } : {}),
        ...(progress ? { onProgress: progress } : {}),
      });
      progress?.(`done in ${((Date.now() - started) / 1000).toFixed(2)} s`);
      process.stdout.write(`${driftTable(report)}\n`);
      if (o.jsonOut) await writeFile(o.jsonOut, JSON.stringify(report, null, 2));
      if (o.html) await writeFile(o.html, driftReportHtml(report, `Drift: ${o.current} vs ${o.reference}`));
      if (o.jsonOut || o.html) progress?.(`wrote ${[o.jsonOut, o.html].filter(Boolean).join(' and ')}`);
    });
}
