/**
 * Retraining on a real server: 2012 traffic served by a model trained on 2011, labelled through the API; a run
 * started by hand exports it, retrains in a child process on 2011 plus the labelled 2012 rows, passes the gate against
 * the stable version on the newest labelled rows, registers the version with its lineage and starts a shadow. The bad
 * cases end as stored failed or rejected jobs with nothing registered: a gate the candidate cannot pass, a trainer
 * command that fails, one that hangs past its timeout, one that writes nothing; and bad policies are refused.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIKE_SHARING_CSV, bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { freshPgSchema, pgTestUrl } from '../helpers/postgres.ts';
import { BIKE_FEATURES, until } from '../helpers/rollouts.ts';
import { ROWS_2012, seedLabelledBike } from '../helpers/retrain.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const PER_REQUEST = 50;
const SERVED = 1500;

const backends: { name: string; url?: () => Promise<{ url: string; drop(): Promise<void> }> }[] = [{ name: 'SQLite' }];
if (pgTestUrl()) backends.push({ name: 'PostgreSQL', url: () => freshPgSchema() });

describe.each(backends)('retraining jobs on $name', (backend) => {
  let srv: TestServer;
  let drop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    const schema = backend.url ? await backend.url() : undefined;
    drop = schema?.drop;
    srv = await startTestServer({ predictionLog: { flushIntervalMs: 20 }, retraining: { intervalMs: 3_600_000 }, ...(schema ? { storage: { url: schema.url } } : {}) });
    // Every 3rd hour of 2012, in time order: the newest labelled rows (the holdout) are the latest months.
    await seedLabelledBike(srv, ROWS_2012.filter((_, i) => i % 3 === 0).slice(0, SERVED), PER_REQUEST);
  }, 120_000);
  afterAll(async () => {
    await srv?.close();
    await drop?.();
  });

  const policy = (over: Record<string, unknown> = {}) => ({
    triggers: { labels: { min: 1000 } },
    data: { base: { csv: BIKE_SHARING_CSV, target: 'cnt', where: { yr: 0 } }, minRows: 200 },
    train: { trainer: 'linear' },
    gate: { metrics: { mae: { minRelativeChange: 0.05 } }, latencyBudgetMs: 50, segments: { maxDrop: 0.5, minRows: 20 } },
    deploy: { strategy: 'shadow' },
    ...over,
  });

  async function runJob(): Promise<Record<string, any>> {
    const start = await srv.json('POST', '/api/v1/deployments/bike/retrain', { reason: 'test' });
    expect(start.status, JSON.stringify(start.body)).toBe(202);
    expect(start.body.job).toMatchObject({ state: 'queued', trigger: { trigger: 'manual' } });
    await srv.warden.retraining!.tick();
    await srv.warden.retraining!.idle();
    const job = await until(async () => {
      const j = (await srv.json('GET', `/api/v1/jobs/${start.body.job.id}`)).body;
      return ['succeeded', 'rejected', 'failed', 'canceled'].includes(j.state) ? j : undefined;
    }, 60_000, 'the job to end');
    return job;
  }

  const versions = async () => (await srv.json('GET', '/api/v1/models/bike/versions')).body.versions.length as number;

  it('refuses policies that cannot work, naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [policy({ gate: { metrics: { accuracy: { threshold: 0.9 } } } }), /gate metric "accuracy" does not apply to a regression task; use mae, rmse, r2/],
      [policy({ train: { command: 'python train.py --data {dataset}' }, task: 'regression' }), /must name \{dataset\}.*and \{model\}/],
      [policy({ train: { command: 'python train.py {dataset} {model}' } }), /a train command needs task/],
      [policy({ train: { command: 'train {dataset} {model} | tee log', timeout: '1m' }, task: 'regression' }), /runs without a shell/],
      [policy({ triggers: {} }), /name at least one trigger/],
      [policy({ triggers: { drift: { windows: 0 } } }), /triggers\.drift\.windows/],
      [policy({ train: { trainer: 'linear', options: { maxDepth: 3 } } }), /train\.options maxDepth do not apply to trainer linear; it takes l2, seed, rangeMargin/],
      [policy({ gate: { metrics: { mae: {} } } }), /gate\.metrics\.mae sets nothing/],
      [{ ...policy(), colour: 'blue' }, /Unrecognized key.*colour/],
      [policy({ guardrails: { cooldown: 'soon' } }), /guardrails\.cooldown.*not a duration/],
    ];
    for (const [body, msg] of cases) {
      const r = await srv.json('PUT', '/api/v1/deployments/bike/retraining', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body).toMatchObject({ code: 'WARDEN_BAD_REQUEST' });
      expect(r.body.error).toMatch(msg);
    }
    expect((await srv.json('PUT', '/api/v1/deployments/ghost/retraining', policy())).status).toBe(404);
    expect((await srv.json('GET', '/api/v1/deployments/bike/retraining')).status).toBe(404);
    expect((await srv.json('POST', '/api/v1/deployments/bike/retrain')).body.error).toMatch(/has no retraining policy; set one first/);
  });

  it('retrains on 2011 plus labelled 2012 (gradient-boosted trees), passes the gate, registers with lineage and starts a shadow', async () => {
    const put = await srv.json('PUT', '/api/v1/deployments/bike/retraining', policy({ train: { trainer: 'gbt', options: { nEstimators: 60, maxDepth: 4 } } }));
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.effective).toMatchObject({ task: 'regression', guardrails: { cooldownMs: 6 * 3600_000, approval: false }, deploy: { strategy: 'shadow' } });
    expect(put.body.evaluation.guardrails.map((g: { guardrail: string }) => g.guardrail)).toEqual(['enabled', 'one-at-a-time', 'cooldown', 'machine-labels', 'data']);
    const job = await runJob();
    expect(job.state, job.logs).toBe('succeeded');
    // Every step is in the log with its numbers.
    for (const line of [/export: dataset #\d+, 1500 labelled rows/, /base: 8645 rows from/, /training on 9845 rows \(8645 base \+ 1200 traffic\), holding out the newest 300/, /--model gbt .* --n-estimators 60 --max-depth 4/, /gate: pass mae relative change/, /register: bike v2/, /deploy: v2 handed to shadow \(rollout #\d+\)/]) {
      expect(job.logs).toMatch(line);
    }
    const gate = job.outputs.gate;
    expect(gate.passed).toBe(true);
    expect(gate.holdoutRows).toBe(300);
    // Trees on the hour and the season, having seen part of 2012, miss 2012 by far less than the linear 2011 model.
    expect(gate.metrics.candidate.mae).toBeLessThan(gate.metrics.stable.mae * 0.8);
    expect(gate.checks.map((c: { check: string }) => c.check)).toEqual(['signature', 'mae relative change', 'latency', 'segments']);
    expect(job.inputs).toMatchObject({ dataset: { rows: 1500 }, stableVersion: 1, trainRows: 9845, holdoutRows: 300, trainingDataSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(job.outputs).toMatchObject({ version: 2, deploy: { strategy: 'shadow', rollout: expect.any(Number) } });
    const v2 = (await srv.json('GET', '/api/v1/models/bike/versions/2')).body;
    expect(v2.metadata.tags).toMatchObject({ 'lineage.job': String(job.id), 'lineage.parent': '1', 'lineage.trigger': 'manual', 'lineage.dataset': String(job.inputs.dataset.id), 'lineage.dataset_sha256': job.inputs.dataset.sha256 });
    expect(v2.metadata.trainingDataSha256).toBe(job.inputs.trainingDataSha256);
    expect(v2.metadata.metrics.mae).toBeCloseTo(gate.metrics.candidate.mae, 9);
    const ds = (await srv.json('GET', `/api/v1/datasets/${job.inputs.dataset.id}`)).body;
    expect(ds).toMatchObject({ state: 'complete', rows: 1500, sha256: job.inputs.dataset.sha256 });
    const dep = (await srv.json('GET', '/api/v1/deployments/bike')).body;
    expect(dep).toMatchObject({ stable: { version: 1 }, strategy: 'shadow', candidate: { version: 2 } });
    // The listing leaves the log out; the metric counts the outcome.
    const list = (await srv.json('GET', '/api/v1/jobs?deployment=bike')).body;
    expect(list.jobs[0]).toMatchObject({ id: job.id, state: 'succeeded', logBytes: job.logs.length });
    expect(list.jobs[0].logs).toBeUndefined();
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    expect(metrics).toMatch(/warden_retrain_jobs_total\{deployment="bike",outcome="succeeded"\} 1/);
    const abort = await srv.json('POST', '/api/v1/deployments/bike/rollout/abort', { reason: 'next test' });
    expect(abort.status).toBe(200);
  }, 120_000);

  it('a gate the candidate cannot pass stores a rejected job with its report, raises a ticket, registers nothing', async () => {
    const before = await versions();
    expect((await srv.json('PUT', '/api/v1/deployments/bike/retraining', policy({ gate: { metrics: { mae: { threshold: 1 }, r2: { minAbsoluteChange: 0.5 } } } }))).status).toBe(200);
    const job = await runJob();
    expect(job.state).toBe('rejected');
    expect(job.error).toMatch(/the validation gate failed 2 of 3 checks \(mae threshold, r2 absolute change\)/);
    const failed = job.outputs.gate.checks.filter((c: { passed: boolean }) => !c.passed);
    expect(failed.map((c: { check: string; limit: number }) => [c.check, c.limit])).toEqual([['mae threshold', 1], ['r2 absolute change', 0.5]]);
    expect(failed[0].value).toBeGreaterThan(1);
    expect(await versions()).toBe(before);
    const alerts = await srv.warden.retraining!.alertSource().evaluate(Date.now());
    expect(alerts).toEqual([expect.objectContaining({ alertname: 'RetrainGateFailed', severity: 'ticket', labels: { deployment: 'bike', job: String(job.id) }, runbookUrl: 'docs/runbooks/retrain-gate-failed.md' })]);
  }, 120_000);

  it('a trainer command that fails, hangs or writes nothing ends as a failed job with its log; nothing is registered', async () => {
    const before = await versions();
    const node = process.execPath;
    const cases: [unknown, RegExp, RegExp][] = [
      [{ command: [node, '-e', 'console.error("no module named sklearn"); process.exit(3)', '{dataset}', '{model}'] }, /train: the trainer exited with code 3; see the log/, /no module named sklearn/],
      [{ command: [node, '-e', 'setInterval(() => {}, 1000)', '{dataset}', '{model}'], timeout: '1s' }, /train: the trainer ran past its timeout of 1 s and was stopped/, /ran past its timeout/],
      [{ command: [node, '-e', 'console.log("rows", require("fs").readFileSync(process.argv[1], "utf8").split("\\n").length)', '{dataset}', '{model}'] }, /train: the trainer exited 0 but wrote no model/, /rows 9847/],
      [{ command: ['/no/such/trainer', '{dataset}', '{model}'] }, /train: the trainer did not run/, /could not run "\/no\/such\/trainer"/],
    ];
    for (const [train, error, log] of cases) {
      expect((await srv.json('PUT', '/api/v1/deployments/bike/retraining', policy({ task: 'regression', train }))).status).toBe(200);
      const job = await runJob();
      expect(job.state).toBe('failed');
      expect(job.error).toMatch(error);
      expect(job.logs).toMatch(log);
    }
    expect(await versions()).toBe(before);
    const alerts = await srv.warden.retraining!.alertSource().evaluate(Date.now());
    expect(alerts).toEqual([expect.objectContaining({ alertname: 'RetrainJobFailed', runbookUrl: 'docs/runbooks/retrain-failed.md' })]);
  }, 120_000);

  it('a deployment with no labelled traffic: the run fails at export saying so, and nothing is registered', async () => {
    const { onnx } = await train(bikeSharingDemoOptions('linear'));
    expect((await fetch(`${srv.url}/api/v1/models/bike-empty/versions?alias=champion`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(onnx) })).status).toBe(201);
    expect((await srv.json('PUT', '/api/v1/deployments/bike-empty/retraining', policy())).status).toBe(200);
    const start = await srv.json('POST', '/api/v1/deployments/bike-empty/retrain');
    await srv.warden.retraining!.tick();
    await srv.warden.retraining!.idle();
    const job = await until(async () => {
      const j = (await srv.json('GET', `/api/v1/jobs/${start.body.job.id}`)).body;
      return j.state === 'running' || j.state === 'queued' ? undefined : j;
    }, 30_000, 'the job to end');
    expect(job).toMatchObject({ state: 'failed', error: expect.stringMatching(/^export: no labelled prediction of bike-empty v1 matches .*send labels/) });
    expect((await srv.json('GET', '/api/v1/models/bike-empty/versions')).body.versions).toHaveLength(1);
  }, 60_000);

  it('a command trainer: the model it writes is gated like any other (the stable model copied is no better, so rejected)', async () => {
    const stable = await srv.warden.registry.readArtifact(await srv.warden.registry.getVersion('bike', 1));
    const script = `require("fs").writeFileSync(process.argv[2], Buffer.from(${JSON.stringify(Buffer.from(stable).toString('base64'))}, "base64"))`;
    expect((await srv.json('PUT', '/api/v1/deployments/bike/retraining', policy({ task: 'regression', train: { command: [process.execPath, '-e', script, '{dataset}', '{model}'] } }))).status).toBe(200);
    const job = await runJob();
    expect(job.state).toBe('rejected');
    const rel = job.outputs.gate.checks.find((c: { check: string }) => c.check === 'mae relative change');
    expect(rel).toMatchObject({ passed: false, value: job.outputs.gate.metrics.stable.mae, baseline: job.outputs.gate.metrics.stable.mae });
  }, 120_000);

  it('one run at a time; approval and cancel by API', async () => {
    expect((await srv.json('PUT', '/api/v1/deployments/bike/retraining', policy({ guardrails: { approval: true, cooldown: 0 } }))).status).toBe(200);
    const a = await srv.json('POST', '/api/v1/deployments/bike/retrain');
    expect(a.status).toBe(202);
    const b = await srv.json('POST', '/api/v1/deployments/bike/retrain');
    expect(b.status).toBe(409);
    expect(b.body.error).toMatch(new RegExp(`bike already has a job #${a.body.job.id} \\((queued|running)\\); one retraining runs at a time`));
    const canceled = await srv.json('POST', `/api/v1/jobs/${a.body.job.id}/cancel`);
    expect(canceled.body.job).toMatchObject({ state: 'canceled', error: 'canceled by anonymous (auth off)' });
    // A run in progress stops at its next step; the canceled record stays as it is.
    await srv.warden.retraining!.idle();
    expect((await srv.json('GET', `/api/v1/jobs/${a.body.job.id}`)).body).toMatchObject({ state: 'canceled' });
    expect((await srv.json('POST', `/api/v1/jobs/${a.body.job.id}/cancel`)).status).toBe(409);
    expect((await srv.json('POST', `/api/v1/jobs/${a.body.job.id}/approve`)).body.error).toMatch(/is canceled; only a job awaiting approval can be approved/);
    expect((await srv.json('GET', '/api/v1/jobs/999999')).status).toBe(404);
    expect((await srv.json('GET', '/api/v1/jobs/abc')).status).toBe(400);
    expect((await srv.json('GET', '/api/v1/jobs?state=done')).body.error).toMatch(/state "done" is not a job state/);
  });

  it('a trigger on monitored windows starts a job that waits for approval; approved, it runs', async () => {
    const model = 'bike-auto';
    const { onnx } = await train(bikeSharingDemoOptions('linear'));
    expect((await fetch(`${srv.url}/api/v1/models/${model}/versions?alias=champion`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(onnx) })).status).toBe(201);
    await srv.warden.table.settled();
    const rows2011 = (parse(readFileSync(BIKE_SHARING_CSV), { columns: true }) as Record<string, string>[]).filter((r) => r.yr === '0');
    const csv = [[...BIKE_FEATURES, 'cnt'].join(','), ...rows2011.map((r) => [...BIKE_FEATURES.map((f) => r[f]), r.cnt].join(','))].join('\n');
    const ref = await fetch(`${srv.url}/api/v1/models/${model}/versions/champion/reference`, {
      method: 'PUT',
      headers: { 'content-type': 'text/csv', 'x-warden-filename': '2011.csv', 'x-warden-monitoring': JSON.stringify({ window: { kind: 'time', sizeMs: 14 * 86_400_000 }, performance: { task: 'regression', target: 'cnt' } }) },
      body: csv,
    });
    expect(ref.status, await ref.clone().text()).toBe(201);
    // January and February 2012, a request per day with each hour's time, then the counts as labels.
    const days = new Map<string, Record<string, string>[]>();
    for (const r of ROWS_2012.filter((x) => Number(x.mnth) <= 2)) days.set(r.dteday!, [...(days.get(r.dteday!) ?? []), r]);
    const labels: { key: string; value: number; source: string }[] = [];
    for (const [, day] of days) {
      const t = (r: Record<string, string>) => {
        const [m, d, y] = r.dteday!.split('/').map(Number) as [number, number, number];
        return Date.UTC(2000 + y, m - 1, d, Number(r.hr));
      };
      const keys = day.map((r) => `auto-${r.instant}`);
      const res = await srv.json('POST', `/v1/models/${model}:predict`, { instances: day.map((r) => Object.fromEntries(BIKE_FEATURES.map((f) => [f, Number(r[f])]))), parameters: { event_time: t(day[0]!), keys } });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      day.forEach((r, j) => labels.push({ key: keys[j]!, value: Number(r.cnt), source: 'human' }));
    }
    await srv.warden.log!.flush();
    expect((await srv.json('POST', '/api/v1/labels', { labels })).body).toMatchObject({ unmatched: 0 });
    await until(async () => {
      await srv.json('POST', '/api/v1/monitoring/flush', {});
      const w = (await srv.json('GET', `/api/v1/models/${model}/versions/champion/monitoring/windows?limit=100&summary=true`)).body.windows as { performance?: { labelled: number } }[];
      return w.length >= 4 && w.reduce((n, x) => n + (x.performance?.labelled ?? 0), 0) === labels.length ? w : undefined;
    }, 30_000, 'labelled windows');
    const put = await srv.json('PUT', `/api/v1/deployments/${model}/retraining`, {
      triggers: { labels: { min: 1000 } },
      guardrails: { approval: true },
      data: { since: '10000d', minRows: 500 },
      train: { trainer: 'gbt', options: { nEstimators: 30 } },
      gate: { metrics: { mae: { minRelativeChange: 0.05 } } },
      deploy: { strategy: 'direct' },
    });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.evaluation).toMatchObject({ decision: 'start', fired: { trigger: 'labels', values: { labelled: labels.length, min: 1000 } } });
    await srv.warden.retraining!.tick();
    const [job] = (await srv.json('GET', `/api/v1/jobs?deployment=${model}`)).body.jobs;
    expect(job).toMatchObject({ state: 'awaiting-approval', actor: 'retraining controller', trigger: { trigger: 'labels', values: { labelled: labels.length } } });
    // Waiting for a person: a later evaluation holds, and nothing runs.
    await srv.warden.retraining!.tick();
    const waiting = (await srv.json('GET', `/api/v1/deployments/${model}/retraining`)).body.evaluation;
    expect(waiting.decision).not.toBe('start');
    expect(waiting.guardrails).toContainEqual({ guardrail: 'one-at-a-time', holding: true, detail: `job #${job.id} is awaiting-approval` });
    expect((await srv.json('GET', `/api/v1/jobs/${job.id}`)).body.state).toBe('awaiting-approval');
    const ok = await srv.json('POST', `/api/v1/jobs/${job.id}/approve`);
    expect(ok.body.job).toMatchObject({ state: 'queued', inputs: { approvedBy: 'anonymous (auth off)' } });
    await srv.warden.retraining!.tick();
    await srv.warden.retraining!.idle();
    const done = (await srv.json('GET', `/api/v1/jobs/${job.id}`)).body;
    expect(done.state, done.logs).toBe('succeeded');
    expect(done.logs).toMatch(/started by labels/);
    // Direct delivery: the retrained version is stable, and the stable version is its parent in the lineage.
    const dep = (await srv.json('GET', `/api/v1/deployments/${model}`)).body;
    expect(dep.stable.version).toBe(2);
    expect((await srv.json('GET', `/api/v1/models/${model}/versions/2`)).body.metadata.tags).toMatchObject({ 'lineage.trigger': 'labels', 'lineage.parent': '1' });
    // Counting starts again after the run: the same labels do not fire it twice.
    expect((await srv.json('GET', `/api/v1/deployments/${model}/retraining`)).body.evaluation.decision).not.toBe('start');
  }, 120_000);
});
