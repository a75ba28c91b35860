import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import YAML from 'yaml';
import { formatDuration } from '../alerting/index.ts';
import type { GateReport, PolicyView, RetrainPolicy } from '../lifecycle/index.ts';
import type { JobRecord, JobState } from '../storage/index.ts';
import type { WardenClient } from './client.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

const when = (ms: number | undefined | null) => (ms === undefined || ms === null ? '' : new Date(ms).toISOString().replace('.000Z', 'Z'));
const dep = (name: string, rest = '') => `/api/v1/deployments/${encodeURIComponent(name)}${rest}`;
const ENDED: readonly JobState[] = ['succeeded', 'rejected', 'failed', 'canceled'];
/** How often `retrain start --wait` reads the job. */
export const WAIT_POLL_MS = 500;

type JobBrief = Omit<JobRecord, 'logs' | 'inputs'> & { logBytes: number };

const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? Number(x.toPrecision(4)) : x === null || x === undefined ? '' : String(x));
const clip = (s: string | undefined, n: number) => (s === undefined ? '' : s.length > n ? `${s.slice(0, n - 1)}…` : s);

function jobId(raw: string): string {
  if (!/^[0-9]+$/.test(raw)) throw new CliError('job must be a job number (see warden retrain jobs)', 2);
  return raw;
}

/** The policy file's contents: JSON for a .json file, else YAML (which reads JSON too). */
async function readPolicy(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new CliError(`cannot read policy file ${file}: ${e.message}`, 2);
  });
  let parsed: unknown;
  try {
    parsed = /\.json$/i.test(file) ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new CliError(`policy file ${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML or JSON'}: ${(e as Error).message}`, 2);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CliError(`policy file ${file} must hold an object (triggers, train, gate, …)`, 2);
  return parsed;
}

function trainText(t: RetrainPolicy['train']): string {
  if ('trainer' in t) {
    const opts = Object.entries(t.options).map(([k, v]) => `${k}=${v}`).join(' ');
    return `trainer ${t.trainer}${opts ? ` (${opts})` : ''}`;
  }
  return `command ${t.command.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')} (timeout ${formatDuration(t.timeoutMs)})`;
}

/** The effective policy in a few lines. */
function policyText(p: RetrainPolicy): string[] {
  const triggers = [
    ...(p.triggers.drift ? [`drift (${p.triggers.drift.windows} windows in a row)`] : []),
    ...(p.triggers.accuracy ? [`accuracy (${p.triggers.accuracy.windows} windows, tolerance ${p.triggers.accuracy.tolerance}${p.triggers.accuracy.estimated ? ', estimated counts' : ''})`] : []),
    ...(p.triggers.labels ? [`labels (${p.triggers.labels.min} new)`] : []),
    ...(p.triggers.schedule ? [`schedule (every ${formatDuration(p.triggers.schedule.everyMs)})`] : []),
  ];
  const g = p.guardrails;
  const gate = [
    ...Object.entries(p.gate.metrics).flatMap(([name, r]) => [
      ...(r.threshold !== undefined ? [`${name} ${r.greaterIsBetter ? '≥' : '≤'} ${r.threshold}`] : []),
      ...(r.minAbsoluteChange !== undefined ? [`${name} better by > ${r.minAbsoluteChange}`] : []),
      ...(r.minRelativeChange !== undefined ? [`${name} better by > ${r.minRelativeChange * 100} %`] : []),
    ]),
    ...(p.gate.latencyBudgetMs !== undefined ? [`p99 latency ≤ ${p.gate.latencyBudgetMs} ms`] : []),
    ...(p.gate.segments ? [`segments drop ≤ ${p.gate.segments.maxDrop} (≥ ${p.gate.segments.minRows} rows)`] : []),
  ];
  const d = p.data;
  return [
    `${p.enabled ? 'enabled' : 'disabled'}, ${p.task}; ${trainText(p.train)}`,
    `triggers: ${triggers.join(', ')}`,
    `guardrails: cooldown ${formatDuration(g.cooldownMs)}, machine labels ≤ ${g.maxMachineLabelShare * 100} %${g.maxLabelShift !== undefined ? `, label shift ≤ ${g.maxLabelShift}` : ''}${g.approval ? ', approval required' : ''}`,
    `data: last ${formatDuration(d.sinceMs)} of ${d.sources.join(', ')} labels, ${d.minRows}–${d.maxRows} rows, newest ${d.holdout * 100} % held out${d.base ? `, plus ${d.base.csv} (target ${d.base.target})` : ''}`,
    `gate: signature${gate.length ? `, ${gate.join(', ')}` : ''}`,
    `deploy: ${p.deploy.strategy}`,
  ];
}

