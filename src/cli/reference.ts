import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { formatOf } from '../monitoring/index.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

const CONTENT_TYPES = { csv: 'text/csv', json: 'application/json', parquet: 'application/vnd.apache.parquet' } as const;

/** `warden reference …` and `warden monitor windows`: monitoring from the command line. */
export function registerReference(program: Command): void {
  const ref = program.command('reference').description('register and inspect monitoring references');
  ref
    .command('set <model> <version>')
    .description('profile reference data for a model version (number, alias or latest) and start monitoring it')
    .option('--file <file>', 'reference data: .csv, .json (rows) or .parquet')
    .option('--since <time>', 'use logged traffic from this time (epoch ms or ISO-8601) instead of a file')
    .option('--until <time>', 'end of the logged traffic range')
    .option('--config <file>', 'monitoring config JSON: window, drift, quality, categorical, numeric, columns …')
    .action(async (model: string, version: string, o: { file?: string; since?: string; until?: string; config?: string }, cmd: Command) => {
      const c = clientFor(cmd);
      let config: unknown;
      if (o.config) {
        const text = await readFile(o.config, 'utf8').catch((e: Error) => {
          throw new CliError(`cannot read ${o.config}: ${e.message}`, 2);
        });
        try {
          config = JSON.parse(text);
        } catch (e) {
          throw new CliError(`${o.config} is not valid JSON: ${(e as Error).message}`, 2);
        }
      }
      const url = `/api/v1/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(version)}/reference`;
      let res: { columns: { name: string; kind: string; role: string }[]; source: Record<string, unknown>; version: number };
      if (o.file) {
        const format = formatOf(o.file);
        if (!format) throw new CliError(`${o.file}: use a .csv, .json or .parquet file`, 2);
        const bytes = await readFile(o.file).catch((e: Error) => {
          throw new CliError(`cannot read ${o.file}: ${e.message}`, 2);
        });
        const headers: Record<string, string> = { 'content-type': CONTENT_TYPES[format], 'x-warden-filename': path.basename(o.file) };
        if (config !== undefined) headers['x-warden-monitoring'] = JSON.stringify(config);
        res = await c.request('PUT', url, new Uint8Array(bytes), headers);
      } else if (o.since && o.until) {
        res = await c.request('PUT', url, { traffic: { since: o.since, until: o.until }, ...(config !== undefined ? { config } : {}) });
      } else {
        throw new CliError('give --file, or --since and --until for logged traffic', 2);
      }
      print(cmd, res, () =>
        [`reference for ${model} v${res.version}: ${res.source.rows} rows`, table(res.columns, ['name', 'kind', 'role'])].join('\n'),
      );
    });

  const monitor = program.command('monitor').description('read monitoring verdicts');
  monitor
    .command('windows <model> <version>')
    .description('evaluated windows: rows, drifted columns, failed quality checks')
    .option('--since <time>', 'windows starting at or after')
    .option('--until <time>', 'windows starting before')
    .action(async (model: string, version: string, o: { since?: string; until?: string }, cmd: Command) => {
      const q = new URLSearchParams();
      if (o.since) q.set('since', o.since);
      if (o.until) q.set('until', o.until);
      const res = await clientFor(cmd).request<{
        windows: {
          windowStart: number;
          rows: number;
          drift: { datasetDrift: boolean; driftShare: number; columns: { column: string; drift: boolean }[] };
          quality: { checks: { column: string; metric: string; failed: boolean }[] };
        }[];
      }>('GET', `/api/v1/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(version)}/monitoring/windows?${q}`);
      print(cmd, res, () =>
        table(
          res.windows.map((w) => ({
            window: new Date(w.windowStart).toISOString(),
            rows: w.rows,
            dataset: w.drift.datasetDrift ? 'DRIFT' : 'ok',
            share: `${(100 * w.drift.driftShare).toFixed(0)}%`,
            drifted: w.drift.columns.filter((c) => c.drift).map((c) => c.column).join(' '),
            quality: w.quality.checks.filter((c) => c.failed).map((c) => `${c.column}:${c.metric}`).join(' '),
          })),
          ['window', 'rows', 'dataset', 'share', 'drifted', 'quality'],
        ),
      );
    });
}
