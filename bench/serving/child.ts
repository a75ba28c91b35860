// A Warden server (or any process that logs a JSON line with its `url`) started as a child process for a
// benchmark: the load generator keeps its own event loop. Shared by bench/serving and bench/rollouts.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

export const repo = path.resolve(import.meta.dirname, '../..');

/** Spawns `cmd argv` in the repo with `env` added and waits (60 s at most) for the log line carrying its url. */
export async function startChild(cmd: string, argv: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(cmd, argv, { cwd: repo, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start in 60 s')), 60_000);
    lines.on('line', (l) => {
      try {
        const parsed = JSON.parse(l) as { url?: string };
        if (parsed.url) {
          clearTimeout(timer);
          resolve(parsed.url);
        }
      } catch {
        /* not a JSON log line */
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  lines.removeAllListeners('line');
  child.stdout!.resume();
  return { child, url };
}