function viewText(v: PolicyView): string {
  const out = [`retraining policy of ${v.deployment} (updated ${when(v.updatedAt)} by ${v.updatedBy})`, ...policyText(v.effective).map((l) => `  ${l}`), ''];
  const ev = v.evaluation;
  if (!ev) {
    out.push(`evaluation: not possible now${v.evaluationError ? `: ${v.evaluationError}` : ''}`);
    return out.join('\n');
  }
  out.push(`evaluation at ${when(ev.at)} of v${ev.version}: ${ev.decision} — ${ev.reason}`, '');
  out.push(table(ev.triggers.map((t) => ({ trigger: t.trigger, fired: t.fired ? 'yes' : 'no', detail: t.detail })), ['trigger', 'fired', 'detail']), '');
  out.push(table(ev.guardrails.map((g) => ({ guardrail: g.guardrail, holding: g.holding ? 'yes' : 'no', detail: g.detail })), ['guardrail', 'holding', 'detail']));
  return out.join('\n');
}

const gateTable = (gate: GateReport) =>
  table(
    gate.checks.map((c) => ({ check: c.check, passed: c.passed ? 'pass' : 'FAIL', value: num(c.value), baseline: num(c.baseline), limit: num(c.limit), detail: c.detail })),
    ['check', 'passed', 'value', 'baseline', 'limit', 'detail'],
  );

function triggerText(t: Record<string, unknown>): string {
  const values = t.values && typeof t.values === 'object' ? Object.entries(t.values as Record<string, unknown>).map(([k, x]) => `${k}=${num(x)}`).join(' ') : '';
  return `${String(t.trigger ?? '?')}${t.reason ? ` (${String(t.reason)})` : ''}${values ? ` [${values}]` : ''}`;
}

function inputsText(i: Record<string, unknown>): string {
  const parts: string[] = [];
  const ds = i.dataset as { id?: number; rows?: number; sha256?: string } | undefined;
  if (ds) parts.push(`dataset #${ds.id} (${ds.rows ?? '?'} rows${ds.sha256 ? `, sha256 ${ds.sha256.slice(0, 12)}` : ''})`);
  if (i.stableVersion !== undefined) parts.push(`stable v${String(i.stableVersion)}`);
  if (i.trainRows !== undefined) parts.push(`${String(i.trainRows)} training rows`);
  if (i.holdoutRows !== undefined) parts.push(`${String(i.holdoutRows)} held out${typeof i.holdoutSince === 'number' ? ` (predicted since ${when(i.holdoutSince)})` : ''}`);
  const train = i.train as { trainer?: string; options?: Record<string, number>; command?: string[] } | undefined;
  if (train?.trainer) parts.push(`trainer ${train.trainer}${train.options && Object.keys(train.options).length ? ` (${Object.entries(train.options).map(([k, v]) => `${k}=${v}`).join(' ')})` : ''}`);
  else if (train?.command) parts.push(`command ${train.command.join(' ')}`);
  if (i.approvedBy) parts.push(`approved by ${String(i.approvedBy)}`);
  return parts.join(', ') || '(none yet)';
}

