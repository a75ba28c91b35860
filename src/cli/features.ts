/**
 * `warden features apply | list | push | historical`: the feature repository (docs/features.md). `historical` runs
 * on the server, or in this process with `--definitions` (or `--in-process` with the server's definitions).
 */
import type { Command } from 'commander';
import { parse as parseCsv } from 'csv-parse';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { WardenError } from '../errors.ts';
import {
  featureRepoJson,
  loadFeatureRepoFile,
  MAX_PUSH_ROWS,
  parseFeatureRepo,
  parseFeatureRepoText,
  startHistorical,
  type FeatureRepo,
  type FeatureRepoView,
  type HistoricalRun,
} from '../features/index.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';
import { registerOnlineFeatureCommands } from './features-online.ts';

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

function viewRows(repo: FeatureRepoView) {
  return repo.featureViews.map((v) => ({
    view: v.name,
    entities: v.entities.join('+') || '(none)',
    source: v.source.kind === 'push' ? 'push' : `${v.source.format} ${v.source.path}`,
    ttl: v.ttl,
    features: v.schema.map((f) => `${f.name}:${f.dtype}`).join(' '),
    owner: v.owner ?? '',
  }));
}

interface HistoricalFlags {
  entities: string;
  features: string;
  out: string;
  timestampColumn: string;
  fullNames?: boolean;
  definitions?: string;
  inProcess?: boolean;
}

