/**
 * `warden labels import` and `warden labels stats` end to end: the real binary (`node bin/warden.js`) against a
 * server started in this process. The import streams the CSV in requests of 5000 labels.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';
import { runWarden } from '../helpers/cli.ts';

const modelBytes = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));


const warden = (args: string[]) => runWarden(args);

describe('warden labels', () => {
  let srv: TestServer;
  let tmp: string;
  const cli = (...args: string[]) => warden(['--url', srv.url, ...args]);

  beforeAll(async () => {
    srv = await startTestServer();
    tmp = mkdtempSync(path.join(tmpdir(), 'warden-labels-cli-'));
    const push = await fetch(`${srv.url}/api/v1/models/m/versions`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: modelBytes });
    expect(push.status).toBe(201);
    // Two logged requests: one of 3 rows by request id, one of 2 rows with caller keys.
    const infer = (rows: number, requestId: string, keys?: string[]) =>
      srv.json(
        'POST',
        '/v2/models/m/infer',
        { inputs: [{ name: 'input', shape: [rows, 12], datatype: 'FP32', data: new Array(rows * 12).fill(0.5) }], ...(keys ? { parameters: { keys } } : {}) },
        { 'x-request-id': requestId },
      );
    expect((await infer(3, 'cli-req')).status).toBe(200);
    expect((await infer(2, 'cli-keys', ['ck-0', 'ck-1'])).status).toBe(200);
    await srv.warden.log!.flush();
  });
  afterAll(async () => {
    await srv?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('imports a CSV in chunks of 5000, shows progress on stderr and prints the totals', async () => {
    const lines = ['request_id,key,row,label,ts'];
    lines.push('cli-req,,0,1,', 'cli-req,,2,0,2024-06-01T00:00:00Z', ',ck-1,,1,', 'cli-req,,9,1,', 'cli-req,,1,not-a-number-but-fine,');
    // Labels for predictions not logged yet: stored unmatched.
    for (let i = 0; i < 11_995; i++) lines.push(`,future-${i},,${i % 2},`);
    const file = path.join(tmp, 'labels.csv');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const r = await cli('labels', 'import', file);
    expect(r.code, r.stderr).toBe(0);
    // Three requests: 5000 + 5000 + 2000, each reported.
    expect(r.stderr).toMatch(/labels: 5000 sent/);
    expect(r.stderr).toMatch(/labels: 10000 sent/);
    expect(r.stderr).toMatch(/labels: 12000 sent, 11999 accepted, 1 invalid/);
    // The invalid row is named by its line in the file (header = line 1).
    expect(r.stderr).toMatch(/line 5: row 9 is out of range/);
    expect(r.stdout).toMatch(/12000 labels/);
    expect(r.stdout).toMatch(/ACCEPTED\s+DUPLICATES\s+UNMATCHED\s+LATE\s+INVALID/);
    expect(r.stdout).toMatch(/11999\s+0\s+11995\s+0\s+1/);

    const rows = (await srv.json('GET', '/api/v1/models/m/versions/1/labels')).body.rows as any[];
    expect(rows.map((x) => [x.requestId, x.row, x.key, x.label])).toEqual([
      ['cli-req', 0, undefined, 1],
      ['cli-req', 2, undefined, 0],
      ['cli-keys', 1, 'ck-1', 1],
      ['cli-req', 1, undefined, 'not-a-number-but-fine'],
    ]);
    expect(rows[1].labelTs).toBe(Date.parse('2024-06-01T00:00:00Z'));
  });

  it('prints the counters with labels stats, also as JSON and per model', async () => {
    const r = await cli('labels', 'stats');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/TOTAL\s+MATCHED\s+UNMATCHED/);
    const all = JSON.parse((await cli('--json', 'labels', 'stats')).stdout);
    expect(all).toMatchObject({ total: 11_999, matched: 4, unmatched: 11_995, bySource: { system: 11_999 } });
    const one = JSON.parse((await cli('--json', 'labels', 'stats', 'm', '1')).stdout);
    expect(one).toMatchObject({ total: 4, matched: 4, unmatched: 0 });
  });

  it('re-importing with other columns and a source counts duplicates', async () => {
    const file = path.join(tmp, 'relabel.csv');
    writeFileSync(file, 'rid,truth\ncli-req,5\n');
    const r = await cli('--json', 'labels', 'import', file, '--request-id-column', 'rid', '--value-column', 'truth', '--source', 'human');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ labels: 1, accepted: 1, duplicates: 1, unmatched: 0, late: 0, invalid: 0 });
    const rows = (await srv.json('GET', '/api/v1/models/m/versions/1/labels')).body.rows as any[];
    expect(rows.find((x) => x.requestId === 'cli-req' && x.row === 0)).toMatchObject({ label: 5, source: 'human' });
  });

  it('exits 2 when every label is invalid, and on a file without the needed columns', async () => {
    const bad = path.join(tmp, 'bad.csv');
    writeFileSync(bad, 'request_id,label\n,1\ncli-req,\n');
    const r = await cli('labels', 'import', bad);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/0\s+0\s+0\s+0\s+2/);
    expect(r.stderr).toMatch(/warden: every label in .* was invalid \(line 2: a label needs requestId/);

    const noValue = path.join(tmp, 'novalue.csv');
    writeFileSync(noValue, 'request_id,y\ncli-req,1\n');
    const r2 = await cli('labels', 'import', noValue);
    expect(r2.code).toBe(2);
    expect(r2.stderr.trim()).toMatch(/^warden: .*no value column "label"; name it with --value-column/);

    const r3 = await cli('labels', 'import', noValue, '--value-column', 'y', '--key-column', 'k');
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/no column "k"/);

    const r4 = await cli('labels', 'import', path.join(tmp, 'missing.csv'));
    expect(r4.code).toBe(2);
    expect(r4.stderr).toMatch(/cannot read .*missing\.csv/);
  });
});
