import { spawn } from 'node:child_process';

/** The log a job keeps: its last 64 KiB (the start of a long log is the least useful part when a run fails). */
export const JOB_LOG_BYTES = 64 * 1024;
/** After the timeout's SIGTERM, how long a command has to exit before SIGKILL. */
const KILL_GRACE_MS = 5000;

/** A bounded log: lines appended, the oldest dropped past the limit, with a note that they were. */
export class JobLog {
  private text = '';
  private dropped = 0;

  constructor(
    private readonly limit = JOB_LOG_BYTES,
    private readonly onLine?: (line: string) => void,
  ) {}

  line(s: string): void {
    this.append(`${s}\n`);
    this.onLine?.(s);
  }

  append(s: string): void {
    this.text += s;
    if (this.text.length > this.limit) {
      const cut = this.text.length - this.limit;
      this.dropped += cut;
      this.text = this.text.slice(cut);
    }
  }

  toString(): string {
    return this.dropped ? `[${this.dropped} earlier characters dropped]\n${this.text}` : this.text;
  }
}

export interface CommandResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  ms: number;
}

/**
 * Runs a trainer command as a child process, without a shell: arguments as given, `{placeholders}` replaced, stdout
 * and stderr into the job's log, killed (SIGTERM, then SIGKILL) at the timeout. A command that cannot start
 * (not found) resolves with exit code null and says why in the log.
 */
export function runCommand(argv: readonly string[], vars: Record<string, string>, opts: { cwd: string; timeoutMs: number; log: JobLog; signal?: AbortSignal }): Promise<CommandResult> {
  const args = argv.map((a) => a.replace(/\{(\w+)\}/g, (m, k: string) => vars[k] ?? m));
  const started = performance.now();
  return new Promise((resolve) => {
    let timedOut = false;
    let settled = false;
    const child = spawn(args[0]!, args.slice(1), { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WARDEN_JOB_DIR: opts.cwd } });
    const out = (chunk: Buffer) => opts.log.append(chunk.toString('utf8'));
    child.stdout.on('data', out);
    child.stderr.on('data', out);
    const kill = () => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS).unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      opts.log.line(`warden: the command ran past its timeout of ${Math.round(opts.timeoutMs / 1000)} s; stopping it`);
      kill();
    }, opts.timeoutMs);
    const abort = () => {
      opts.log.line('warden: the job was canceled; stopping the command');
      kill();
    };
    opts.signal?.addEventListener('abort', abort, { once: true });
    const done = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', abort);
      resolve({ exitCode, signal, timedOut, ms: performance.now() - started });
    };
    child.on('error', (e) => {
      opts.log.line(`warden: could not run ${JSON.stringify(args[0])}: ${e.message}`);
      done(null, null);
    });
    child.on('close', (code, signal) => done(code, signal));
  });
}
