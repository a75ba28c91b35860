import type { Command } from 'commander';
import { parse } from 'csv-parse';
import { createReadStream } from 'node:fs';
import type { LabelIngestResult, LabelStats } from '../storage/index.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

/** Labels per request: half the API's limit, so one call stays a short transaction on the server. */
const CHUNK = 5000;
/** Invalid rows listed on stderr; the totals count all of them. */
const SHOWN_ERRORS = 20;

interface ImportFlags {
  requestIdColumn: string;
  keyColumn: string;
  rowColumn: string;
  valueColumn: string;
  tsColumn: string;
  source: string;
  valueType: string;
  lateAfterMs?: string;
}

type Totals = Omit<LabelIngestResult, 'errors'> & { labels: number };

const VALUE_TYPES = ['auto', 'number', 'string', 'boolean'] as const;

/**
 * A CSV cell as a label value. `auto`: finite numbers and true/false become numbers and booleans, anything else
 * stays a string. Cells that do not fit a forced type are sent as they are, so the server reports them by row.
 */
function cellValue(cell: string, type: (typeof VALUE_TYPES)[number]): unknown {
  const t = cell.trim();
  const num = t !== '' && Number.isFinite(Number(t)) ? Number(t) : undefined;
  const bool = t === 'true' ? true : t === 'false' ? false : undefined;
  if (type === 'string') return cell;
  if (type === 'number') return num ?? cell;
  if (type === 'boolean') return bool ?? cell;
  return num ?? bool ?? (cell === '' ? undefined : cell);
}

/** Epoch ms or ISO-8601; anything else is sent as is for the server to refuse by row. */
function cellTime(cell: string): unknown {
  if (/^[0-9]+(\.[0-9]+)?$/.test(cell)) return Number(cell);
  const ms = Date.parse(cell);
  return Number.isFinite(ms) ? ms : cell;
}

