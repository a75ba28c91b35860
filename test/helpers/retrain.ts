/** What the retraining tests share: a linear 2011 bike model as `bike`'s champion, then real 2012 hours served and labelled. */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { expect } from 'vitest';
import { BIKE_SHARING_CSV, bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { BIKE_FEATURES } from './rollouts.ts';
import type { TestServer } from './server.ts';

export const ROWS_2012 = (parse(readFileSync(BIKE_SHARING_CSV), { columns: true }) as Record<string, string>[]).filter((r) => r.yr === '1');

/** Pushes the model, serves `rows` (2012 hours, in order) with a key each, `perRequest` at a time, and labels every one with its count. */
export async function seedLabelledBike(srv: TestServer, rows: readonly Record<string, string>[], perRequest: number, model = 'bike'): Promise<void> {
  const { onnx } = await train(bikeSharingDemoOptions('linear'));
  const res = await fetch(`${srv.url}/api/v1/models/${model}/versions?alias=champion`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(onnx) });
  expect(res.status).toBe(201);
  await srv.warden.table.settled();
  const labels: { key: string; value: number }[] = [];
  for (let i = 0; i < rows.length; i += perRequest) {
    const chunk = rows.slice(i, i + perRequest);
    const keys = chunk.map((r) => `h-${r.instant}`);
    const r = await srv.json('POST', `/v1/models/${model}:predict`, { instances: chunk.map((row) => Object.fromEntries(BIKE_FEATURES.map((f) => [f, Number(row[f])]))), parameters: { keys } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    chunk.forEach((row, j) => labels.push({ key: keys[j]!, value: Number(row.cnt) }));
  }
  await srv.warden.log!.flush();
  const posted = await srv.json('POST', '/api/v1/labels', { labels });
  expect(posted.body).toMatchObject({ accepted: labels.length, unmatched: 0 });
}
