/**
 * A fleet on loopback for the scale-out tests: N `warden serve` processes on one PostgreSQL, behind Debian's
 * haproxy (round robin, health-checked on /v2/health/ready), as docs/scale-out.md describes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchWarden, type RunningCli } from './cli.ts';
import { freePort } from './pg-cluster.ts';

export const haproxyBin = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => existsSync(p));

export interface Replica extends RunningCli {
  port: number;
  index: number;
}

export interface Fleet {
  replicas: Replica[];
  /** The load balancer's address: what callers use. */
  url: string;
  /** Starts replica `index` again after it was killed (same port and env). */
  restart(index: number): Promise<Replica>;
  kill(index: number, signal?: NodeJS.Signals): Promise<void>;
  close(): Promise<void>;
}

export interface FleetOptions {
  size: number;
  storageUrl: string;
  /** WARDEN_* for every replica. */
  env?: Record<string, string>;
  /** A config file (YAML text) every replica reads. */
  configYaml?: string;
}

/**
 * haproxy in front of `ports`: round robin, health-checked on /v2/health/ready every 500 ms. By default with
 * `option http-server-close` (a new connection to a replica for every request, so a killed replica shows at once);
 * `keepAlive` keeps connections to the replicas open as deploy/haproxy/haproxy.cfg does, and retries a request whose
 * reused connection the replica closed.
 */
export async function startHaproxy(ports: number[], dir: string, opts: { keepAlive?: boolean } = {}): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  if (!haproxyBin) throw new Error('no haproxy: install Debian package haproxy');
  const port = await freePort();
  const cfg = path.join(dir, opts.keepAlive ? 'haproxy-keep-alive.cfg' : 'haproxy.cfg');
  const connections = opts.keepAlive
    ? ['  timeout http-keep-alive 10s', '  retries 2', '  option redispatch 1', '  retry-on conn-failure empty-response']
    : ['  option http-server-close', '  retries 2', '  option redispatch'];
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 4096',
      'defaults',
      '  mode http',
      '  timeout connect 2s',
      '  timeout client 30s',
      '  timeout server 30s',
      ...connections,
      'frontend warden',
      `  bind 127.0.0.1:${port}`,
      '  default_backend replicas',
      'backend replicas',
      '  balance roundrobin',
      '  option httpchk GET /v2/health/ready',
      '  http-check expect status 200',
      '  default-server inter 500ms fall 2 rise 1',
      ...ports.map((p, i) => `  server r${i} 127.0.0.1:${p} check`),
      '',
    ].join('\n'),
  );
  const check = spawnSync(haproxyBin, ['-c', '-f', cfg], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`haproxy config invalid: ${check.stderr}${check.stdout}`);
  const child = spawn(haproxyBin, ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/v2/health/live`);
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`haproxy did not answer: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const dir = mkdtempSync(path.join(tmpdir(), 'warden-fleet-'));
  const ports = await Promise.all(Array.from({ length: opts.size }, () => freePort()));
  const configFile = opts.configYaml ? path.join(dir, 'warden.yaml') : undefined;
  if (configFile) writeFileSync(configFile, opts.configYaml!);
  const children: ChildProcess[] = [];
  const launch = async (index: number): Promise<Replica> => {
    const dataDir = path.join(dir, `r${index}`);
    const args = ['serve', '--host', '127.0.0.1', '--port', String(ports[index]), ...(configFile ? ['--config', configFile] : [])];
    const env = { WARDEN_STORAGE_URL: opts.storageUrl, WARDEN_DRAIN_DELAY_MS: '0', ...opts.env };
    const cli = await launchWarden(args, dataDir, env, (c) => children.push(c));
    return { ...cli, port: ports[index]!, index };
  };
  const replicas: Replica[] = [];
  try {
    // All at once, as a rollout would start them: migrations run once under the lock.
    replicas.push(...(await Promise.all(ports.map((_, i) => launch(i)))));
    const lb = await startHaproxy(ports, dir);
    const fleet: Fleet = {
      replicas,
      url: lb.url,
      async restart(index) {
        const r = await launch(index);
        replicas[index] = r;
        return r;
      },
      async kill(index, signal = 'SIGKILL') {
        const r = replicas[index]!;
        if (r.child.exitCode === null && r.child.signalCode === null) {
          r.child.kill(signal);
          await r.exited;
        }
      },
      async close() {
        await lb.stop();
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
        await Promise.all(replicas.map((r) => r.exited));
        rmSync(dir, { recursive: true, force: true });
      },
    };
    return fleet;
  } catch (e) {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Polls `probe` until it returns a value (not undefined) or `ms` pass; returns the value and how long it took. */
export async function within<T>(ms: number, probe: () => Promise<T | undefined>, what: string): Promise<{ value: T; tookMs: number }> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return { value: v, tookMs: Date.now() - t0 };
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
