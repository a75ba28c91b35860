/**
 * An SLO on a deployment that is not a registered model measures nothing (SLI 100%, never burning). Through the
 * API that is almost always a typo, so it is refused (404 naming the deployment and how to list models); in the
 * SLO file it may lead its model, so it is kept and logged at warn, and its status carries a warning the CLI prints.
 * Checked with SloService on a real Warden's registry and event store.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusText } from '../../src/cli/slo.ts';
import { SloService } from '../../src/slo/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

function capture() {
  const warnings: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) warnings.push((JSON.parse(l) as { msg: string }).msg);
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), warnings };
}

describe('SLOs on deployments that are not registered models', () => {
  let srv: TestServer;
  const services: SloService[] = [];

  beforeAll(async () => {
    srv = await startTestServer();
    await srv.warden.registry.push({ model: 'busy', bytes: readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx')), aliases: ['champion'] });
  });
  afterAll(async () => {
    for (const s of services) await s.stop();
    await srv?.close();
  });

  async function slo(file: string, logger = pino({ level: 'silent' })): Promise<SloService> {
    const s = new SloService({
      events: srv.warden.stores.events,
      logger,
      file: path.join(srv.dataDir, file),
      timeScale: 1,
      retentionDays: 35,
      tickMs: 600_000,
      modelNames: async () => (await srv.warden.registry.listModels()).map((m) => m.name),
    });
    await s.start();
    services.push(s);
    return s;
  }

  it('an API write naming an unknown deployment is refused (404), naming it, the models there are and how to list them', async () => {
    const s = await slo('api.yaml');
    const put = s.put('bussy-availability', { deployment: 'bussy', sli: { kind: 'availability' }, objective: 0.999, period: '30d' });
    await expect(put).rejects.toMatchObject({ code: 'WARDEN_MODEL_NOT_FOUND', status: 404 });
    const message = await put.catch((e: Error) => e.message);
    expect(message).toContain('SLO bussy-availability: deployment bussy is not a registered model, so the SLO would count no events');
    expect(message).toContain("Registered models: busy (list them with 'warden models list' or GET /api/v1/models)");
    expect(message).toContain(`define an SLO ahead of its model in ${path.join(srv.dataDir, 'api.yaml')}`);
    expect(s.list()).toEqual([]);
    // A registered one is accepted as before.
    expect((await s.put('busy-availability', { deployment: 'busy', sli: { kind: 'availability' }, objective: 0.999, period: '30d' })).created).toBe(true);
  });

  it('the SLO file may lead its model: kept, logged once at start, and flagged in its status (printed by the CLI)', async () => {
    writeFileSync(
      path.join(srv.dataDir, 'file.yaml'),
      'slos:\n  - { name: fraud-availability, deployment: fraud, sli: { kind: availability }, objective: 0.999, period: 30d }\n  - { name: busy-latency, deployment: busy, sli: { kind: latency, thresholdMs: 25 }, objective: 0.99, period: 30d }\n',
    );
    const log = capture();
    const s = await slo('file.yaml', log.logger);
    expect(s.list().map((x) => x.name)).toEqual(['fraud-availability', 'busy-latency']);
    expect(log.warnings).toEqual([
      "SLO fraud-availability: deployment fraud is not a registered model; the SLO counts no events (SLI 100%, never burning) until a model of that name is pushed (list models with 'warden models list')",
    ]);
    const st = await s.status('fraud-availability');
    expect(st.warnings).toEqual([expect.stringContaining('deployment fraud is not a registered model')]);
    expect(statusText(st)).toContain('  warning: SLO fraud-availability: deployment fraud is not a registered model');
    expect((await s.status('busy-latency')).warnings).toBeUndefined();

    // Once the model is pushed the warning goes.
    await srv.warden.registry.push({ model: 'fraud', bytes: readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx')) });
    expect((await s.status('fraud-availability')).warnings).toBeUndefined();
  });
});
