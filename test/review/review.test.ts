/**
 * The human review queue end to end on a real server: bike_busy_logreg (a logistic regression, output
 * `probability` = P(busy) [N,1]) as champion; policies over HTTP; the request-path flag on OIP and `:predict`
 * responses checked against the returned probabilities; items written after the prediction log flushes;
 * the active-learning sample (share, determinism across servers, diversity); claim / 409 / label; the label
 * reaching the labels store when the event store has one; queue metrics and the queue bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { CLAIM_TTL_MS } from '../../src/lifecycle/index.ts';
import { repoRoot, fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';

interface Probe {
  features: string[];
  input: number[][];
  output: number[];
}
const MODEL = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const probe = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.expected.json'), 'utf8')) as Probe;
const FEATURES = probe.features.map((name) => ({ name, datatype: 'FP32' }));

/** OIP's inference_response schema: a flagged response must still be a valid one. */
const SPEC_ID = 'https://warden.test/open_inference_rest.yaml';
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addSchema(parseYaml(readFileSync(path.join(fixturesDir, 'open-inference-protocol', 'open_inference_rest.yaml'), 'utf8')) as object, SPEC_ID);
const inferenceResponse = ajv.getSchema(`${SPEC_ID}#/components/schemas/inference_response`)!;

/** Rows of the 2011 bike-sharing hours in the model's feature order (distinct inputs for the active-learning sample). */
function bikeRows(n: number): number[][] {
  const [header, ...lines] = readFileSync(path.join(repoRoot, 'data', 'bike-sharing', 'hour.csv'), 'utf8').trim().split('\n');
  const cols = header!.split(',');
  const index = probe.features.map((f) => cols.indexOf(f));
  return lines.slice(0, n).map((l) => {
    const cells = l.split(',');
    return index.map((i) => Number(cells[i]));
  });
}

async function push(srv: TestServer, name: string): Promise<void> {
  const res = await fetch(`${srv.url}/api/v1/models/${name}/versions?alias=champion`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'x-warden-features': JSON.stringify(FEATURES) },
    body: MODEL,
  });
  expect(res.status, await res.clone().text()).toBe(201);
}

const inferBody = (rows: number[][]) => ({ inputs: [{ name: 'input', shape: [rows.length, 12], datatype: 'FP32', data: rows.flat() }] });

async function infer(srv: TestServer, model: string, rows: number[][], requestId?: string) {
  const res = await srv.json('POST', `/v2/models/${model}/infer`, inferBody(rows), requestId ? { 'x-request-id': requestId } : {});
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res;
}

/** Writes what the prediction log holds and waits for the review queue's writes. */
async function flushed(srv: TestServer): Promise<void> {
  await srv.warden.log!.flush();
  await srv.warden.review.settled();
}

const lowRows = (probs: number[], threshold: number) => probs.flatMap((p, i) => (Math.max(p, 1 - p) < threshold ? [i] : []));

