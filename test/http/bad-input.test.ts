/**
 * Bad input found by hand and by the route fuzz, each pinned: a repeated query parameter is a 400 naming it (it used
 * to reach the store as an array: 500), and a label nested 10,000 levels deep is one invalid item of its call, the
 * valid labels of the same call stored (the whole call used to fail with 500, storing none).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('bad input that used to answer 500', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer();
  });
  afterAll(() => srv.close());

  for (const url of ['/api/v1/predictions?model=a&model=b', '/api/v1/labels/stats?model=a&model=b', '/api/v1/predictions?requestId=1&requestId=2', '/api/v1/review/items?model=a&model=b']) {
    it(`GET ${url}: 400 naming the repeated parameter`, async () => {
      const res = await srv.json('GET', url);
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('WARDEN_BAD_REQUEST');
      expect(res.body.error).toMatch(/query parameter "(model|requestId)" is given 2 times; give it once/);
    });
  }

  it('a label nested 10,000 levels deep is reported by index; the valid labels of the call are stored', async () => {
    const deep = `${'['.repeat(10_000)}1${']'.repeat(10_000)}`;
    const body = `{"labels":[{"requestId":"r1","value":1},{"requestId":"r2","value":${deep}},{"key":"k1","value":"x","extra":${deep}}]}`;
    const res = await srv.json('POST', '/api/v1/labels', body);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: 2, invalid: 1, errors: [{ index: 1, error: 'value must be a number, string or boolean, got an array' }] });
    const stats = await srv.json('GET', '/api/v1/labels/stats');
    expect(stats.status).toBe(200);
    expect(JSON.stringify(stats.body)).toMatch(/"unmatched":2/);
  });
});
