/**
 * Delivery to a real Alertmanager (the Debian `prometheus-alertmanager` binary, started here on loopback): a drift
 * alert raised by a built-in rule is pushed to `POST /api/v2/alerts` and read back from `GET /api/v2/alerts` with
 * its labels, runbook and times; when the drift clears, the resolution ends it there. Skipped, with a message,
 * when the binary is missing (`apt-get install prometheus-alertmanager`; .ci/run installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertingService } from '../../src/alerting/index.ts';
import { parseConfig } from '../../src/config.ts';
import { createMonitoringMetrics } from '../../src/monitoring/metrics.ts';
import { SqliteMetadataStore } from '../../src/storage/index.ts';

const BINARY = '/usr/bin/prometheus-alertmanager';
const present = existsSync(BINARY);
if (!present) console.warn(`skipping the Alertmanager integration test: ${BINARY} is missing (apt-get install prometheus-alertmanager)`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

describe.skipIf(!present)('real Alertmanager', () => {
  let dir: string;
  let am: ChildProcess;
  let amUrl: string;
  let stderr = '';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-am-'));
    const config = path.join(dir, 'alertmanager.yml');
    writeFileSync(config, ['route:', '  receiver: blackhole', '  group_by: [deployment]', 'receivers:', '  - name: blackhole', ''].join('\n'));
    const port = await freePort();
    amUrl = `http://127.0.0.1:${port}`;
    am = spawn(BINARY, [`--config.file=${config}`, `--storage.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address='], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    am.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    await until('Alertmanager to be ready', async () => {
      if (am.exitCode !== null) throw new Error(`alertmanager exited ${am.exitCode}: ${stderr}`);
      const res = await fetch(`${amUrl}/-/ready`);
      return res.ok ? true : undefined;
    });
  });

  afterAll(async () => {
    if (am && am.exitCode === null) {
      const exited = new Promise((r) => am.once('exit', r));
      am.kill('SIGTERM');
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('receives a firing drift ticket with its runbook, and sees it end when the drift clears', async () => {
    const store = new SqliteMetadataStore(path.join(dir, 'metadata.db'));
    const registry = new Registry();
    const monitoring = createMonitoringMetrics(registry);
    const cfg = parseConfig({
      alerting: {
        groupWaitMs: 0,
        groupIntervalMs: 10,
        runbookBaseUrl: 'https://git.example.com/warden/blob/main/',
        externalUrl: 'http://warden.test:8080',
        receivers: [{ name: 'am', type: 'alertmanager', url: amUrl, retries: 1, backoffMs: 50 }],
      },
    });
    const alerting = new AlertingService({ metadata: store, promRegistry: registry, logger: pino({ level: 'silent' }), config: cfg.alerting });
    try {
      monitoring.datasetDrift.set({ model: 'fraud', version: '2' }, 1);
      await alerting.evaluate();
      await alerting.settled();
      const alerts = await until('the alert in Alertmanager', async () => {
        const list = (await (await fetch(`${amUrl}/api/v2/alerts`)).json()) as any[];
        return list.length ? list : undefined;
      });
      expect(alerts).toHaveLength(1);
      const a = alerts[0];
      expect(a.labels).toEqual({ alertname: 'WardenDataDrift', severity: 'ticket', deployment: 'fraud', model: 'fraud', version: '2' });
      expect(a.annotations).toMatchObject({
        summary: 'Data drift on fraud v2',
        runbook_url: 'https://git.example.com/warden/blob/main/docs/runbooks/data-drift.md',
      });
      expect(a.annotations.description).toContain('fraud v2');
      expect(a.status.state).toBe('active');
      expect(a.generatorURL).toMatch(/^http:\/\/warden\.test:8080\/api\/v1\/alerts\/history\?fingerprint=[0-9a-f]{16}$/);
      expect(Date.parse(a.endsAt)).toBeGreaterThan(Date.now() + 3_600_000);
      const history = await alerting.history({ kind: 'notification' });
      expect(history[0]).toMatchObject({ receiver: 'am', deployment: 'fraud', data: { ok: true, attempts: 1, httpStatus: 200 } });

      monitoring.datasetDrift.set({ model: 'fraud', version: '2' }, 0);
      await alerting.evaluate();
      await new Promise((r) => setTimeout(r, 20));
      await alerting.evaluate();
      await alerting.settled();
      await until('the alert to end in Alertmanager', async () => {
        const list = (await (await fetch(`${amUrl}/api/v2/alerts`)).json()) as any[];
        return list.length === 0 ? true : undefined;
      });
      const sent = await alerting.history({ kind: 'notification' });
      expect(sent.map((e) => (e.data as any).status)).toEqual(['firing', 'resolved']);
    } finally {
      await alerting.stop();
      await store.close();
    }
  });
});