async function metric(srv: TestServer, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = (await (await fetch(`${srv.url}/metrics`)).text()).split('\n');
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.find((l) => l.startsWith(`${name}{`) && want.every((w) => l.includes(w)));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('human review queue', () => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 } });
    for (const m of ['busy', 'busy-al', 'busy-dup', 'busy-bound', 'busy-plain']) await push(srv, m);
  });
  afterAll(async () => srv?.close());

  it('without a policy responses carry no review key and nothing is queued', async () => {
    const oip = await infer(srv, 'busy-plain', probe.input);
    expect(oip.body).not.toHaveProperty('parameters');
    const predict = await srv.json('POST', '/v1/models/busy-plain:predict', { instances: probe.input.map((r) => Object.fromEntries(probe.features.map((f, j) => [f, r[j]]))) });
    expect(predict.status).toBe(200);
    expect(predict.body).not.toHaveProperty('review');
    await flushed(srv);
    expect((await srv.json('GET', '/api/v1/review/items?model=busy-plain')).body.items).toEqual([]);
  });

  it('sets, reads and deletes a policy; refuses bad ones with the reason', async () => {
    const put = await srv.json('PUT', '/api/v1/models/busy/review-policy', { confidenceThreshold: 0.7 });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body).toMatchObject({ model: 'busy', confidenceThreshold: 0.7, maxQueue: 10_000 });
    expect((await srv.json('GET', '/api/v1/models/busy/review-policy')).body).toEqual(put.body);

    const bad = await srv.json('PUT', '/api/v1/models/busy/review-policy', { confidenceThreshold: 0.4 });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('WARDEN_BAD_REQUEST');
    expect(bad.body.error).toContain('(0.5, 1]');
    const wrongOutput = await srv.json('PUT', '/api/v1/models/busy/review-policy', { confidenceThreshold: 0.7, output: 'nope' });
    expect(wrongOutput.status).toBe(400);
    expect(wrongOutput.body.error).toContain('has no output "nope"; it has probability');
    expect((await srv.json('PUT', '/api/v1/models/ghost/review-policy', { confidenceThreshold: 0.7 })).status).toBe(404);
    expect((await srv.json('GET', '/api/v1/models/busy-plain/review-policy')).body.code).toBe('WARDEN_NOT_FOUND');

    await srv.json('PUT', '/api/v1/models/busy-plain/review-policy', { confidenceThreshold: 0.99 });
    expect((await srv.json('DELETE', '/api/v1/models/busy-plain/review-policy')).status).toBe(204);
    expect((await srv.json('DELETE', '/api/v1/models/busy-plain/review-policy')).status).toBe(404);
    expect((await infer(srv, 'busy-plain', probe.input)).body).not.toHaveProperty('parameters');
  });

  it('flags exactly the rows below the threshold on OIP and :predict responses, then queues them as low_confidence', async () => {
    const oip = await infer(srv, 'busy', probe.input, 'review-oip-1');
    const probs = oip.body.outputs[0].data as number[];
    const expected = lowRows(probs, 0.7);
    expect(expected.length).toBeGreaterThan(5);
    expect(expected.length).toBeLessThan(probs.length);
    expect(oip.body.parameters).toEqual({ review: { rows: expected, reason: 'low_confidence' } });
    expect(inferenceResponse(oip.body), JSON.stringify(inferenceResponse.errors)).toBe(true);

    const instances = probe.input.slice(0, 20).map((r) => Object.fromEntries(probe.features.map((f, j) => [f, r[j]])));
    const predict = await srv.json('POST', '/v1/models/busy:predict', { instances }, { 'x-request-id': 'review-predict-1' });
    expect(predict.status).toBe(200);
    expect(predict.body.review).toEqual({ rows: lowRows(predict.body.predictions, 0.7), reason: 'low_confidence' });

    // A request whose rows are all confident gets no key at all.
    const confident = probe.input.filter((_, i) => !expected.includes(i)).slice(0, 5);
    expect((await infer(srv, 'busy', confident)).body).not.toHaveProperty('parameters');

    await flushed(srv);
    const listed = await srv.json('GET', '/api/v1/review/items?model=busy&status=open&limit=1000');
    expect(listed.status).toBe(200);
    const fromOip = listed.body.items.filter((i: any) => i.requestId === 'review-oip-1');
    expect(fromOip.map((i: any) => i.row)).toEqual(expected);
    for (const i of fromOip) {
      expect(i).toMatchObject({ model: 'busy', version: 1, reason: 'low_confidence', status: 'open', prediction: { probability: probs[i.row] } });
      expect(i.confidence).toBeCloseTo(Math.max(probs[i.row]!, 1 - probs[i.row]!), 12);
      // Inputs by feature name (the version has named features); FP32 values as the model saw them.
      expect(Object.keys(i.inputs)).toEqual(probe.features);
      expect(i.inputs.hr).toBe(probe.input[i.row]![3]);
    }
    const fromPredict = listed.body.items.filter((i: any) => i.requestId === 'review-predict-1');
    expect(fromPredict.map((i: any) => i.row)).toEqual(predict.body.review.rows);
    expect(listed.body.nextCursor).toBe(String(listed.body.items.at(-1).id));
  });

  it('claims, refuses a second reviewer with 409, labels, and forwards the label to the labels store when it has one', async () => {
    const [item] = (await srv.json('GET', '/api/v1/review/items?model=busy&status=open&limit=1')).body.items;
    const claim = await srv.json('POST', `/api/v1/review/items/${item.id}/claim`, { reviewer: 'ann' });
    expect(claim.status).toBe(200);
    expect(claim.body).toMatchObject({ id: item.id, status: 'claimed', claimedBy: 'ann' });
    const other = await srv.json('POST', `/api/v1/review/items/${item.id}/claim`, { reviewer: 'bob' });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('WARDEN_CONFLICT');
    expect(other.body.error).toContain('claimed by ann until');
    expect((await srv.json('POST', `/api/v1/review/items/${item.id}/label`, { value: 1, reviewer: 'bob' })).status).toBe(409);
    expect((await srv.json('GET', '/api/v1/review/items?model=busy&status=claimed')).body.items.map((i: any) => i.id)).toEqual([item.id]);

    const label = await srv.json('POST', `/api/v1/review/items/${item.id}/label`, { value: 1, reviewer: 'ann' });
    expect(label.status, JSON.stringify(label.body)).toBe(200);
    expect(label.body.item).toMatchObject({ id: item.id, status: 'labelled', label: 1, labelledBy: 'ann' });
    const events = srv.warden.stores.events as unknown as { appendLabels?: unknown; labelStats?: (q: { model: string }) => Promise<{ bySource: Record<string, number> }> };
    if (typeof events.appendLabels === 'function') {
      expect(label.body.forwarded, label.body.forwardError).toBe(true);
      if (typeof events.labelStats === 'function') expect((await events.labelStats({ model: 'busy' })).bySource.human).toBe(1);
    } else {
      expect(label.body).toMatchObject({ forwarded: false, forwardError: expect.stringContaining('does not take labels') });
    }
    expect((await srv.json('POST', `/api/v1/review/items/${item.id}/label`, { value: 0, reviewer: 'ann' })).status).toBe(409);
    expect((await srv.json('POST', `/api/v1/review/items/${item.id}/claim`, { reviewer: 'bob' })).status).toBe(409);
    expect((await srv.json('GET', `/api/v1/review/items/${item.id}`)).body.status).toBe('labelled');
    expect((await srv.json('GET', '/api/v1/review/items?model=busy&status=labelled')).body.items.map((i: any) => i.id)).toEqual([item.id]);
  });

  it('GET /api/v1/review/queues counts every model’s queue as listing per status does; items carry claimExpiresAt', async () => {
    const res = await srv.json('GET', '/api/v1/review/queues');
    expect(res.status).toBe(200);
    expect(res.body.claimTtlMs).toBe(CLAIM_TTL_MS);
    const busy = res.body.queues.find((q: any) => q.model === 'busy');
    expect(busy.policy).toEqual((await srv.json('GET', '/api/v1/models/busy/review-policy')).body);
    for (const status of ['open', 'claimed', 'labelled']) {
      const listed = (await srv.json('GET', `/api/v1/review/items?model=busy&status=${status}&limit=1000`)).body.items;
      expect(busy[status], status).toBe(listed.length);
      if (status === 'open') expect(busy.oldestOpenAt).toBe(listed[0]?.createdAt ?? null);
      for (const i of listed) expect(i.claimExpiresAt, `item ${i.id}`).toBe(status === 'claimed' ? i.claimedAt + CLAIM_TTL_MS : null);
    }
    const [item] = (await srv.json('GET', '/api/v1/review/items?model=busy&status=open&limit=1')).body.items;
    const claim = await srv.json('POST', `/api/v1/review/items/${item.id}/claim`, { reviewer: 'queue-test' });
    expect(claim.body.claimExpiresAt).toBe(claim.body.claimedAt + CLAIM_TTL_MS);
    expect((await srv.json('GET', `/api/v1/review/items/${item.id}`)).body.claimExpiresAt).toBe(claim.body.claimExpiresAt);
    const after = (await srv.json('GET', '/api/v1/review/queues')).body.queues.find((q: any) => q.model === 'busy');
    expect(after).toMatchObject({ open: busy.open - 1, claimed: busy.claimed + 1, labelled: busy.labelled });
    const label = await srv.json('POST', `/api/v1/review/items/${item.id}/label`, { value: 0, reviewer: 'queue-test' });
    expect(label.body.item.claimExpiresAt).toBeNull();
  });

  it('validates item ids, bodies and filters', async () => {
    expect((await srv.json('POST', '/api/v1/review/items/999999/claim', { reviewer: 'ann' })).status).toBe(404);
    expect((await srv.json('POST', '/api/v1/review/items/abc/claim', { reviewer: 'ann' })).status).toBe(400);
    const [item] = (await srv.json('GET', '/api/v1/review/items?model=busy&status=open&limit=1')).body.items;
    expect((await srv.json('POST', `/api/v1/review/items/${item.id}/claim`, {})).body.code).toBe('WARDEN_BAD_REQUEST');
    expect((await srv.json('POST', `/api/v1/review/items/${item.id}/label`, { value: null, reviewer: 'ann' })).status).toBe(400);
    expect((await srv.json('POST', `/api/v1/review/items/${item.id}/label`, { value: { a: 1 }, reviewer: 'ann' })).status).toBe(400);
    expect((await srv.json('GET', '/api/v1/review/items?status=done')).status).toBe(400);
    expect((await srv.json('GET', '/api/v1/review/items?limit=0')).status).toBe(400);
  });

  it('exports queue depth, oldest age and items per reason; depth drops when an item is labelled', async () => {
    const all = (await srv.json('GET', '/api/v1/review/items?model=busy&limit=1000')).body.items;
    const open = all.filter((i: any) => i.status === 'open');
    expect(await metric(srv, 'warden_review_queue_depth', { model: 'busy' })).toBe(all.filter((i: any) => i.status !== 'labelled').length);
    expect(await metric(srv, 'warden_review_oldest_age_seconds', { model: 'busy' })).toBeGreaterThanOrEqual(0);
    expect(await metric(srv, 'warden_review_items_total', { model: 'busy', reason: 'low_confidence' })).toBe(all.length);
    const depth = (await metric(srv, 'warden_review_queue_depth', { model: 'busy' }))!;
    await srv.json('POST', `/api/v1/review/items/${open[0].id}/label`, { value: 0, reviewer: 'ann' });
    expect(await metric(srv, 'warden_review_queue_depth', { model: 'busy' })).toBe(depth - 1);
  });

  it('bounds the queue at maxQueue and counts what it drops', async () => {
    await srv.json('PUT', '/api/v1/models/busy-bound/review-policy', { confidenceThreshold: 1, maxQueue: 5 });
    const res = await infer(srv, 'busy-bound', probe.input);
    expect(res.body.parameters.review.rows).toHaveLength(probe.input.length);
    await flushed(srv);
    expect((await srv.json('GET', '/api/v1/review/items?model=busy-bound')).body.items).toHaveLength(5);
    expect(await metric(srv, 'warden_review_items_total', { model: 'busy-bound', reason: 'low_confidence' })).toBe(5);
    expect(await metric(srv, 'warden_review_dropped_total', { model: 'busy-bound', reason: 'queue_full' })).toBe(probe.input.length - 5);
  });

  it('skips near-duplicate inputs in the active-learning sample', async () => {
    await srv.json('PUT', '/api/v1/models/busy-dup/review-policy', { sampleRate: 1 });
    const same = Array.from({ length: 50 }, () => probe.input[0]!);
    const res = await infer(srv, 'busy-dup', same, 'dup-1');
    expect(res.body).not.toHaveProperty('parameters');
    await flushed(srv);
    const items = (await srv.json('GET', '/api/v1/review/items?model=busy-dup')).body.items;
    expect(items.map((i: any) => [i.requestId, i.row, i.reason])).toEqual([['dup-1', 0, 'active_learning']]);
  });
});

