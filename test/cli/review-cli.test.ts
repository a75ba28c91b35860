/**
 * `warden review …` end to end: the real binary (`node bin/warden.js`) against a server started here with
 * bike_busy_logreg as champion. Sets the policy, lists the items a batch of low-confidence rows queued,
 * claims (and is refused a second claim: exit 2, one `warden:` line) and labels them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { labelValue } from '../../src/cli/review.ts';
import { fixturesDir, startTestServer, type TestServer } from '../helpers/server.ts';
import { runWarden } from '../helpers/cli.ts';

const MODEL = readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.onnx'));
const probe = JSON.parse(readFileSync(path.join(fixturesDir, 'models', 'bike_busy_logreg.expected.json'), 'utf8')) as { input: number[][] };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const warden = (args: string[]) => runWarden(args);

describe('label values typed on the command line', () => {
  it('reads numbers and booleans as JSON values, anything else (or --string) as text', () => {
    expect(labelValue('1')).toBe(1);
    expect(labelValue('-0.5')).toBe(-0.5);
    expect(labelValue('1e3')).toBe(1000);
    expect(labelValue('true')).toBe(true);
    expect(labelValue('busy')).toBe('busy');
    expect(labelValue('1', true)).toBe('1');
  });
});

describe('warden review', () => {
  let srv: TestServer;
  let cli: (...args: string[]) => Promise<Result>;

  beforeAll(async () => {
    srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 } });
    cli = (...args) => warden(['--url', srv.url, ...args]);
    const res = await fetch(`${srv.url}/api/v1/models/busy/versions?alias=champion`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: MODEL,
    });
    expect(res.status).toBe(201);
  });
  afterAll(async () => srv?.close());

  it('policy sets and shows the policy; a bad threshold exits 2 with one line', async () => {
    const set = await cli('review', 'policy', 'busy', '--confidence', '0.7', '--sample-rate', '0');
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('review policy of busy');
    expect(set.stdout).toMatch(/^confidence threshold: 0\.7$/m);
    const shown = await cli('--json', 'review', 'policy', 'busy');
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ model: 'busy', confidenceThreshold: 0.7, sampleRate: 0, maxQueue: 10_000 });
    const bad = await cli('review', 'policy', 'busy', '--confidence', '0.2');
    expect(bad.code).toBe(2);
    expect(bad.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^warden: PUT \/api\/v1\/models\/busy\/review-policy → 400: WARDEN_BAD_REQUEST: confidenceThreshold must be/);
  });

  it('lists queued items, claims one, is refused a second claim, and labels it', async () => {
    const infer = await srv.json('POST', '/v2/models/busy/infer', { inputs: [{ name: 'input', shape: [probe.input.length, 12], datatype: 'FP32', data: probe.input.flat() }] }, { 'x-request-id': 'cli-req' });
    const flagged = infer.body.parameters.review.rows as number[];
    await srv.warden.log!.flush();
    await srv.warden.review.settled();

    const list = await cli('review', 'list', '--model', 'busy', '--status', 'open');
    expect(list.code, list.stderr).toBe(0);
    const [header, ...lines] = list.stdout.trimEnd().split('\n');
    expect(header!.split(/\s+/)).toEqual(['ID', 'MODEL', 'STATUS', 'REASON', 'CONFIDENCE', 'REQUEST', 'CREATED', 'REVIEWER', 'LABEL']);
    expect(lines).toHaveLength(flagged.length);
    const [id, name, version, status, reason, , request] = lines[0]!.split(/\s+/) as string[];
    expect([name, version, status, reason, request]).toEqual(['busy', 'v1', 'open', 'low_confidence', `cli-req#${flagged[0]}`]);

    const claim = await cli('review', 'claim', id!, '--reviewer', 'ann');
    expect(claim.code, claim.stderr).toBe(0);
    expect(claim.stdout).toMatch(new RegExp(`^claimed item ${id} for ann$`, 'm'));
    const again = await cli('review', 'claim', id!, '--reviewer', 'bob');
    expect(again.code).toBe(2);
    expect(again.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/^warden: POST .* → 409: WARDEN_CONFLICT: review item \d+ is claimed by ann until /);

    const label = await cli('review', 'label', id!, '1', '--reviewer', 'ann');
    expect(label.code, label.stderr).toBe(0);
    expect(label.stdout).toMatch(new RegExp(`^labelled item ${id} as 1 \\(ann\\)$`, 'm'));
    const labelled = JSON.parse((await cli('--json', 'review', 'list', '--status', 'labelled')).stdout) as { items: { id: number; label: unknown; labelledBy: string }[] };
    expect(labelled.items).toEqual([expect.objectContaining({ id: Number(id), label: 1, labelledBy: 'ann' })]);
  });

  it('label without --reviewer is a usage error; a missing item exits 2', async () => {
    const usage = await cli('review', 'label', '1', '1');
    expect(usage.code).toBe(1);
    expect(usage.stderr).toContain("required option '--reviewer <name>' not specified");
    const missing = await cli('review', 'claim', '999999', '--reviewer', 'ann');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^warden: POST .* → 404: WARDEN_NOT_FOUND: no review item 999999\n$/);
  });
});
