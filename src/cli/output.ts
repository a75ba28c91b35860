import { CommanderError } from 'commander';
import { WardenError } from '../errors.ts';

/** A CLI failure: printed as one line on stderr, exit code 2 for usage/input problems, 1 otherwise. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Formats rows as an aligned text table. */
export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => (r[c] === undefined || r[c] === null ? '' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

/** Turns any error into the one line a user sees and the exit code. */
export function describeCliError(e: unknown): { message: string; exitCode: number } {
  if (e instanceof CliError) return { message: e.message, exitCode: e.exitCode };
  // Commander (and `cmd.error`, as `warden train` uses) has already written the message: keep its exit code, print nothing more.
  if (e instanceof CommanderError) return { message: '', exitCode: e.exitCode };
  if (e instanceof WardenError) return { message: `${e.code}: ${e.message}`, exitCode: e.status < 500 ? 2 : 1 };
  const err = e as { code?: string; message?: string; exitCode?: number };
  if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return { message: '', exitCode: 0 };
  if (typeof err.code === 'string' && err.code.startsWith('commander.')) return { message: '', exitCode: err.exitCode ?? 2 };
  return { message: err.message ?? String(e), exitCode: 1 };
}
