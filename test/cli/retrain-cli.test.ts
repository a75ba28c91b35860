/**
 * `warden retrain …` end to end: the real binary (`node bin/warden.js`) against a server started here with a linear
 * bike model (trained on 2011) as champion, 600 rows of 2012 served with keys and labelled. Sets policies from JSON and
 * YAML files (a bad one: the server's 400 in one line, exit 2), shows the evaluation, runs a job with --wait until it
 * succeeds (its log streamed once, exit 0) and one the gate rejects (its checks printed, exit 1), lists, shows and
 * prints the log of jobs, is refused cancel and approve of ended jobs (409), cancels a running one and deletes the policy.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogFollower } from '../../src/cli/retrain.ts';
import { runWarden, type CliResult } from '../helpers/cli.ts';
import { ROWS_2012, seedLabelledBike } from '../helpers/retrain.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const ROWS = ROWS_2012.filter((_, i) => i % 10 === 0).slice(0, 600);
const PER_REQUEST = 100;

describe('following a log that keeps only its tail', () => {
  it('prints each complete line once, holds a partial line until it ends, and places a cut log by its dropped count', () => {
    const f = new LogFollower();
    expect(f.next('')).toBe('');
    expect(f.next('a\nb')).toBe('a\n');
    expect(f.next('a\nbc\nd\n')).toBe('bc\nd\n');
    expect(f.next('a\nbc\nd\n')).toBe('');
    // 5 characters cut ("a\nbc\n"): the text continues the same log.
    expect(f.next('[5 earlier characters dropped]\nd\ne\n')).toBe('e\n');
    // More was cut than was read (20 characters, 9 of them printed): said so, then the rest.
    expect(f.next('[20 earlier characters dropped]\nxyz\n')).toBe('[11 characters of the log dropped before they were read]\nxyz\n');
    // The end: the unterminated rest too.
    expect(f.next('[20 earlier characters dropped]\nxyz\ntail', true)).toBe('tail\n');
  });
});

describe('warden retrain', () => {
  let srv: TestServer;
  let dir: string;
  let cli: (...args: string[]) => Promise<CliResult>;
  const file = (name: string, body: unknown) => {
    const p = path.join(dir, name);
    writeFileSync(p, typeof body === 'string' ? body : JSON.stringify(body));
    return p;
  };
  const policy = (gate: unknown) => ({ triggers: { labels: { min: 100_000 } }, data: { minRows: 200 }, train: { trainer: 'linear' }, gate });
  const oneLine = (r: CliResult) => expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  let succeeded: number;
  let rejected: number;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'warden-retrain-cli-'));
    srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 }, retraining: { intervalMs: 3_600_000 } });
    cli = (...args) => runWarden(['--url', srv.url, ...args], {}, 120_000);
    await seedLabelledBike(srv, ROWS, PER_REQUEST);
  }, 120_000);
  afterAll(async () => {
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('policy set: an invalid policy prints the server 400 in one line and exits 2; a valid JSON or YAML file is set and shown', async () => {
    const none = await cli('retrain', 'policy', 'show', 'bike');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^warden: GET \/api\/v1\/deployments\/bike\/retraining → 404: WARDEN_NOT_FOUND: bike has no retraining policy/);

    const bad = await cli('retrain', 'policy', 'set', 'bike', '--file', file('bad.json', policy({ metrics: { accuracy: { threshold: 0.9 } } })));
    expect(bad.code).toBe(2);
    oneLine(bad);
    expect(bad.stderr).toMatch(/^warden: PUT \/api\/v1\/deployments\/bike\/retraining → 400: WARDEN_BAD_REQUEST: retraining policy: gate metric "accuracy" does not apply to a regression task; use mae, rmse, r2\n$/);
    const notJson = await cli('retrain', 'policy', 'set', 'bike', '--file', file('broken.json', '{"triggers":'));
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/^warden: policy file .*broken\.json is not valid JSON: /);

    const yaml = await cli('--json', 'retrain', 'policy', 'set', 'bike', '-f', file('policy.yaml', 'triggers:\n  labels: { min: 100000 }\ndata:\n  minRows: 200\ntrain:\n  trainer: linear\ngate:\n  metrics:\n    mae: { threshold: 50000 }\n'));
    expect(yaml.code, yaml.stderr).toBe(0);
    expect(JSON.parse(yaml.stdout)).toMatchObject({ deployment: 'bike', effective: { task: 'regression', train: { trainer: 'linear' }, gate: { metrics: { mae: { threshold: 50000, greaterIsBetter: false } } } } });

    const set = await cli('retrain', 'policy', 'set', 'bike', '--file', file('good.json', policy({ metrics: { mae: { threshold: 100_000 } } })));
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/^retraining policy of bike \(updated \S+ by anonymous \(auth off\)\)$/m);
    expect(set.stdout).toMatch(/^ {2}enabled, regression; trainer linear$/m);
    expect(set.stdout).toMatch(/^ {2}triggers: labels \(100000 new\)$/m);
    expect(set.stdout).toMatch(/^ {2}guardrails: cooldown 6h, machine labels ≤ 10 %$/m);
    expect(set.stdout).toMatch(/^ {2}gate: signature, mae ≤ 100000$/m);
    expect(set.stdout).toMatch(/^ {2}deploy: shadow$/m);
  }, 120_000);

  it('policy show: each trigger fired or not, each guardrail holding or not, the decision and reason; policy list', async () => {
    const show = await cli('retrain', 'policy', 'show', 'bike');
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^evaluation at \S+ of v1: none — no trigger fired$/m);
    expect(show.stdout).toMatch(/^TRIGGER\s+FIRED\s+DETAIL$/m);
    expect(show.stdout).toMatch(/^labels\s+no\s+\d+ labelled rows; 100000 start one$/m);
    expect(show.stdout).toMatch(/^GUARDRAIL\s+HOLDING\s+DETAIL$/m);
    for (const g of ['enabled', 'one-at-a-time', 'cooldown', 'machine-labels', 'data']) expect(show.stdout).toMatch(new RegExp(`^${g}\\s+(yes|no)\\s+\\S`, 'm'));
    expect(show.stdout).toMatch(/^one-at-a-time\s+no\s+no job is awaiting approval, queued or running$/m);
    const json = JSON.parse((await cli('--json', 'retrain', 'policy', 'show', 'bike')).stdout);
    expect(json.evaluation).toMatchObject({ decision: 'none', version: 1, triggers: [{ trigger: 'labels', fired: false }] });

    const list = await cli('retrain', 'policy', 'list');
    expect(list.code, list.stderr).toBe(0);
    const [header, ...rows] = list.stdout.trimEnd().split('\n');
    expect(header!.split(/\s+/)).toEqual(['DEPLOYMENT', 'UPDATED', 'BY']);
    expect(rows).toEqual([expect.stringMatching(/^bike\s+\S+Z\s+anonymous \(auth off\)$/)]);
  }, 120_000);

  it('start --wait follows the job to success: the job id, its log printed once, what it registered; exit 0', async () => {
    const r = await cli('retrain', 'start', 'bike', '--reason', 'cli test', '--wait');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const id = /^job #(\d+): retraining bike, queued$/m.exec(r.stdout);
    expect(id, r.stdout).not.toBeNull();
    succeeded = Number(id![1]);
    const job = (await srv.json('GET', `/api/v1/jobs/${succeeded}`)).body;
    expect(job).toMatchObject({ state: 'succeeded', trigger: { trigger: 'manual', reason: 'cli test' }, outputs: { version: 2, deploy: { strategy: 'shadow' } } });
    // Every line of the stored log, once each, in order, between the job line and the outcome.
    expect(r.stdout).toContain(job.logs);
    expect(r.stdout.split('export: dataset #')).toHaveLength(2);
    for (const line of [/export: dataset #\d+, 600 labelled rows/, /gate: pass mae threshold/, /register: bike v2/]) expect(r.stdout).toMatch(line);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toMatch(new RegExp(`^job #${succeeded} succeeded: registered v2, handed to shadow \\(rollout #\\d+\\)$`));
    expect((await srv.json('POST', '/api/v1/deployments/bike/rollout/abort', { reason: 'next test' })).status).toBe(200);
  }, 120_000);

  it('start --wait on a gate the candidate cannot pass: the gate checks printed, the reason on stderr, exit 1', async () => {
    expect((await cli('retrain', 'policy', 'set', 'bike', '--file', file('strict.json', policy({ metrics: { mae: { threshold: 1 } } })))).code).toBe(0);
    const r = await cli('retrain', 'start', 'bike', '--wait');
    expect(r.code, r.stderr).toBe(1);
    rejected = Number(/^job #(\d+): retraining bike, queued$/m.exec(r.stdout)![1]);
    expect(r.stdout).toMatch(new RegExp(`^job #${rejected} rejected$`, 'm'));
    // After the log: the outcome and the report.
    const report = r.stdout.slice(r.stdout.lastIndexOf(`job #${rejected} rejected\n`));
    expect(report).toMatch(/^gate: failed 1 of 2 checks \(mae threshold\): mae [0-9.]+ against stable [0-9.]+ on 120 holdout rows$/m);
    expect(report).toMatch(/^CHECK\s+PASSED\s+VALUE\s+BASELINE\s+LIMIT\s+DETAIL$/m);
    expect(report).toMatch(/^signature\s+pass\s/m);
    expect(report).toMatch(/^mae threshold\s+FAIL\s+[0-9.]+\s+1\s+mae [0-9.]+; must be ≤ 1/m);
    oneLine(r);
    expect(r.stderr).toMatch(new RegExp(`^warden: job #${rejected} rejected: the validation gate failed 1 of 2 checks \\(mae threshold\\): [^\\n]+\\n$`));

    // --json: the log on stderr, the ended job on stdout.
    const j = await cli('--json', 'retrain', 'start', 'bike', '--wait');
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({ job: { state: 'rejected', outputs: { gate: { passed: false } } } });
    expect(j.stderr).toMatch(/gate: FAIL mae threshold/);
  }, 180_000);

  it('jobs: a table newest first, filtered by deployment and state; --json keeps the listing shape', async () => {
    const r = await cli('retrain', 'jobs');
    expect(r.code, r.stderr).toBe(0);
    const [header, ...rows] = r.stdout.trimEnd().split('\n');
    expect(header!.split(/\s+/)).toEqual(['ID', 'DEPLOYMENT', 'STATE', 'TRIGGER', 'VERSION', 'CREATED', 'FINISHED', 'ERROR']);
    expect(rows).toHaveLength(3);
    expect(rows[2]).toMatch(new RegExp(`^${succeeded}\\s+bike\\s+succeeded\\s+manual\\s+v2\\s+\\S+Z\\s+\\S+Z$`));
    expect(rows[1]).toMatch(new RegExp(`^${rejected}\\s+bike\\s+rejected\\s+manual\\s+\\S+Z\\s+\\S+Z\\s+the validation gate failed 1 of 2 checks \\(mae threshold\\): .+$`));
    const only = await cli('retrain', 'jobs', '--deployment', 'bike', '--state', 'succeeded,failed', '--limit', '5');
    expect(only.stdout.trimEnd().split('\n')).toHaveLength(2);
    const paged = await cli('retrain', 'jobs', '--limit', '1');
    expect(paged.stdout).toMatch(/^more: warden retrain jobs --before \d+$/m);
    expect((await cli('retrain', 'jobs', '--deployment', 'ghost')).stdout).toBe('no retraining jobs\n');
    const json = JSON.parse((await cli('--json', 'retrain', 'jobs', '--state', 'succeeded')).stdout);
    expect(json).toMatchObject({ jobs: [{ id: succeeded, state: 'succeeded', logBytes: expect.any(Number) }], nextCursor: null });
    expect(json.jobs[0].logs).toBeUndefined();
    const wrong = await cli('retrain', 'jobs', '--state', 'done');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/→ 400: WARDEN_BAD_REQUEST: state "done" is not a job state/);
  }, 120_000);

  it('show: state, trigger, inputs, the gate checks, outputs, then the log; logs: the log alone', async () => {
    const job = (await srv.json('GET', `/api/v1/jobs/${succeeded}`)).body;
    const r = await cli('retrain', 'show', String(succeeded));
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`job #${succeeded}: retrain bike — succeeded`);
    expect(lines[1]).toBe('trigger: manual (cli test)');
    expect(r.stdout).toMatch(/^by anonymous \(auth off\); created \S+Z, started \S+Z, finished \S+Z \([0-9.]+ s\) on \S+$/m);
    expect(r.stdout).toMatch(new RegExp(`^inputs: dataset #${job.inputs.dataset.id} \\(600 rows, sha256 ${job.inputs.dataset.sha256.slice(0, 12)}\\), stable v1, 480 training rows, 120 held out \\(predicted since \\S+Z\\), trainer linear$`, 'm'));
    const head = r.stdout.slice(0, r.stdout.indexOf('\nlog:\n'));
    expect(head).toMatch(/^gate: passed 2 checks: mae [0-9.]+ against stable [0-9.]+ on 120 holdout rows$/m);
    expect(head).toMatch(/^mae threshold\s+pass\s+[0-9.]+\s+100000\s+mae /m);
    expect(head).toMatch(/^metrics: candidate mae=[0-9.]+ rmse=[0-9.]+ r2=[0-9.-]+; stable mae=/m);
    expect(r.stdout).toMatch(/^outputs: registered v2, handed to shadow \(rollout #\d+\)$/m);
    expect(r.stdout).toContain(`\nlog:\n${job.logs}`);

    const rej = await cli('retrain', 'show', String(rejected));
    expect(rej.stdout).toMatch(/^outputs: \(nothing registered\)$/m);
    expect(rej.stdout).toMatch(/^error: the validation gate failed 1 of 2 checks \(mae threshold\): /m);

    const logs = await cli('retrain', 'logs', String(succeeded));
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toBe(job.logs);
    expect(JSON.parse((await cli('--json', 'retrain', 'logs', String(succeeded))).stdout)).toEqual({ id: succeeded, state: 'succeeded', logs: job.logs });

    const notNumber = await cli('retrain', 'show', 'abc');
    expect(notNumber.code).toBe(2);
    expect(notNumber.stderr).toBe('warden: job must be a job number (see warden retrain jobs)\n');
    const missing = await cli('retrain', 'logs', '999999');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('warden: GET /api/v1/jobs/999999 → 404: WARDEN_NOT_FOUND: there is no job #999999\n');
  }, 120_000);

  it('cancel and approve of an ended job are refused with the 409 in one line (exit 2)', async () => {
    const cancel = await cli('retrain', 'cancel', String(succeeded));
    expect(cancel.code).toBe(2);
    oneLine(cancel);
    expect(cancel.stderr).toBe(`warden: POST /api/v1/jobs/${succeeded}/cancel → 409: WARDEN_CONFLICT: job #${succeeded} is succeeded and has ended; nothing to cancel\n`);
    const approve = await cli('retrain', 'approve', String(rejected));
    expect(approve.code).toBe(2);
    oneLine(approve);
    expect(approve.stderr).toBe(`warden: POST /api/v1/jobs/${rejected}/approve → 409: WARDEN_CONFLICT: job #${rejected} is rejected; only a job awaiting approval can be approved\n`);
  }, 120_000);

  it('a job that has not ended is canceled; policy delete removes the policy, and a second delete is a 404', async () => {
    // A trainer that never ends keeps the job running (or queued) until it is canceled.
    const hang = { triggers: { labels: { min: 100_000 } }, task: 'regression', data: { minRows: 200 }, train: { command: [process.execPath, '-e', 'setInterval(() => {}, 1000)', '{dataset}', '{model}'], timeout: '10m' } };
    expect((await cli('retrain', 'policy', 'set', 'bike', '--file', file('hang.json', hang))).code).toBe(0);
    const start = await cli('--json', 'retrain', 'start', 'bike');
    expect(start.code, start.stderr).toBe(0);
    const { job } = JSON.parse(start.stdout) as { job: { id: number; state: string } };
    expect(job.state).toBe('queued');
    const cancel = await cli('retrain', 'cancel', String(job.id));
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toBe(`job #${job.id}: canceled (canceled by anonymous (auth off))\n`);
    await srv.warden.retraining!.idle();
    expect((await srv.json('GET', `/api/v1/jobs/${job.id}`)).body).toMatchObject({ state: 'canceled', error: 'canceled by anonymous (auth off)' });

    const del = await cli('retrain', 'policy', 'delete', 'bike');
    expect(del.code, del.stderr).toBe(0);
    expect(del.stdout).toBe('bike: retraining policy deleted\n');
    expect((await cli('retrain', 'policy', 'list')).stdout).toMatch(/^no retraining policies/);
    const again = await cli('retrain', 'policy', 'delete', 'bike');
    expect(again.code).toBe(2);
    expect(again.stderr).toBe('warden: DELETE /api/v1/deployments/bike/retraining → 404: WARDEN_NOT_FOUND: bike has no retraining policy\n');
  }, 120_000);
});
