/**
 * No silent no-ops in alerting: a rule on a metric Warden does not export is refused (API) or logged (config);
 * alerts that no receiver takes are said so at start, in the alerts API and in `warden alerts list`; a stored
 * silence whose regex RE2 refuses (saved before RE2) is logged and mutes nothing.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Gauge } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { runWarden } from '../helpers/cli.ts';

/** A logger whose warn-and-above lines the test can read. */
function capture() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as (typeof lines)[number]);
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), lines, warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg) };
}

const drift = (srv: TestServer) => srv.warden.metrics.registry.getSingleMetric('warden_dataset_drift') as Gauge<'model' | 'version'>;
const rule = (over: Record<string, unknown>) => ({ name: 'R', metric: 'warden_drift_share', op: '>', threshold: 0.5, severity: 'ticket', summary: 's', runbook: 'docs/runbooks/data-drift.md', ...over });

let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

describe('rules on metrics Warden does not export', () => {
  it('PUT /api/v1/alerts/rules answers 400 naming the metric and listing the metrics it can use', async () => {
    srv = await startTestServer({ alerting: { evaluationIntervalMs: 3_600_000 } });
    const r = await srv.json('PUT', '/api/v1/alerts/rules', { rules: [rule({}), rule({ name: 'Typo', metric: 'warden_inference_request_total' })] });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('WARDEN_BAD_REQUEST');
    expect(r.body.error).toContain('rules[1] (Typo): metric warden_inference_request_total is not exported by this server, so the rule would match no series and never fire');
    expect(r.body.error).toContain('did you mean warden_inference_requests_total?');
    expect(r.body.error).toMatch(/Metrics it can use: .*warden_inference_requests_total/);
    expect(r.body.error).toContain('warden_inference_duration_seconds_count');
    expect(r.body.error).toContain('warden_dataset_drift');
    expect(r.body.error).toMatch(/and \d+ process_\* \/ nodejs_\* metrics; see GET \/metrics/);
    // Nothing was stored: the rules in force are still the built-ins only.
    expect((await srv.json('GET', '/api/v1/alerts/rules')).body.rules.every((x: { origin: string }) => x.origin === 'builtin')).toBe(true);

    const hist = await srv.json('PUT', '/api/v1/alerts/rules', [rule({ metric: 'warden_inference_duration_seconds' })]);
    expect(hist.body.error).toContain('warden_inference_duration_seconds is a histogram: use warden_inference_duration_seconds_count, warden_inference_duration_seconds_sum or warden_inference_duration_seconds_bucket');
    const counter = await srv.json('PUT', '/api/v1/alerts/rules', [rule({ metric: 'warden_inference_requests', fn: 'increase' })]);
    expect(counter.body.error).toContain('did you mean warden_inference_requests_total?');
    // Exported names of every kind are accepted, histogram series and default process metrics included.
    const ok = await srv.json('PUT', '/api/v1/alerts/rules', [
      rule({}),
      rule({ name: 'Slow', metric: 'warden_inference_duration_seconds_bucket', labels: { le: '0.025' } }),
      rule({ name: 'Cpu', metric: 'process_cpu_seconds_total', fn: 'rate' }),
    ]);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
  });

  it('a config rule on an unknown metric is logged at warn when the server starts', async () => {
    const log = capture();
    srv = await startTestServer({ alerting: { evaluationIntervalMs: 3_600_000, rules: [rule({ name: 'Gone', metric: 'warden_no_such_metric' })] } }, { logger: log.logger });
    expect(log.warnings().filter((m) => m.includes('config rule Gone: metric warden_no_such_metric is not exported'))).toHaveLength(1);
  });
});