function outputsText(o: Record<string, unknown>): string {
  const parts: string[] = [];
  if (o.version !== undefined) parts.push(`registered v${String(o.version)}`);
  const d = o.deploy as { strategy?: string; rollout?: number } | undefined;
  if (d) parts.push(`handed to ${d.strategy ?? '?'}${d.rollout !== undefined ? ` (rollout #${d.rollout})` : ''}`);
  return parts.join(', ') || '(nothing registered)';
}

function gateText(gate: GateReport): string[] {
  const metrics = (m: Record<string, number>) => Object.entries(m).map(([k, x]) => `${k}=${num(x)}`).join(' ');
  return [
    `gate: ${gate.summary}`,
    gateTable(gate),
    `metrics: candidate ${metrics(gate.metrics.candidate)}; stable ${metrics(gate.metrics.stable)}`,
  ];
}

function jobText(j: JobRecord): string {
  const gate = j.outputs.gate as GateReport | undefined;
  const took = j.startedAt !== undefined && j.finishedAt !== undefined ? ` (${((j.finishedAt - j.startedAt) / 1000).toFixed(1)} s)` : '';
  return [
    `job #${j.id}: ${j.kind} ${j.deployment} — ${j.state}`,
    `trigger: ${triggerText(j.trigger)}`,
    `by ${j.actor}; created ${when(j.createdAt)}${j.startedAt !== undefined ? `, started ${when(j.startedAt)}` : ''}${j.finishedAt !== undefined ? `, finished ${when(j.finishedAt)}${took}` : ''}${j.holder ? ` on ${j.holder}` : ''}`,
    `inputs: ${inputsText(j.inputs)}`,
    ...(gate ? gateText(gate) : []),
    `outputs: ${outputsText(j.outputs)}`,
    ...(j.error ? [`error: ${j.error}`] : []),
    '',
    'log:',
    j.logs.trimEnd() || '(empty)',
  ].join('\n');
}

/**
 * Follows a stored log that keeps only its tail: the server writes `[N earlier characters dropped]` first once it
 * has cut, so each read places its text in the whole log and only what lies past the last read is new.
 */
export class LogFollower {
  private printed = 0;

  /** The new complete lines of `logs` (all of the rest with `final`). */
  next(logs: string, final = false): string {
    const m = /^\[(\d+) earlier characters dropped\]\n/.exec(logs);
    const dropped = m ? Number(m[1]) : 0;
    const text = m ? logs.slice(m[0].length) : logs;
    const total = dropped + text.length;
    let from = this.printed - dropped;
    let out = '';
    if (from < 0) {
      out = `[${-from} characters of the log dropped before they were read]\n`;
      from = 0;
    }
    let chunk = text.slice(from);
    if (!final) {
      const nl = chunk.lastIndexOf('\n');
      chunk = nl === -1 ? '' : chunk.slice(0, nl + 1);
    } else if (chunk && !chunk.endsWith('\n')) chunk += '\n';
    this.printed = final ? total : dropped + from + chunk.length;
    return out + chunk;
  }
}

/** Polls a job until it ends, writing its new log lines to `out` as they arrive. */
async function follow(client: WardenClient, id: number, out: NodeJS.WritableStream, pollMs = WAIT_POLL_MS): Promise<JobRecord> {
  const log = new LogFollower();
  for (;;) {
    const j = await client.request<JobRecord>('GET', `/api/v1/jobs/${id}`);
    const ended = ENDED.includes(j.state);
    const text = log.next(j.logs, ended);
    if (text) out.write(text);
    if (ended) return j;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** `warden retrain …`: retraining policies and jobs (docs/lifecycle.md#retraining). */
export function registerRetrain(program: Command): void {
  const retrain = program.command('retrain').description('retraining: per-deployment policies, runs started by hand, and the jobs with their gate report and log');
  const policy = retrain.command('policy').description("a deployment's retraining policy: set, show, delete, list");

  policy
    .command('set <deployment>')
    .description('set the retraining policy of a deployment from a JSON or YAML file')
    .requiredOption('-f, --file <file>', 'the policy: JSON (.json) or YAML')
    .action(async (deployment: string, o: { file: string }, cmd: Command) => {
      const body = await readPolicy(o.file);
      const v = await clientFor(cmd).request<PolicyView>('PUT', dep(deployment, '/retraining'), body);
      print(cmd, v, () => viewText(v));
    });

  policy
    .command('show <deployment>')
    .description('the effective policy and its triggers and guardrails evaluated now')
    .action(async (deployment: string, _o, cmd: Command) => {
      const v = await clientFor(cmd).request<PolicyView>('GET', dep(deployment, '/retraining'));
      print(cmd, v, () => viewText(v));
    });

  policy
    .command('delete <deployment>')
    .description('remove the retraining policy of a deployment (its jobs are kept)')
    .action(async (deployment: string, _o, cmd: Command) => {
      await clientFor(cmd).request('DELETE', dep(deployment, '/retraining'));
      print(cmd, { deleted: deployment }, () => `${deployment}: retraining policy deleted`);
    });

  policy
    .command('list')
    .description('deployments with a retraining policy')
    .action(async (_o, cmd: Command) => {
      const res = await clientFor(cmd).request<{ policies: { deployment: string; updatedAt: number; updatedBy: string }[] }>('GET', '/api/v1/retraining');
      print(cmd, res, () =>
        res.policies.length === 0
          ? 'no retraining policies; set one with: warden retrain policy set DEPLOYMENT --file policy.json'
          : table(res.policies.map((p) => ({ deployment: p.deployment, updated: when(p.updatedAt), by: p.updatedBy })), ['deployment', 'updated', 'by']),
      );
    });

  retrain
    .command('start <deployment>')
    .description('start a retraining run now (no trigger or guardrail decides); prints the job id')
    .option('--reason <text>', 'why, kept with the job')
    .option('--wait', 'follow the job, printing its log, until it ends; exit 0 when it succeeded, 1 otherwise')
    .action(async (deployment: string, o: { reason?: string; wait?: boolean }, cmd: Command) => {
      const client = clientFor(cmd);
      const { job } = await client.request<{ job: JobRecord }>('POST', dep(deployment, '/retrain'), o.reason !== undefined ? { reason: o.reason } : {});
      const json = cmd.optsWithGlobals<{ json?: boolean }>().json === true;
      if (!o.wait) {
        print(cmd, { job }, () => `job #${job.id}: retraining ${deployment}, ${job.state}; follow it with: warden retrain show ${job.id}`);
        return;
      }
      // The log goes to stdout, or to stderr when stdout carries the JSON of the ended job.
      const out = json ? process.stderr : process.stdout;
      out.write(`job #${job.id}: retraining ${deployment}, ${job.state}\n`);
      const end = await follow(client, job.id, out);
      const gate = end.outputs.gate as GateReport | undefined;
      print(cmd, { job: end }, () =>
        [
          `job #${end.id} ${end.state}${end.state === 'succeeded' ? `: ${outputsText(end.outputs)}` : ''}`,
          ...(gate && !gate.passed ? gateText(gate) : []),
        ].join('\n'),
      );
      if (end.state !== 'succeeded') throw new CliError(`job #${end.id} ${end.state}${end.error ? `: ${end.error}` : ''}`, 1);
    });

  retrain
    .command('jobs')
    .description('retraining jobs, newest first')
    .option('--deployment <name>', 'only this deployment')
    .option('--state <states>', 'only these states, comma-separated: awaiting-approval, queued, running, succeeded, rejected, failed, canceled')
    .option('--limit <n>', 'at most this many (default 100)')
    .option('--before <id>', 'jobs older than this one (the cursor the previous page printed)')
    .action(async (o: { deployment?: string; state?: string; limit?: string; before?: string }, cmd: Command) => {
      const q = new URLSearchParams();
      if (o.deployment) q.set('deployment', o.deployment);
      if (o.state) q.set('state', o.state.split(',').map((s) => s.trim()).filter(Boolean).join(','));
      if (o.limit) q.set('limit', o.limit);
      if (o.before) q.set('before', o.before);
      const res = await clientFor(cmd).request<{ jobs: JobBrief[]; nextCursor: string | null }>('GET', `/api/v1/jobs${q.size ? `?${q}` : ''}`);
      print(cmd, res, () =>
        res.jobs.length === 0
          ? 'no retraining jobs'
          : [
              table(
                res.jobs.map((j) => ({
                  id: j.id,
                  deployment: j.deployment,
                  state: j.state,
                  trigger: String(j.trigger.trigger ?? ''),
                  version: j.outputs.version !== undefined ? `v${String(j.outputs.version)}` : '',
                  created: when(j.createdAt),
                  finished: when(j.finishedAt),
                  error: clip(j.error, 60),
                })),
                ['id', 'deployment', 'state', 'trigger', 'version', 'created', 'finished', 'error'],
              ),
              ...(res.nextCursor ? [`more: warden retrain jobs --before ${res.nextCursor}`] : []),
            ].join('\n'),
      );
    });

  retrain
    .command('show <job>')
    .description('one job: state, trigger, inputs, the gate report, outputs, error and the log')
    .action(async (id: string, _o, cmd: Command) => {
      const j = await clientFor(cmd).request<JobRecord>('GET', `/api/v1/jobs/${jobId(id)}`);
      print(cmd, j, () => jobText(j));
    });

  retrain
    .command('logs <job>')
    .description("a job's log (its last 64 KiB)")
    .action(async (id: string, _o, cmd: Command) => {
      const j = await clientFor(cmd).request<JobRecord>('GET', `/api/v1/jobs/${jobId(id)}`);
      if (cmd.optsWithGlobals<{ json?: boolean }>().json) print(cmd, { id: j.id, state: j.state, logs: j.logs }, () => '');
      else process.stdout.write(j.logs);
    });

  retrain
    .command('approve <job>')
    .description('approve a job awaiting approval; it is queued to run')
    .action(async (id: string, _o, cmd: Command) => {
      const { job } = await clientFor(cmd).request<{ job: JobRecord }>('POST', `/api/v1/jobs/${jobId(id)}/approve`, {});
      print(cmd, { job }, () => `job #${job.id}: approved, ${job.state}`);
    });

  retrain
    .command('cancel <job>')
    .description('cancel a job that has not ended; a running one stops at its next step')
    .action(async (id: string, _o, cmd: Command) => {
      const { job } = await clientFor(cmd).request<{ job: JobRecord }>('POST', `/api/v1/jobs/${jobId(id)}/cancel`, {});
      print(cmd, { job }, () => `job #${job.id}: ${job.state}${job.error ? ` (${job.error})` : ''}`);
    });
}