describe('active-learning sample on a real server', () => {
  const rows = bikeRows(3000);
  const REQUESTS = 15;
  const PER = rows.length / REQUESTS;

  /** A fresh server with sampleRate 0.1 fed the same 15 requests of 200 bike-sharing hours; returns the picked rows. */
  async function sample(): Promise<{ picks: string[]; probs: Map<string, number> }> {
    const srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 } });
    try {
      await push(srv, 'busy');
      expect((await srv.json('PUT', '/api/v1/models/busy/review-policy', { sampleRate: 0.1 })).status).toBe(200);
      const probs = new Map<string, number>();
      for (let q = 0; q < REQUESTS; q++) {
        const res = await infer(srv, 'busy', rows.slice(q * PER, (q + 1) * PER), `al-${q}`);
        expect(res.body).not.toHaveProperty('parameters');
        (res.body.outputs[0].data as number[]).forEach((p, r) => probs.set(`al-${q}#${r}`, p));
      }
      await flushed(srv);
      const items = (await srv.json('GET', '/api/v1/review/items?model=busy&limit=1000')).body.items;
      expect(items.every((i: any) => i.reason === 'active_learning')).toBe(true);
      return { picks: items.map((i: any) => `${i.requestId}#${i.row}`), probs };
    } finally {
      await srv.close();
    }
  }

  it('picks about sampleRate of the rows, prefers uncertain ones, and picks the same rows on another server', async () => {
    const a = await sample();
    const b = await sample();
    expect(b.picks).toEqual(a.picks);
    const share = a.picks.length / rows.length;
    expect(share).toBeGreaterThan(0.06);
    expect(share).toBeLessThan(0.14);
    const u = (p: number) => 1 - Math.abs(2 * p - 1);
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean(a.picks.map((k) => u(a.probs.get(k)!)))).toBeGreaterThan(1.2 * mean([...a.probs.values()].map(u)));
  });
});