describe('alerts that reach no receiver', () => {
  it('without receivers: one warn line at start, alerts list no receivers, and warden alerts list says nobody is notified', async () => {
    const log = capture();
    srv = await startTestServer({ alerting: { evaluationIntervalMs: 3_600_000 } }, { logger: log.logger });
    const warned = log.warnings().filter((m) => m.includes('no receiver is configured'));
    expect(warned).toEqual([expect.stringContaining('alerting.receivers is empty): alerts are evaluated, listed and kept in the history, but nobody is notified')]);

    drift(srv).set({ model: 'fraud', version: '1' }, 1);
    await srv.json('POST', '/api/v1/alerts/evaluate');
    const alerts = (await srv.json('GET', '/api/v1/alerts')).body.alerts;
    expect(alerts).toEqual([expect.objectContaining({ alertname: 'WardenDataDrift', status: 'firing', receivers: [] })]);

    const cli = await runWarden(['--url', srv.url, 'alerts', 'list']);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain('WardenDataDrift');
    expect(cli.stderr).toMatch(/^warning: (1 firing ticket alert reaches no receiver: nobody is notified|no receiver is configured)/m);
  });

  it('a severity no receiver takes is named at start and its alerts list no receiver; the others list theirs', async () => {
    const log = capture();
    srv = await startTestServer(
      { alerting: { evaluationIntervalMs: 3_600_000, receivers: [{ name: 'oncall', type: 'webhook', url: 'http://127.0.0.1:9/hook', severities: ['page'] }] } },
      { logger: log.logger },
    );
    expect(log.warnings().filter((m) => m.includes('no receiver takes ticket alerts'))).toHaveLength(1);
    expect(log.warnings().some((m) => m.includes('page alerts'))).toBe(false);
    drift(srv).set({ model: 'fraud', version: '1' }, 1);
    await srv.json('POST', '/api/v1/alerts/evaluate');
    expect((await srv.json('GET', '/api/v1/alerts')).body.alerts[0]).toMatchObject({ severity: 'ticket', receivers: [] });
    expect(srv.warden.alerting!.warnings()).toEqual([expect.stringContaining('no receiver takes ticket alerts')]);
  });

  it('with a receiver for every severity: no warning', async () => {
    const log = capture();
    srv = await startTestServer({ alerting: { evaluationIntervalMs: 3_600_000, receivers: [{ name: 'hook', type: 'webhook', url: 'http://127.0.0.1:9/hook' }] } }, { logger: log.logger });
    expect(log.warnings().filter((m) => m.includes('receiver'))).toEqual([]);
    drift(srv).set({ model: 'fraud', version: '1' }, 1);
    await srv.json('POST', '/api/v1/alerts/evaluate');
    expect((await srv.json('GET', '/api/v1/alerts')).body.alerts[0].receivers).toEqual(['hook']);
    const cli = await runWarden(['--url', srv.url, 'alerts', 'list']);
    expect(cli.stderr).not.toContain('warning');
  });
});

describe('a stored silence whose regex RE2 refuses', () => {
  it('is logged once and mutes nothing, instead of failing every evaluation or muting everything', async () => {
    const log = capture();
    srv = await startTestServer({ alerting: { evaluationIntervalMs: 3_600_000 } }, { logger: log.logger });
    const now = Date.now();
    // As a version that compiled matchers with JavaScript's RegExp could have stored it (a lookahead).
    await srv.warden.stores.metadata.saveSilence({
      id: 'legacy-1',
      matchers: [{ name: 'deployment', value: '(?!churn).*', isRegex: true, isEqual: true }],
      startsAt: now - 1000,
      endsAt: now + 3_600_000,
      createdBy: 'ana',
      comment: 'old',
      createdAt: now - 1000,
      updatedAt: now - 1000,
    });
    drift(srv).set({ model: 'fraud', version: '1' }, 1);
    for (let i = 0; i < 2; i++) expect((await srv.json('POST', '/api/v1/alerts/evaluate')).status).toBe(200);
    expect((await srv.json('GET', '/api/v1/alerts')).body.alerts[0]).toMatchObject({ status: 'firing', silencedBy: [] });
    const logged = log.warnings().filter((m) => m.includes('silence legacy-1'));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('the silence mutes nothing until it is replaced');
  });
});