/** `warden labels import` and `warden labels stats`: delayed ground truth from the command line. */
export function registerLabels(program: Command): void {
  const labels = program.command('labels').description('send delayed labels (ground truth) and read their counters');

  labels
    .command('import <file>')
    .description('stream labels from a CSV file to the server, 5000 per request')
    .option('--request-id-column <name>', 'column with the prediction request id', 'request_id')
    .option('--key-column <name>', 'column with a caller key (parameters.keys), used where the request id is empty', 'key')
    .option('--row-column <name>', 'column with the row within the request (default 0)', 'row')
    .option('--value-column <name>', 'column with the label value', 'label')
    .option('--ts-column <name>', 'column with the label time, epoch ms or ISO-8601 (default: now)', 'ts')
    .option('--source <source>', 'human, system or model', 'system')
    .option('--value-type <type>', 'auto (numbers and true/false parsed), number, string or boolean', 'auto')
    .option('--late-after-ms <ms>', 'a label more than this after its prediction counts as late (server default: 7 days)')
    .action(async (file: string, o: ImportFlags, cmd: Command) => {
      if (!['human', 'system', 'model'].includes(o.source)) throw new CliError('--source must be human, system or model', 2);
      const valueType = o.valueType as (typeof VALUE_TYPES)[number];
      if (!VALUE_TYPES.includes(valueType)) throw new CliError(`--value-type must be one of ${VALUE_TYPES.join(', ')}`, 2);
      const lateAfterMs = o.lateAfterMs === undefined ? undefined : Number(o.lateAfterMs);
      if (lateAfterMs !== undefined && (!Number.isSafeInteger(lateAfterMs) || lateAfterMs < 0)) throw new CliError('--late-after-ms must be an integer ≥ 0', 2);
      const c = clientFor(cmd);

      let header: string[] | undefined;
      const checkHeader = (cols: string[]) => {
        // A column named on the command line must exist; the defaults are used only where the file has them.
        for (const [flag, col] of [
          ['requestIdColumn', o.requestIdColumn],
          ['keyColumn', o.keyColumn],
          ['rowColumn', o.rowColumn],
          ['tsColumn', o.tsColumn],
        ] as const) {
          if (cmd.getOptionValueSource(flag) === 'cli' && !cols.includes(col)) throw new CliError(`${file}: no column ${JSON.stringify(col)} (header: ${cols.join(', ')})`, 2);
        }
        if (!cols.includes(o.valueColumn)) throw new CliError(`${file}: no value column ${JSON.stringify(o.valueColumn)}; name it with --value-column (header: ${cols.join(', ')})`, 2);
        if (!cols.includes(o.requestIdColumn) && !cols.includes(o.keyColumn)) {
          throw new CliError(`${file}: needs a request id column (${o.requestIdColumn}) or a key column (${o.keyColumn}); name them with --request-id-column / --key-column`, 2);
        }
        return cols;
      };

      const input = createReadStream(file);
      const parser = input.pipe(
        parse({
          bom: true,
          skip_empty_lines: true,
          info: true,
          columns: (cols: string[]) => (header = checkHeader(cols.map((h) => h.trim()))),
        }),
      );
      // pipe() does not pass a read error (missing file) on: end the parse with it.
      input.once('error', (e) => parser.destroy(e));
      const totals: Totals = { labels: 0, accepted: 0, duplicates: 0, unmatched: 0, late: 0, invalid: 0 };
      const errors: string[] = [];
      let batch: Record<string, unknown>[] = [];
      let lines: number[] = [];

      const send = async () => {
        if (batch.length === 0) return;
        let res: LabelIngestResult;
        try {
          res = await c.request<LabelIngestResult>('POST', '/api/v1/labels', { labels: batch, ...(lateAfterMs !== undefined ? { lateAfterMs } : {}) });
        } catch (e) {
          // What was sent before is stored; importing the file again is safe (a label sent twice is a duplicate).
          const done = totals.labels ? ` after ${totals.labels} labels were stored (up to line ${lines[0]! - 1})` : '';
          throw e instanceof CliError ? new CliError(`${e.message}${done}`, e.exitCode) : e;
        }
        totals.labels += batch.length;
        for (const k of ['accepted', 'duplicates', 'unmatched', 'late', 'invalid'] as const) totals[k] += res[k];
        for (const err of res.errors) if (errors.length < SHOWN_ERRORS) errors.push(`line ${lines[err.index]}: ${err.error}`);
        process.stderr.write(`labels: ${totals.labels} sent, ${totals.accepted} accepted, ${totals.invalid} invalid\n`);
        batch = [];
        lines = [];
      };

      try {
        for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
          const label: Record<string, unknown> = { source: o.source };
          const requestId = record[o.requestIdColumn]?.trim();
          const key = record[o.keyColumn]?.trim();
          if (requestId) {
            label.requestId = requestId;
            const row = record[o.rowColumn]?.trim();
            if (row) label.row = /^[0-9]+$/.test(row) ? Number(row) : row;
          } else if (key) {
            label.key = key;
          }
          const value = cellValue(record[o.valueColumn] ?? '', valueType);
          if (value !== undefined) label.value = value;
          const ts = record[o.tsColumn]?.trim();
          if (ts) label.ts = cellTime(ts);
          batch.push(label);
          lines.push(info.lines);
          if (batch.length >= CHUNK) await send();
        }
      } catch (e) {
        if (e instanceof CliError) throw e;
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'EISDIR') throw new CliError(`cannot read ${file}: ${err.message}`, 2);
        const done = totals.labels ? ` (${totals.labels} labels before it were stored; importing again is safe)` : '';
        throw new CliError(`${file} is not valid CSV: ${err.message}${done}`, 2);
      }
      await send();
      if (!header) throw new CliError(`${file} is empty; it needs a header line and one label per line`, 2);

      for (const line of errors) process.stderr.write(`  ${line}\n`);
      if (totals.invalid > errors.length) process.stderr.write(`  … and ${totals.invalid - errors.length} more invalid\n`);
      print(cmd, totals, () =>
        [
          `${file}: ${totals.labels} labels`,
          table(
            [{ accepted: totals.accepted, duplicates: totals.duplicates, unmatched: totals.unmatched, late: totals.late, invalid: totals.invalid }],
            ['accepted', 'duplicates', 'unmatched', 'late', 'invalid'],
          ),
        ].join('\n'),
      );
      if (totals.labels > 0 && totals.accepted === 0) throw new CliError(`every label in ${file} was invalid (${errors[0]})`, 2);
    });

  labels
    .command('stats [model] [version]')
    .description('label counters: total, matched, unmatched, duplicates, late, by source; of one model (version) when given')
    .action(async (model: string | undefined, version: string | undefined, _o, cmd: Command) => {
      if (version !== undefined && !/^[0-9]+$/.test(version)) throw new CliError('version must be a version number', 2);
      const q = new URLSearchParams();
      if (model) q.set('model', model);
      if (version) q.set('version', version);
      const s = await clientFor(cmd).request<LabelStats>('GET', `/api/v1/labels/stats${q.size ? `?${q}` : ''}`);
      print(cmd, s, () =>
        table(
          [
            {
              total: s.total,
              matched: s.matched,
              unmatched: s.unmatched,
              duplicates: s.duplicates,
              late: s.late,
              human: s.bySource.human,
              system: s.bySource.system,
              model: s.bySource.model,
              'duplicate keys': s.duplicateKeys,
            },
          ],
          ['total', 'matched', 'unmatched', 'duplicates', 'late', 'human', 'system', 'model', 'duplicate keys'],
        ),
      );
    });
}
