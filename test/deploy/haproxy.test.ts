/**
 * deploy/haproxy/haproxy.cfg: `haproxy -c` (Debian's haproxy) on the file as shipped, then the same file run for
 * real in front of two `warden serve` replicas on loopback (only the addresses rewritten: compose's service names
 * become 127.0.0.1 ports, the third server and Docker's DNS resolver dropped). Under steady traffic through
 * HAProxy one replica gets SIGTERM: HAProxy's check sees its readiness 503 and marks it DOWN while it still serves,
 * no request fails, HAProxy never had to retry, and the replica exits 0 after its drain delay. The stats frontend's
 * Prometheus exporter answers on /metrics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { launchWarden, stopCliServers, type RunningCli } from '../helpers/cli.ts';
import { freePort } from './ports.ts';
import { deployDir, run, which } from './tools.ts';

const cfgFile = path.join(deployDir, 'haproxy', 'haproxy.cfg');
const cfg = readFileSync(cfgFile, 'utf8');
const haproxy = which('haproxy');
if (!haproxy) console.warn('test/deploy/haproxy: no haproxy (Debian package haproxy): its config is not checked or run');
const compose = parseYaml(readFileSync(path.join(deployDir, 'compose', 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, any> };

const BODY = JSON.stringify({ instances: [{ season: 3, mnth: 7, hr: 17, holiday: 0, weekday: 3, workingday: 1, weathersit: 1, temp: 0.7, atemp: 0.65, hum: 0.5, windspeed: 0.2 }] });

/** One backend server's row of HAProxy's CSV stats. */
async function serverStats(statsUrl: string, name: string): Promise<Record<string, string>> {
  const csv = await (await fetch(`${statsUrl}/stats;csv`)).text();
  const [header, ...rows] = csv.trim().split('\n');
  const cols = header!.replace(/^# /, '').split(',');
  const row = rows.map((r) => r.split(',')).find((r) => r[0] === 'warden' && r[1] === name);
  if (!row) throw new Error(`no stats row for ${name}:\n${csv}`);
  return Object.fromEntries(cols.map((c, i) => [c, row[i] ?? '']));
}

describe.skipIf(!haproxy)('haproxy.cfg (real haproxy)', () => {
  it('haproxy -c accepts the file as shipped (the only warnings: compose names that do not resolve outside compose)', () => {
    const r = run(haproxy!, ['-c', '-f', cfgFile]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toContain('Configuration file is valid');
    const warnings = (r.stdout + r.stderr).split('\n').filter((l) => l.includes('[WARNING]') || l.includes('[ALERT]'));
    for (const w of warnings) expect(w).toMatch(/could not resolve address 'warden-[123]'/);
  });

  it('balances round robin over the compose replicas, checked on /v2/health/ready, with timeouts', () => {
    expect(cfg).toMatch(/^\s*balance roundrobin$/m);
    expect(cfg).toMatch(/^\s*http-check send meth GET uri \/v2\/health\/ready\b/m);
    expect(cfg).toMatch(/^\s*http-check expect status 200$/m);
    const servers = [...cfg.matchAll(/^\s*server (\S+) (\S+):(\d+)/gm)].map((m) => [m[1], m[2], m[3]]);
    const replicas = Object.keys(compose.services).filter((s) => s.startsWith('warden-'));
    expect(servers).toEqual(replicas.map((r) => [r, r, '8080']));
    for (const t of ['connect', 'client', 'server', 'http-request', 'http-keep-alive', 'check']) expect(cfg).toMatch(new RegExp(`^\\s*timeout ${t} \\d+s$`, 'm'));
    expect(cfg).toMatch(/^\s*hard-stop-after \d+s$/m);
    expect(compose.services.haproxy.stop_signal).toBe('SIGUSR1');
  });

  describe('in front of two real replicas, one of them drained', () => {
    const replicas: RunningCli[] = [];
    let lb: ChildProcess | undefined;
    let lbOut = '';
    const work = mkdtempSync(path.join(tmpdir(), 'warden-haproxy-'));
    afterAll(async () => {
      if (lb && lb.exitCode === null && lb.signalCode === null) {
        const gone = new Promise((r) => lb!.once('exit', r));
        lb.kill('SIGTERM');
        await gone;
      }
      await stopCliServers(replicas);
      rmSync(work, { recursive: true, force: true });
    });

    it('no request fails and HAProxy retries none while warden-1 drains; warden-1 is DOWN before it exits 0', { timeout: 120_000 }, async () => {
      const drainMs = Number(compose.services['warden-1'].environment.WARDEN_DRAIN_DELAY_MS);
      expect(drainMs).toBeGreaterThan(0);
      const ports: number[] = [];
      for (let i = 0; i < 2; i++) {
        const port = await freePort(18550 + i * 5, 18554 + i * 5);
        ports.push(port);
        const dataDir = mkdtempSync(path.join(tmpdir(), 'warden-lb-'));
        replicas.push(await launchWarden(['serve', '--demo', '--port', String(port)], dataDir, { WARDEN_DRAIN_DELAY_MS: String(drainMs) }));
      }
      const lbPort = await freePort(18560, 18569);
      const statsPort = await freePort(18570, 18579);
      // The shipped file with only its addresses changed.
      const local = cfg
        .replace(/^(\s*)bind :8080$/m, `$1bind 127.0.0.1:${lbPort}`)
        .replace(/^(\s*)bind :8404$/m, `$1bind 127.0.0.1:${statsPort}`)
        .replace(/^resolvers docker\n(?:[ \t]+.*\n)+/m, '')
        .replace(/ resolvers docker/, '')
        .replace(/^(\s*)server warden-1 warden-1:8080$/m, `$1server warden-1 127.0.0.1:${ports[0]}`)
        .replace(/^(\s*)server warden-2 warden-2:8080$/m, `$1server warden-2 127.0.0.1:${ports[1]}`)
        .replace(/^\s*server warden-3 .*\n/m, '');
      expect(local).not.toMatch(/warden-3|resolvers|:8080$|127\.0\.0\.11/m);
      for (const kept of ['frontend warden', 'backend warden', 'frontend stats', 'balance roundrobin', 'http-check send', 'default-server check']) expect(local).toContain(kept);
      const localFile = path.join(work, 'haproxy.cfg');
      writeFileSync(localFile, local);
      expect(run(haproxy!, ['-c', '-f', localFile]).code).toBe(0);
      lb = spawn(haproxy!, ['-db', '-f', localFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      lb.stdout!.on('data', (d: Buffer) => (lbOut += d.toString()));
      lb.stderr!.on('data', (d: Buffer) => (lbOut += d.toString()));
      const statsUrl = `http://127.0.0.1:${statsPort}`;
      const lbUrl = `http://127.0.0.1:${lbPort}`;
      const deadline = Date.now() + 30_000;
      for (;;) {
        const up = await Promise.all(['warden-1', 'warden-2'].map((n) => serverStats(statsUrl, n).then((s) => s.status, () => 'no stats')));
        if (up.every((s) => s === 'UP')) break;
        if (Date.now() > deadline) throw new Error(`replicas not UP in HAProxy: ${up.join(', ')}\n${lbOut}`);
        await new Promise((r) => setTimeout(r, 200));
      }

      // The stats frontend's Prometheus exporter (what prometheus.yml's haproxy job scrapes).
      const exported = await (await fetch(`${statsUrl}/metrics`)).text();
      expect(exported).toMatch(/^haproxy_server_status\{proxy="warden",server="warden-1",state="UP"\} 1$/m);

      // Steady traffic through HAProxy: 4 clients, each one request after another, until stopped (bounded below).
      const statuses = new Map<number, number>();
      const failures: string[] = [];
      let stop = false;
      const loadDeadline = Date.now() + 60_000;
      const clients = Array.from({ length: 4 }, async () => {
        while (!stop && Date.now() < loadDeadline) {
          try {
            const res = await fetch(`${lbUrl}/v1/models/bike-demand:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
            await res.arrayBuffer();
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          } catch (e) {
            failures.push((e as Error).message);
          }
        }
      });
      await new Promise((r) => setTimeout(r, 1000));
      const before = await serverStats(statsUrl, 'warden-1');
      expect(Number(before.stot), 'warden-1 served through HAProxy before the drain').toBeGreaterThan(0);

      const t0 = Date.now();
      replicas[0]!.child.kill('SIGTERM');
      let downAfterMs: number | undefined;
      const watch = (async () => {
        while (downAfterMs === undefined && replicas[0]!.child.exitCode === null) {
          const s = await serverStats(statsUrl, 'warden-1');
          if (s.status?.startsWith('DOWN')) downAfterMs = Date.now() - t0;
          else await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const exit = await replicas[0]!.exited;
      const exitedAfterMs = Date.now() - t0;
      await watch;
      await new Promise((r) => setTimeout(r, 1000));
      stop = true;
      await Promise.all(clients);

      const w1 = await serverStats(statsUrl, 'warden-1');
      const w2 = await serverStats(statsUrl, 'warden-2');
      expect(exit, replicas[0]!.output()).toEqual({ code: 0, signal: null });
      expect(downAfterMs, 'HAProxy marked warden-1 DOWN while it still ran').toBeDefined();
      expect(downAfterMs!).toBeLessThan(exitedAfterMs);
      expect(exitedAfterMs).toBeGreaterThanOrEqual(drainMs - 100);
      expect(failures).toEqual([]);
      expect([...statuses.keys()]).toEqual([200]);
      expect(statuses.get(200)!).toBeGreaterThan(50);
      expect({ retries: Number(w1.wretr), redispatches: Number(w1.wredis), errors: Number(w1.eresp) + Number(w1.econ) }).toEqual({ retries: 0, redispatches: 0, errors: 0 });
      expect(Number(w2.stot)).toBeGreaterThan(0);
      console.log(
        `haproxy drain: ${statuses.get(200)} requests, all 200; warden-1 DOWN after ${downAfterMs} ms, exited 0 after ${exitedAfterMs} ms (drain ${drainMs} ms); ` +
          `sessions warden-1 ${w1.stot}, warden-2 ${w2.stot}; retries ${w1.wretr}`,
      );
    });
  });
});
