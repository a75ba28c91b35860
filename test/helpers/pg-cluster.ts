/**
 * Throw-away PostgreSQL clusters on loopback, from Debian's server binaries: for the tests (test/setup/postgres.ts,
 * the outage test) and the scale-out benchmark. No vitest here, so bench scripts can import it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Where Debian (and most distributions) put the server binaries; PATH is tried first. */
function findPgBin(): string | undefined {
  const onPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const initdb = onPath.status === 0 ? onPath.stdout.trim() : '';
  if (initdb) {
    // Debian links /usr/local/bin/initdb into /usr/lib/postgresql/<v>/bin, beside postgres itself.
    const dir = path.dirname(execFileSync('readlink', ['-f', initdb], { encoding: 'utf8' }).trim());
    if (existsSync(path.join(dir, 'pg_ctl')) && existsSync(path.join(dir, 'postgres'))) return dir;
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface PgCluster {
  url: string;
  port: number;
  dataDir: string;
  /** pg_ctl stop -m fast: open connections are cut. */
  stop(): void;
  /** Starts it again on the same port and data. */
  start(): void;
  /** Stops it and removes its files. */
  destroy(): void;
}

/** Whether this machine can start a PostgreSQL server for the tests. */
export const pgServerAvailable = (): boolean => findPgBin() !== undefined;

/**
 * initdb + pg_ctl start of a throw-away cluster on 127.0.0.1 (trust auth, fsync off: a test cluster need not
 * survive a power cut). PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
 */
export async function startPgCluster(opts: { port?: number } = {}): Promise<PgCluster> {
  const bin = findPgBin();
  if (!bin) throw new Error('no PostgreSQL server: install Debian package postgresql');
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), 'warden-pg-'));
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) => {
    const full = asRoot ? ['runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args]] as const : [path.join(bin, cmd), args] as const;
    const r = spawnSync(full[0], full[1] as string[], { encoding: 'utf8', cwd: dir });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const startArgs = [
    '-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60',
    '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB`,
  ];
  const cluster: PgCluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dataDir: dir,
    start: () => run('pg_ctl', ['start', ...startArgs]),
    stop: () => run('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w']),
    destroy: () => {
      try {
        cluster.stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  cluster.start();
  return cluster;
}

