import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from './server.ts';

/** A `warden serve` child process. */
export interface RunningCli {
  child: ChildProcess;
  url: string;
  dataDir: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}

/**
 * Starts `node bin/warden.js serve --demo --port 0` on a fresh data dir with the given WARDEN_* variables
 * and waits for the JSON log line that carries its url. The child gets no WARDEN_* from this environment
 * (an unknown one would fail its config).
 */
export async function startCliServer(env: Record<string, string>, dataDirPrefix = 'warden-cli-'): Promise<RunningCli> {
  return launchWarden(['serve', '--demo', '--port', '0'], mkdtempSync(path.join(tmpdir(), dataDirPrefix)), env);
}

/**
 * Starts `node bin/warden.js <args>` on `dataDir` (shared or not) with only the given WARDEN_* variables and waits
 * for the JSON log line that carries its url; `onSpawn` sees the child at once (to kill it whatever happens next).
 */
export async function launchWarden(args: string[], dataDir: string, env: Record<string, string>, onSpawn?: (child: ChildProcess) => void): Promise<RunningCli> {
  const childEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WARDEN_')));
  Object.assign(childEnv, { WARDEN_DATA_DIR: dataDir, WARDEN_LOG_LEVEL: 'info', ...env });
  const child = spawn(process.execPath, ['bin/warden.js', ...args], { cwd: repoRoot, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  onSpawn?.(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "url" log line within 20 s:\n${out}\n${err}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const rec = JSON.parse(line) as { url?: string };
          if (rec.url) {
            clearTimeout(timer);
            resolve(rec.url);
          }
        } catch {
          /* a partial line; wait for the rest */
        }
      }
    });
    void exited.then(({ code }) => reject(new Error(`warden exited (${code}) before listening:\n${out}\n${err}`)));
  });
  return { child, url, dataDir, exited, output: () => `${out}\n${err}` };
}

/** Exit code and output of one `warden` run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without any WARDEN_* the developer's shell may carry, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WARDEN_'))), NO_COLOR: '1', ...extra };
}

/** Runs `node bin/warden.js …args` to completion; resolves with a non-zero exit, rejects only when it did not exit normally. */
export function runWarden(args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(repoRoot, 'bin', 'warden.js'), ...args], { cwd: repoRoot, env: cleanEnv(extraEnv), timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`warden ${args.join(' ')} did not exit normally (${err.signal ?? err.code ?? err.message}); stderr: ${stderr}`));
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

/** Kills (SIGKILL) the servers that are still running and removes their data directories. */
export async function stopCliServers(servers: RunningCli[]): Promise<void> {
  for (const r of servers.splice(0)) {
    if (r.child.exitCode === null && r.child.signalCode === null) {
      r.child.kill('SIGKILL');
      await r.exited;
    }
    rmSync(r.dataDir, { recursive: true, force: true });
  }
}
