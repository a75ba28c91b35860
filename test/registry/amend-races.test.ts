/**
 * Push amendments, found by review: equal metadata sent with its keys in another order is the same value (it was a
 * 409), and features added while the version is still loading reach the serving table (they were lost).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const logreg = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const gbr = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
const gbrNames = (JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.expected.json'), 'utf8')) as { features: string[] }).features;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('push amendment', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer();
  });
  afterAll(() => srv.close());

  it('the same metadata with its keys in another order is the same value (200, nothing added)', async () => {
    const push = (metadata: unknown) =>
      fetch(`${srv.url}/api/v1/models/order/versions`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'x-warden-metadata': JSON.stringify(metadata) },
        body: logreg,
      });
    const first = await push({ params: { lr: 0.1, depth: 3 }, tags: { team: 'a', env: 'prod' } });
    expect(first.status).toBe(201);
    const again = await push({ params: { depth: 3, lr: 0.1 }, tags: { env: 'prod', team: 'a' } });
    expect(again.status, await again.clone().text()).toBe(200);
    expect(((await again.json()) as { amended: string[] }).amended).toEqual([]);
  });

  it('features added while the version is being loaded reach the serving table: :predict works', async () => {
    // v1 is the default (champion) and warm; v2 loads on its first request.
    await srv.warden.registry.push({ model: 'race', bytes: logreg, aliases: ['champion'] });
    await srv.warden.registry.push({ model: 'race', bytes: gbr });
    await srv.warden.table.settled();
    // A large model: reading its artifact takes a while.
    const registry = srv.warden.registry;
    const read = registry.readArtifact.bind(registry);
    registry.readArtifact = async (v) => {
      await sleep(400);
      return read(v);
    };
    try {
      const loading = srv.warden.table.load('race', 2); // what a request to /v2/models/race/versions/2/infer starts
      const amended = await srv.warden.registry.push({ model: 'race', bytes: gbr, features: gbrNames.map((name) => ({ name, datatype: 'FP32' })) });
      expect(amended.amended).toEqual(['features']);
      await loading;
      await srv.warden.table.settled();
    } finally {
      registry.readArtifact = read;
    }
    expect((await srv.warden.stores.metadata.getVersion('race', 2))?.signature.features).toHaveLength(gbrNames.length);
    expect(srv.warden.table.peek('race', 2)?.record.signature.features).toHaveLength(gbrNames.length);
    const instance = Object.fromEntries(gbrNames.map((n) => [n, 0.5]));
    const res = await srv.json('POST', '/v1/models/race/versions/2:predict', { instances: [instance] });
    expect(res.status).toBe(200);
  });
});
