import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { DatasetRecord } from '../storage/index.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

interface ExportFlags {
  out: string;
  version?: string[];
  since?: string;
  until?: string;
  source?: string;
  format?: string;
  segments?: string;
  features?: string;
  featureKey?: string[];
  fullNames?: boolean;
}

const list = (s: string | undefined) => (s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter(Boolean));
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

function timeFlag(raw: string | undefined, name: string): number | string | undefined {
  if (raw === undefined) return undefined;
  if (/^[0-9]+$/.test(raw)) return Number(raw);
  if (!Number.isFinite(Date.parse(raw))) throw new CliError(`--${name} must be epoch milliseconds or an ISO-8601 time, e.g. 2026-11-01T00:00:00Z`, 2);
  return raw;
}

/** `warden dataset export|list|show`: training sets from labelled production traffic. */
export function registerDataset(program: Command): void {
  const dataset = program.command('dataset').description('training sets from labelled predictions: export, list, show');

  dataset
    .command('export <model>')
    .description('stream the labelled predictions of a deployment to a CSV or Parquet file, recorded as lineage')
    .requiredOption('-o, --out <file>', 'file to write (.csv or .parquet); written as <file>.partial, renamed when complete')
    .option('--version <v...>', 'versions to export (default: every version of the model); repeat or separate with commas')
    .option('--since <time>', 'predictions at or after this time (epoch ms or ISO-8601)')
    .option('--until <time>', 'predictions before this time (epoch ms or ISO-8601)')
    .option('--source <sources>', 'label sources to keep, comma-separated: human, system, model (default: all)')
    .option('--format <format>', 'csv or parquet (default: from the file extension, else csv)')
    .option('--segments <features>', 'comma-separated features whose values fill the segment column (default: the reference config)')
    .option('--features <refs>', 'feature-store features joined to each row at its prediction time, point-in-time correct: comma-separated view:feature or view')
    .option('--feature-key <mapping...>', 'where a join key comes from, as joinKey=input (a model input), joinKey=key (the caller key) or joinKey=key:<RE2 pattern> (its first group); repeat for several (default: the input named as the join key)')
    .option('--full-names', 'name the joined feature columns view__feature')
    .action(async (model: string, o: ExportFlags, cmd: Command) => {
      const format = o.format ?? (/\.parquet$/i.test(o.out) ? 'parquet' : 'csv');
      if (format !== 'csv' && format !== 'parquet') throw new CliError(`--format must be csv or parquet, not ${JSON.stringify(format)}`, 2);
      const versions = o.version?.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
      if (versions?.some((v) => !/^[0-9]+$/.test(v))) throw new CliError('--version takes version numbers, e.g. --version 3,4', 2);
      const body: Record<string, unknown> = { model, format };
      if (versions?.length) body.versions = versions.map(Number);
      const since = timeFlag(o.since, 'since');
      if (since !== undefined) body.since = since;
      const until = timeFlag(o.until, 'until');
      if (until !== undefined) body.until = until;
      if (o.source) body.sources = list(o.source);
      if (o.segments) body.segments = list(o.segments);
      if (o.features) body.features = list(o.features);
      if (o.featureKey?.length) {
        if (!o.features) throw new CliError('--feature-key needs --features', 2);
        const keys: Record<string, string> = {};
        for (const m of o.featureKey) {
          const eq = m.indexOf('=');
          if (eq <= 0 || eq === m.length - 1) throw new CliError(`--feature-key takes joinKey=source (an input, key or key:<pattern>), not ${JSON.stringify(m)}`, 2);
          keys[m.slice(0, eq)] = m.slice(eq + 1);
        }
        body.featureKeys = keys;
      }
      if (o.fullNames) body.fullNames = true;

      const client = clientFor(cmd);
      const res = await client.open('POST', '/api/v1/datasets', body);
      const id = res.headers.get('x-warden-dataset-id');
      if (!res.body || !id) throw new CliError(`the server answered without a dataset (status ${res.status}); is ${client.base} a Warden server?`);
      const partial = `${o.out}.partial`;
      const hash = createHash('sha256');
      let bytes = 0;
      let rows = 0;
      const started = Date.now();
      const tick = setInterval(() => {
        process.stderr.write(`dataset ${id}: ${format === 'csv' ? `${Math.max(0, rows - 1).toLocaleString('en-US')} rows, ` : ''}${mb(bytes)} after ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
      }, 1000);
      const count = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          bytes += chunk.byteLength;
          if (format === 'csv') for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) rows++;
          done(null, chunk);
        },
      });
      try {
        await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), count, createWriteStream(partial));
      } catch (e) {
        await rm(partial, { force: true });
        throw new CliError(`dataset ${id} stopped after ${mb(bytes)}: ${(e as Error).message}; see 'warden dataset show ${id}'`);
      } finally {
        clearInterval(tick);
      }
      const record = await client.request<DatasetRecord>('GET', `/api/v1/datasets/${id}`);
      const sha256 = hash.digest('hex');
      if (record.state !== 'complete' || record.sha256 !== sha256 || record.bytes !== bytes) {
        await rm(partial, { force: true });
        throw new CliError(
          `dataset ${id} did not arrive whole (server: ${record.state}, ${record.bytes ?? 0} bytes${record.error ? `, ${record.error}` : ''}; received ${bytes} bytes); nothing was written to ${o.out}`,
        );
      }
      await rename(partial, o.out);
      print(cmd, record, () =>
        [
          `dataset ${record.id}: ${record.rows} rows of ${model} v${record.filter.versions.join(', v')} → ${o.out} (${mb(bytes)}, ${format})`,
          `sha256 ${sha256}`,
          ...(record.skipped ? [`${record.skipped} labelled rows left out: retention removed their predictions`] : []),
        ].join('\n'),
      );
    });

  dataset
    .command('list')
    .description('exported training sets, newest first')
    .option('--model <name>', 'only this model')
    .option('--limit <n>', 'at most this many', '50')
    .action(async (o: { model?: string; limit: string }, cmd: Command) => {
      const q = new URLSearchParams({ limit: o.limit });
      if (o.model) q.set('model', o.model);
      const res = await clientFor(cmd).request<{ datasets: DatasetRecord[] }>('GET', `/api/v1/datasets?${q}`);
      print(cmd, res, () =>
        res.datasets.length === 0
          ? 'no datasets exported yet'
          : table(
              res.datasets.map((d) => ({
                id: d.id,
                model: d.filter.model,
                versions: d.filter.versions.join(','),
                format: d.format,
                state: d.state,
                rows: d.rows,
                sha256: d.sha256?.slice(0, 12),
                created: new Date(d.createdAt).toISOString(),
                actor: d.actor,
              })),
              ['id', 'model', 'versions', 'format', 'state', 'rows', 'sha256', 'created', 'actor'],
            ),
      );
    });

  dataset
    .command('show <id>')
    .description('one exported training set: its filter, columns, sha256, rows and who exported it')
    .action(async (id: string, _o, cmd: Command) => {
      if (!/^[0-9]+$/.test(id)) throw new CliError('id must be a dataset number (see warden dataset list)', 2);
      const d = await clientFor(cmd).request<DatasetRecord>('GET', `/api/v1/datasets/${id}`);
      print(cmd, d, () => JSON.stringify(d, null, 2));
    });
}
