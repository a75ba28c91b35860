// haproxy in front of the replicas with keep-alive connections to them, as deploy/haproxy/haproxy.cfg runs it (no
// `option http-server-close`, which test/helpers/fleet.ts's startHaproxy sets: a new TCP connection to a replica
// for every request). Otherwise the same: round robin, health-checked on /v2/health/ready every 500 ms.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { haproxyBin } from '../../test/helpers/fleet.ts';
import { freePort } from '../../test/helpers/pg-cluster.ts';

export async function startKeepAliveHaproxy(ports: number[], dir: string): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  if (!haproxyBin) throw new Error('no haproxy: install Debian package haproxy');
  const port = await freePort();
  const cfg = path.join(dir, 'haproxy-keep-alive.cfg');
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
      '  timeout http-keep-alive 10s',
      '  retries 2',
      '  option redispatch 1',
      '  retry-on conn-failure empty-response',
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
      // Ready through haproxy: at least one replica has passed its check.
      if ((await fetch(`${url}/v2/health/ready`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`haproxy did not answer: ${err}`);
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
