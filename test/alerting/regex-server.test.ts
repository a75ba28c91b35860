/**
 * A silence with a pathological regex on a real Warden (startTestServer): the evaluation that matches it against a
 * firing alert's labels must not hold the event loop, so health checks keep answering. With JavaScript's
 * backtracking RegExp, `deployment=~(a|a)*b` against a 30-character deployment took seconds per evaluation (twice
 * as long per extra character: about an hour at 40); RE2 takes microseconds.
 */
import type { Gauge } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const DEPLOYMENT = 'a'.repeat(30);

describe('caller regexes cannot stall the server', () => {
  let srv: TestServer;

  beforeAll(async () => {
    // Evaluations only when the test asks (POST /api/v1/alerts/evaluate).
    srv = await startTestServer({ alerting: { evaluationIntervalMs: 3_600_000 } });
    const drift = srv.warden.metrics.registry.getSingleMetric('warden_dataset_drift') as Gauge<'model' | 'version'>;
    drift.set({ model: DEPLOYMENT, version: '1' }, 1);
  });
  afterAll(() => srv?.close());

  it('a silence deployment=~(a|a)*b is matched during an evaluation while /v2/health/live answers at once', async () => {
    const created = await srv.json('POST', '/api/v1/alerts/silences', { matchers: ['deployment=~(a|a)*b'], duration: '1h', createdBy: 'ana', comment: 'regex drill' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);

    let evaluated = false;
    const evaluation = srv.json('POST', '/api/v1/alerts/evaluate').finally(() => {
      evaluated = true;
    });
    const health: number[] = [];
    // Health checks back to back until the evaluation has answered (at least a few, however fast it is).
    while (!evaluated || health.length < 5) {
      const t0 = performance.now();
      const r = await srv.json('GET', '/v2/health/live');
      health.push(performance.now() - t0);
      expect(r.status).toBe(200);
    }
    const ev = await evaluation;
    expect(ev.status).toBe(200);
    expect(Math.max(...health), `health check latencies (ms): ${health.map((x) => x.toFixed(1)).join(', ')}`).toBeLessThan(250);

    // The regex was really matched: the drift alert fires, not silenced (the value does not end in b)…
    const alerts = (await srv.json('GET', `/api/v1/alerts?deployment=${DEPLOYMENT}`)).body.alerts;
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ alertname: 'WardenDataDrift', status: 'firing', silencedBy: [] });
    // …and a silence whose regex does cover it mutes it.
    const covering = await srv.json('POST', '/api/v1/alerts/silences', { matchers: ['deployment=~(a|a)+'], duration: '1h', createdBy: 'ana', comment: 'regex drill' });
    expect(covering.status).toBe(201);
    await srv.json('POST', '/api/v1/alerts/evaluate');
    expect((await srv.json('GET', `/api/v1/alerts?deployment=${DEPLOYMENT}`)).body.alerts[0]).toMatchObject({ status: 'silenced', silencedBy: [covering.body.id] });
  });

  it('refuses a silence whose regex RE2 cannot run, or a mistyped operator, with a 400 that says what to write', async () => {
    const look = await srv.json('POST', '/api/v1/alerts/silences', { matchers: ['deployment=~(?!x).*'], duration: '1h', createdBy: 'ana', comment: 'c' });
    expect(look.status).toBe(400);
    expect(look.body.code).toBe('WARDEN_BAD_REQUEST');
    expect(look.body.error).toContain('matchers[0]: matcher deployment=~"(?!x).*": invalid regular expression');
    expect(look.body.error).toContain('lookaround');
    const typo = await srv.json('POST', '/api/v1/alerts/silences', { matchers: ['deployment==fraud'], duration: '1h', createdBy: 'ana', comment: 'c' });
    expect(typo.status).toBe(400);
    expect(typo.body.error).toContain('Did you mean deployment=fraud?');
    const long = await srv.json('POST', '/api/v1/alerts/silences', { matchers: [`deployment=~${'x'.repeat(2000)}`], duration: '1h', createdBy: 'ana', comment: 'c' });
    expect(long.status).toBe(400);
    expect(long.body.error).toContain('at most 1024 are allowed');
  });
});
