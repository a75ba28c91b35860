/**
 * The review queue refuses what would silently do nothing: a policy on a regression model (its output is not a
 * probability, so no row would ever be flagged or sampled) and a label that is not one of a binary classifier's
 * labels (live performance reads only 0/1 and booleans, so "yes" would be stored and never count).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

const GBR = readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.onnx'));
const GBR_FEATURES = (JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_gbr.expected.json'), 'utf8')) as { features: string[] }).features;

async function push(srv: TestServer, name: string, bytes: Uint8Array, headers: Record<string, string> = {}): Promise<void> {
  const res = await fetch(`${srv.url}/api/v1/models/${name}/versions?alias=champion`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', ...headers },
    body: Buffer.from(bytes),
  });
  expect(res.status, await res.clone().text()).toBe(201);
}

describe('review guards', () => {
  let srv: TestServer;
  let logistic: Awaited<ReturnType<typeof train>>;

  beforeAll(async () => {
    srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 } });
    logistic = await train(bikeSharingDemoOptions('logistic'));
    await push(srv, 'busy', logistic.onnx);
    await push(srv, 'demand-linear', (await train(bikeSharingDemoOptions('linear'))).onnx);
    await push(srv, 'demand-gbr', GBR, { 'x-warden-features': JSON.stringify(GBR_FEATURES.map((name) => ({ name }))) });
  });
  afterAll(async () => srv?.close());

  it('refuses a policy on a linear model from warden train, naming why', async () => {
    const res = await srv.json('PUT', '/api/v1/models/demand-linear/review-policy', { confidenceThreshold: 0.7 });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('WARDEN_INVALID_INPUT');
    expect(res.body.error).toContain('v1 is served, and it is a linear regression (warden train, params.kind = linear)');
    expect(res.body.error).toContain("Review policies need a binary classifier's P(y = 1)");
    expect((await srv.json('GET', '/api/v1/models/demand-linear/review-policy')).status).toBe(404);
  });

  it('refuses a policy (threshold or sample) on a regressor whose output is named variable', async () => {
    for (const body of [{ confidenceThreshold: 0.7 }, { sampleRate: 0.1 }, { confidenceThreshold: 0.7, output: 'variable' }]) {
      const res = await srv.json('PUT', '/api/v1/models/demand-gbr/review-policy', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toContain('its output "variable" is a regression output');
    }
  });

  it('accepts a policy on the logistic model', async () => {
    expect((await srv.json('PUT', '/api/v1/models/busy/review-policy', { confidenceThreshold: 1 })).status).toBe(200);
  });

  it('refuses a label that is not 0, 1, false or true with 400 naming the allowed labels, and keeps the item open', async () => {
    const k = logistic.features.length;
    const res = await srv.json('POST', '/v2/models/busy/infer', {
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, k], data: logistic.features.map((f) => f.mean) }],
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await srv.warden.log!.flush();
    await srv.warden.review.settled();
    const [item] = (await srv.json('GET', '/api/v1/review/items?model=busy&status=open&limit=1')).body.items;
    expect(item).toBeDefined();
    for (const value of ['yes', '1', 2, 0.5]) {
      const bad = await srv.json('POST', `/api/v1/review/items/${item.id}/label`, { value, reviewer: 'ann' });
      expect(bad.status, JSON.stringify(value)).toBe(400);
      expect(bad.body.code).toBe('WARDEN_BAD_REQUEST');
      expect(bad.body.error).toBe(
        `review item ${item.id} is a prediction of busy, a binary classifier: its label must be one of 0, 1, false, true; got ${JSON.stringify(value)}`,
      );
    }
    expect((await srv.json('GET', `/api/v1/review/items/${item.id}`)).body).toMatchObject({ status: 'open' });
    // The item's existence is checked first: an unknown item is a 404 whatever the value.
    expect((await srv.json('POST', '/api/v1/review/items/999999/label', { value: 'yes', reviewer: 'ann' })).status).toBe(404);
    const ok = await srv.json('POST', `/api/v1/review/items/${item.id}/label`, { value: true, reviewer: 'ann' });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.item).toMatchObject({ status: 'labelled', label: true });
  });
});