export function registerFeatures(program: Command): Command {
  const features = program.command('features').description('the feature store: definitions, pushed rows, point-in-time training sets');

  features
    .command('apply <file>')
    .description('check a definitions file (YAML or JSON) here, resolve its relative paths against its folder, and replace the server\'s definitions with it')
    .action(async (file: string, _o, cmd: Command) => {
      const abs = path.resolve(file);
      let text: string;
      try {
        text = await readFile(abs, 'utf8');
      } catch (e) {
        throw new CliError(`cannot read ${abs}: ${(e as Error).message}`, 2);
      }
      let repo: FeatureRepo;
      try {
        repo = parseFeatureRepoText(text, { baseDir: path.dirname(abs), source: abs });
      } catch (e) {
        throw new CliError((e as Error).message, 2);
      }
      const res = await clientFor(cmd).request<FeatureRepoView>('PUT', '/api/v1/features', featureRepoJson(repo));
      print(cmd, res, () => `applied ${abs}: ${res.entities.length} entities, ${res.featureViews.length} feature views (${res.featureViews.reduce((n, v) => n + v.schema.length, 0)} features)`);
    });

  features
    .command('list')
    .description("the server's entities and feature views")
    .action(async (_o, cmd: Command) => {
      const res = await clientFor(cmd).request<FeatureRepoView>('GET', '/api/v1/features');
      print(cmd, res, () => {
        if (res.featureViews.length === 0 && res.entities.length === 0) return 'no feature definitions yet; apply some with warden features apply features.yaml';
        const entities = res.entities.map((e) => `entity ${e.name}: ${e.joinKeys.join(', ')}${e.description ? ` — ${e.description}` : ''}`).join('\n');
        const when = res.updatedAt ? `\nupdated ${new Date(res.updatedAt).toISOString()} by ${res.updatedBy}` : '';
        return `${entities}\n\n${table(viewRows(res), ['view', 'entities', 'source', 'ttl', 'features', 'owner'])}${when}`;
      });
    });

  features
    .command('push <view> <file>')
    .description('push the rows of a CSV file (a header naming the view\'s join keys, time columns and features) to a push-fed view, in batches')
    .option('--batch <rows>', `rows per request, at most ${MAX_PUSH_ROWS}`, String(MAX_PUSH_ROWS))
    .action(async (view: string, file: string, o: { batch: string }, cmd: Command) => {
      const batchSize = Number(o.batch);
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_PUSH_ROWS) throw new CliError(`--batch must be a whole number from 1 to ${MAX_PUSH_ROWS}`, 2);
      const client = clientFor(cmd);
      const url = `/api/v1/features/${encodeURIComponent(view)}/push`;
      let sent = 0;
      let batch: Record<string, string>[] = [];
      let lines: number[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        try {
          await client.request('POST', url, { rows: batch });
        } catch (e) {
          // The server names rows[i] of this batch: say which line of the file that is.
          const m = e instanceof CliError ? /rows\[(\d+)\]/.exec(e.message) : null;
          if (m && e instanceof CliError) throw new CliError(`${file} line ${lines[Number(m[1])]}: ${e.message} (${sent} rows pushed before it)`, e.exitCode);
          throw e;
        }
        sent += batch.length;
        batch = [];
        lines = [];
      };
      const parser = createReadStream(file).pipe(parseCsv({ columns: (h: string[]) => h.map((c) => c.trim()), bom: true, skip_empty_lines: true, info: true }));
      try {
        for await (const rec of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
          const row: Record<string, string> = {};
          for (const [k, v] of Object.entries(rec.record)) if (v !== '') row[k] = v;
          batch.push(row);
          lines.push(rec.info.lines);
          if (batch.length >= batchSize) await flush();
        }
      } catch (e) {
        if (e instanceof CliError) throw e;
        throw new CliError(`cannot read ${file}: ${(e as Error).message} (${sent} rows pushed before it)`, 2);
      }
      await flush();
      print(cmd, { view, rows: sent }, () => `pushed ${sent.toLocaleString('en-US')} rows to ${view}`);
    });

  features
    .command('historical')
    .description('a point-in-time-correct training set: each entity row with the feature values known at its time, as CSV')
    .requiredOption('--entities <file>', 'CSV of entity rows: the join keys, the time column and any columns to pass through (e.g. a label)')
    .requiredOption('--features <refs>', 'comma-separated view:feature or view (all its features)')
    .requiredOption('-o, --out <file>', 'CSV to write; written as <file>.partial, renamed when complete')
    .option('--timestamp-column <name>', "the entity rows' time column (epoch ms or ISO-8601)", 'event_timestamp')
    .option('--full-names', 'name the feature columns view__feature')
    .option('--definitions <file>', 'run in this process with these definitions (file sources only) instead of on the server')
    .option('--in-process', "run in this process with the server's definitions (its file sources must be readable here)")
    .action(async (o: HistoricalFlags, cmd: Command) => {
      const refs = o.features.split(',').map((s) => s.trim()).filter(Boolean);
      const started = Date.now();
      const partial = `${o.out}.partial`;
      let bytes = 0;
      let rows = 0;
      const tick = setInterval(() => process.stderr.write(`historical: ${mb(bytes)} written after ${((Date.now() - started) / 1000).toFixed(0)} s\n`), 2000);
      const count = (chunk: string | Uint8Array) => {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        bytes += b.byteLength;
        return b;
      };
      try {
        let source: AsyncIterable<Buffer>;
        let run: HistoricalRun | undefined;
        if (o.definitions || o.inProcess) {
          let repo: FeatureRepo;
          if (o.definitions) {
            try {
              repo = await loadFeatureRepoFile(o.definitions);
            } catch (e) {
              throw new CliError((e as Error).message, 2);
            }
          } else repo = parseFeatureRepo((await clientFor(cmd).request<FeatureRepoView>('GET', '/api/v1/features')) as unknown, { source: "the server's definitions" });
          let r: HistoricalRun;
          try {
            r = await startHistorical({
              repo,
              features: refs,
              entities: { kind: 'csv', path: path.resolve(o.entities), timestampColumn: o.timestampColumn },
              output: 'csv',
              ...(o.fullNames ? { fullNames: true } : {}),
              tmpDir: tmpdir(),
            });
          } catch (e) {
            throw e instanceof WardenError ? new CliError(e.message, e.status < 500 ? 2 : 1) : e;
          }
          run = r;
          rows = r.rows;
          source = (async function* () {
            for await (const c of r.chunks()) yield count(c);
          })();
        } else {
          let body: Buffer;
          try {
            body = await readFile(o.entities);
          } catch (e) {
            throw new CliError(`cannot read ${o.entities}: ${(e as Error).message}`, 2);
          }
          const q = new URLSearchParams({ features: refs.join(','), timestampColumn: o.timestampColumn, ...(o.fullNames ? { fullNames: 'true' } : {}) });
          const res = await clientFor(cmd).open('POST', `/api/v1/features/historical?${q}`, new Uint8Array(body.buffer, body.byteOffset, body.byteLength), { 'content-type': 'text/csv' });
          if (!res.body) throw new CliError('the server answered without a body');
          rows = Number(res.headers.get('x-warden-rows') ?? 0);
          const web = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
          source = (async function* () {
            for await (const c of web) yield count(c as Uint8Array);
          })();
        }
        try {
          await pipeline(Readable.from(source), createWriteStream(partial));
        } catch (e) {
          await rm(partial, { force: true });
          throw new CliError(`historical retrieval stopped after ${mb(bytes)}: ${(e as Error).message}; nothing was written to ${o.out}`);
        }
        await rename(partial, o.out);
        const stats = run ? await run.stats() : undefined;
        const summary = { out: o.out, rows, bytes, seconds: (Date.now() - started) / 1000, ...(stats ? { stats } : {}) };
        print(cmd, summary, () => `${summary.rows.toLocaleString('en-US')} rows → ${o.out} (${mb(bytes)}) in ${summary.seconds.toFixed(1)} s${run ? ' (in this process)' : ''}`);
      } finally {
        clearInterval(tick);
      }
    });
  registerOnlineFeatureCommands(features);
  return features;
}
