import type { Command } from 'commander';
import type { StoredPredictionEvent } from '../storage/index.ts';
import { clientFor, print } from './models.ts';
import { CliError } from './output.ts';

interface TailFlags {
  model?: string;
  status?: string;
  follow?: boolean;
  n: string;
  interval: string;
}

function line(e: StoredPredictionEvent): string {
  const ts = new Date(e.ts).toISOString();
  // A served event with an `error` was touched by a game day: show the marker after the outputs.
  const out = e.status === 'ok' ? `${JSON.stringify(e.outputs).slice(0, 160)}${e.error ? `  [${e.error}]` : ''}` : e.error ?? '';
  return `${ts}  ${e.requestId}  ${e.model} v${e.version}  ${e.status.padEnd(5)}  ${e.latencyMs.toFixed(2)}ms  ${out}`;
}

/** `warden logs tail`: the newest prediction events, and with --follow new ones as they are written. */
export function registerLogs(program: Command): void {
  const logs = program.command('logs').description('read the prediction log');
  logs
    .command('tail')
    .description('print recent prediction events; --follow keeps printing new ones')
    .option('--model <name>', 'only this model')
    .option('--status <status>', 'ok or error')
    .option('-n <count>', 'how many recent events to show first', '20')
    .option('-f, --follow', 'keep polling for new events')
    .option('--interval <ms>', 'poll interval with --follow', '1000')
    .action(async (o: TailFlags, cmd: Command) => {
      const c = clientFor(cmd);
      const n = Number(o.n);
      if (!Number.isInteger(n) || n < 0 || n > 1000) throw new CliError('-n must be an integer 0-1000', 2);
      const filter = new URLSearchParams();
      if (o.model) filter.set('model', o.model);
      if (o.status) filter.set('status', o.status);
      // Page to the end to find the newest n, keeping only a bounded window in memory.
      let after = 0;
      let recent: StoredPredictionEvent[] = [];
      for (;;) {
        const q = new URLSearchParams(filter);
        q.set('after', String(after));
        q.set('limit', '1000');
        const page = await c.request<{ events: StoredPredictionEvent[] }>('GET', `/api/v1/predictions?${q}`);
        if (page.events.length === 0) break;
        recent = recent.concat(page.events).slice(-Math.max(n, 1));
        after = page.events.at(-1)!.seq;
        if (page.events.length < 1000) break;
      }
      const shown = n === 0 ? [] : recent.slice(-n);
      if (shown.length === 0 && !cmd.optsWithGlobals<{ json?: boolean }>().json) {
        process.stderr.write(`no predictions logged yet${o.model ? ` for ${o.model}` : ''}${o.follow ? '; waiting for new ones' : ''}\n`);
      } else {
        print(cmd, shown, () => shown.map(line).join('\n'));
      }
      if (!o.follow) return;
      const interval = Math.max(100, Number(o.interval) || 1000);
      for (;;) {
        await new Promise((r) => setTimeout(r, interval));
        const q = new URLSearchParams(filter);
        q.set('after', String(after));
        q.set('limit', '1000');
        const page = await c.request<{ events: StoredPredictionEvent[] }>('GET', `/api/v1/predictions?${q}`);
        for (const e of page.events) process.stdout.write(`${cmd.optsWithGlobals<{ json?: boolean }>().json ? JSON.stringify(e) : line(e)}\n`);
        if (page.events.length) after = page.events.at(-1)!.seq;
      }
    });
}
