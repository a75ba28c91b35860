import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import YAML from 'yaml';
import type { DeployResult, DeploymentState, ExperimentResult, RolloutView } from '../rollouts/index.ts';
import type { DeploymentEventRecord, RolloutDecisionRecord } from '../storage/index.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

const when = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString().replace('.000Z', 'Z'));
const path = (name: string, rest = '') => `/api/v1/deployments/${encodeURIComponent(name)}${rest}`;

/** A version flag as the API takes it: a number when it is one, else the alias or `latest`. */
function versionRef(v: string): string | number {
  return /^[0-9]{1,9}$/.test(v) ? Number(v) : v;
}

interface DeployFlags {
  version: string;
  strategy: string;
  steps?: string;
  mirror?: string;
  interval?: string;
  weight?: string;
  metrics?: string;
  specFile?: string;
  reason?: string;
  force?: boolean;
}

const numberFlag = (raw: string, flag: string): number => {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new CliError(`${flag} must be a number, got ${JSON.stringify(raw)}`, 2);
  return n;
};

/** The spec a deploy's flags describe (undefined when none is given: the server's defaults apply). */
async function specFromFlags(o: DeployFlags): Promise<Record<string, unknown> | undefined> {
  let spec: Record<string, unknown> | undefined;
  if (o.specFile) {
    let parsed: unknown;
    try {
      parsed = YAML.parse(await readFile(o.specFile, 'utf8'));
    } catch (e) {
      throw new CliError(`cannot read --spec-file ${o.specFile}: ${(e as Error).message}`, 2);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CliError(`--spec-file ${o.specFile} must hold an object (steps, analysis, experiment)`, 2);
    spec = parsed as Record<string, unknown>;
  }
  const set = (k: string, v: unknown) => {
    spec = { ...(spec ?? {}), [k]: v };
  };
  if (o.steps) {
    set(
      'steps',
      o.steps.split(',').map((part) => {
        const m = /^\s*([0-9.]+)(?:%([0-9.]+))?(?::([^:]+))?\s*$/.exec(part);
        if (!m) throw new CliError(`--steps: ${JSON.stringify(part)} is not weight[:pause], e.g. 10:5m or 0%100:2m`, 2);
        const step: Record<string, unknown> = { weight: Number(m[1]) };
        if (m[2] !== undefined) step.mirror = Number(m[2]);
        if (m[3] !== undefined && m[3] !== '-') step.pause = m[3];
        return step;
      }),
    );
  }
  if (o.mirror !== undefined) set('mirror', numberFlag(o.mirror, '--mirror'));
  if (o.interval !== undefined) set('analysis', { ...((spec?.analysis as object | undefined) ?? {}), interval: o.interval });
  if (o.weight !== undefined || o.metrics !== undefined) {
    const exp = { ...((spec?.experiment as object | undefined) ?? {}) } as Record<string, unknown>;
    if (o.weight !== undefined) exp.weight = numberFlag(o.weight, '--weight');
    if (o.metrics !== undefined) exp.metrics = o.metrics.split(',').map((x) => x.trim()).filter(Boolean);
    set('experiment', exp);
  }
  return spec;
}

const fmtNum = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(3));

function rolloutText(r: RolloutView, decisions: RolloutDecisionRecord[]): string {
  const lines = [
    `rollout #${r.id} of ${r.deployment}: ${r.strategy} of v${r.candidate} beside v${r.stable} — ${r.state}`,
    `step ${Math.min(r.step + 1, r.steps.length)}/${r.steps.length}: ${r.steps[Math.min(r.step, r.steps.length - 1)]?.description ?? ''}${r.stepEndsAt && r.state === 'running' ? ` (pause ends ${when(r.stepEndsAt)})` : ''}`,
    `traffic: v${r.candidate} ${r.weight}%, v${r.stable} ${100 - r.weight}%${r.mirror ? `; ${r.mirror}% mirrored to v${r.candidate}` : ''}`,
    `steps: ${r.steps.map((s, i) => `${i === r.step ? '▶ ' : ''}${s.description}`).join(' → ')}`,
  ];
  if (r.status.lastSummary) lines.push(`last analysis (${when(r.status.lastRunAt)}): ${r.status.lastSummary}`);
  if (r.status.outcome) lines.push(`outcome: ${r.status.outcome}`);
  if (decisions.length) {
    lines.push(
      table(
        decisions.map((d) => ({ metric: d.metric, verdict: d.verdict, value: fmtNum(d.value), threshold: fmtNum(d.threshold), 'n stable': d.nStable, 'n candidate': d.nCandidate })),
        ['metric', 'verdict', 'value', 'threshold', 'n stable', 'n candidate'],
      ),
    );
  }
  return lines.join('\n');
}

function experimentText(e: ExperimentResult): string {
  const lines = [
    `experiment (rollout #${e.rollout}) on ${e.deployment}: v${e.stable} vs v${e.candidate}, ${e.weight}% of callers on v${e.candidate} — ${e.state}`,
    `sample ratio: ${e.sampleRatio.observedShares.map((x) => `${(x * 100).toFixed(1)}%`).join(' / ')} observed, ${e.sampleRatio.expectedShares.map((x) => `${(x * 100).toFixed(1)}%`).join(' / ')} expected (sequential p ${fmtNum(e.sampleRatio.pValue)})${e.sampleRatio.mismatch ? ' — MISMATCH' : ''}`,
    table(
      e.metrics.map((m) => ({
        metric: m.metric,
        stable: fmtNum(m.stable.mean),
        candidate: fmtNum(m.candidate.mean),
        difference: m.difference === null ? 'n/a' : `${fmtNum(m.difference)} [${fmtNum(m.lower)}, ${fmtNum(m.upper)}]`,
        'p (adjusted)': `${fmtNum(m.pValue)} (${fmtNum(m.adjustedPValue)})`,
        significant: m.significant ? 'yes' : 'no',
        units: `${m.stable.units}/${m.candidate.units}`,
      })),
      ['metric', 'stable', 'candidate', 'difference', 'p (adjusted)', 'significant', 'units'],
    ),
    `verdict: ${e.verdict} (${e.correction === 'holm' ? 'Holm' : 'Benjamini–Hochberg'} across ${e.metrics.length} metric(s), alpha ${e.alpha})`,
  ];
  for (const m of e.metrics) for (const w of m.warnings) lines.push(`warning: ${m.metric}: ${w}`);
  for (const w of e.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}

function stableText(d: DeploymentState): string {
  if (!d.stable) return 'no versions yet';
  return d.stable.pinned ? `v${d.stable.version} (champion since ${when(d.stable.since)})` : `v${d.stable.version} (latest; no champion set)`;
}

function changeText(r: DeployResult, verb: string): string {
  if (!r.changed) return `${r.deployment.name}: v${r.deployment.stable?.version} is already stable; nothing changed`;
  const e = r.event;
  return [
    `${r.deployment.name}: ${verb} v${e?.fromVersion ?? '-'} → v${e?.toVersion} (${e?.strategy})`,
    `warmed in ${String(e?.data.warmMs ?? '?')} ms${e?.data.signature ? `; signature ${String(e.data.signature)}` : ''}`,
    `recorded as history event ${e?.id} by ${e?.actor}: ${e?.reason}`,
  ].join('\n');
}

function historyRows(events: DeploymentEventRecord[]): string {
  if (events.length === 0) return 'no changes recorded';
  return table(
    events.map((e) => ({ id: e.id, at: when(e.at), kind: e.kind, from: e.fromVersion ?? '-', to: e.toVersion ?? '(deleted)', actor: e.actor, reason: e.reason })),
    ['id', 'at', 'kind', 'from', 'to', 'actor', 'reason'],
  );
}

/** `warden deploy`, `warden rollback` and `warden deployments …` (docs/rollouts.md). */
export function registerDeploy(program: Command): void {
  program
    .command('deploy <name>')
    .description('make a version the stable one: warmed and signature-checked first, recorded in the history')
    .requiredOption('--version <v>', 'version number, alias or latest')
    .option('--strategy <s>', 'direct (switch now), shadow, canary or ab (a rollout beside the stable version)', 'direct')
    .option('--steps <list>', 'canary steps as weight:pause, comma-separated, e.g. 10:5m,25:5m,50:5m (a pause of "-" holds until promoted; weight%mirror mirrors, e.g. 0%100:2m)')
    .option('--mirror <percent>', 'shadow: the share of traffic copied to the candidate (default 100)')
    .option('--interval <duration>', 'analysis interval, e.g. 30s')
    .option('--weight <percent>', 'ab: the share of callers (by key) on the candidate (default 50)')
    .option('--metrics <list>', 'ab: outcome metrics to compare, comma-separated (default accuracy, from labels)')
    .option('--spec-file <file>', 'the rollout spec as JSON or YAML (steps, analysis, experiment); flags override it')
    .option('--reason <text>', 'why, for the history')
    .option('--force', 'deploy even when the signature differs from the stable version')
    .action(async (name: string, o: DeployFlags, cmd: Command) => {
      const spec = await specFromFlags(o);
      const res = await clientFor(cmd).request<DeployResult>('POST', path(name, '/deploy'), {
        version: versionRef(o.version),
        strategy: o.strategy,
        ...(spec ? { spec } : {}),
        ...(o.reason ? { reason: o.reason } : {}),
        ...(o.force ? { force: true } : {}),
      });
      print(cmd, res, () => (res.rollout ? rolloutText(res.rollout, []) : changeText(res, 'deployed')));
    });

  program
    .command('rollback <name>')
    .description('make the previous stable version (or --to) stable again')
    .option('--to <v>', 'version number, alias or latest (default: the one stable before the current)')
    .option('--reason <text>', 'why, for the history')
    .action(async (name: string, o: { to?: string; reason?: string }, cmd: Command) => {
      const res = await clientFor(cmd).request<DeployResult>('POST', path(name, '/rollback'), {
        ...(o.to !== undefined ? { to: versionRef(o.to) } : {}),
        ...(o.reason ? { reason: o.reason } : {}),
      });
      print(cmd, res, () => (res.rollout ? `${name}: rollout #${res.rollout.id} of v${res.rollout.candidate} aborted; v${res.rollout.stable} serves all traffic` : changeText(res, 'rolled back')));
    });

  const rollout = program.command('rollout').description('the running rollout of a deployment: status, promote, pause, resume, abort');
  rollout
    .command('status <name>')
    .description("the rollout's state, steps, traffic split and its last analysis, metric by metric")
    .action(async (name: string, _o, cmd: Command) => {
      const res = await clientFor(cmd).request<{ rollout: RolloutView; decisions: RolloutDecisionRecord[] }>('GET', path(name, '/rollout'));
      print(cmd, res, () => rolloutText(res.rollout, res.decisions));
    });
  rollout
    .command('decisions <name>')
    .description('every analysis measurement of the rollout (or --rollout ID), oldest first')
    .option('--rollout <id>', 'an earlier rollout of the deployment')
    .option('--limit <n>', 'at most this many', '500')
    .option('--after <cursor>', 'continue after this decision id')
    .action(async (name: string, o: { rollout?: string; limit: string; after?: string }, cmd: Command) => {
      const q = new URLSearchParams({ limit: o.limit, ...(o.after ? { after: o.after } : {}), ...(o.rollout ? { rollout: o.rollout } : {}) });
      const res = await clientFor(cmd).request<{ rollout: number; decisions: RolloutDecisionRecord[] }>('GET', path(name, `/rollout/decisions?${q}`));
      print(cmd, res, () =>
        res.decisions.length === 0
          ? `rollout #${res.rollout}: no analysis yet`
          : table(
              res.decisions.map((d) => ({ id: d.id, at: when(d.at), step: d.step + 1, metric: d.metric, verdict: d.verdict, value: fmtNum(d.value), threshold: fmtNum(d.threshold), n: `${d.nStable}/${d.nCandidate}` })),
              ['id', 'at', 'step', 'metric', 'verdict', 'value', 'threshold', 'n'],
            ),
      );
    });
  for (const [action, help] of [
    ['promote', 'skip the current pause to the next step; from the last step (or with --full) make the candidate stable'],
    ['pause', 'hold the current step (traffic stays split) until resumed'],
    ['resume', 'continue a paused rollout'],
    ['abort', 'send all traffic back to the stable version and end the rollout'],
  ] as const) {
    const c = rollout.command(`${action} <name>`).description(help).option('--reason <text>', 'why, for the history');
    if (action === 'promote') c.option('--full', 'skip every remaining step: the candidate becomes stable now');
    c.action(async (name: string, o: { reason?: string; full?: boolean }, cmd: Command) => {
      const res = await clientFor(cmd).request<{ rollout: RolloutView }>('POST', path(name, `/rollout/${action}`), {
        ...(o.reason ? { reason: o.reason } : {}),
        ...(o.full ? { full: true } : {}),
      });
      print(cmd, res, () => rolloutText(res.rollout, []));
    });
  }

  program
    .command('experiment <name>')
    .description("an A/B experiment's results: per-arm metrics, sequential tests, sample-ratio check, corrections, power")
    .action(async (name: string, _o, cmd: Command) => {
      const res = await clientFor(cmd).request<ExperimentResult>('GET', path(name, '/experiment'));
      print(cmd, res, () => experimentText(res));
    });

  const deployments = program.command('deployments').description('deployments: what serves under each name, and the history of changes');
  deployments
    .command('list')
    .description('every deployment with its stable version')
    .action(async (_o, cmd: Command) => {
      const res = await clientFor(cmd).request<{ deployments: DeploymentState[] }>('GET', '/api/v1/deployments');
      print(cmd, res, () =>
        res.deployments.length === 0
          ? 'no deployments: push a model first'
          : table(
              res.deployments.map((d) => ({ name: d.name, stable: stableText(d), strategy: d.strategy, versions: d.versions.length, 'last change': d.lastChange ? `${d.lastChange.kind} ${when(d.lastChange.at)}` : '' })),
              ['name', 'stable', 'strategy', 'versions', 'last change'],
            ),
      );
    });
  deployments
    .command('get <name>')
    .description('one deployment: stable version, candidate, last change')
    .action(async (name: string, _o, cmd: Command) => {
      const d = await clientFor(cmd).request<DeploymentState>('GET', path(name));
      print(cmd, d, () =>
        [
          `deployment ${d.name}`,
          `stable:    ${stableText(d)}`,
          `candidate: ${d.candidate ? `v${d.candidate.version} (${d.candidate.state}, weight ${d.candidate.weight}%${d.candidate.mirror ? `, mirror ${d.candidate.mirror}%` : ''}, step ${d.candidate.step}/${d.candidate.steps})` : 'none'}`,
          `strategy:  ${d.strategy}`,
          `versions:  ${d.versions.join(', ')}`,
        ].join('\n'),
      );
    });
  deployments
    .command('history <name>')
    .description('every change of the stable version, oldest first')
    .option('--limit <n>', 'at most this many', '100')
    .option('--after <cursor>', 'continue after this event id')
    .action(async (name: string, o: { limit: string; after?: string }, cmd: Command) => {
      const q = new URLSearchParams({ limit: o.limit, ...(o.after ? { after: o.after } : {}) });
      const res = await clientFor(cmd).request<{ events: DeploymentEventRecord[] }>('GET', path(name, `/history?${q}`));
      print(cmd, res, () => historyRows(res.events));
    });
  deployments
    .command('served <name>')
    .description('which version served requests without a version at a time, and who put it there')
    .requiredOption('--at <time>', 'epoch milliseconds or ISO-8601')
    .action(async (name: string, o: { at: string }, cmd: Command) => {
      if (!o.at) throw new CliError('--at needs a time', 2);
      const res = await clientFor(cmd).request<{
        version: number | null;
        basis: string;
        at: number;
        event: { at: number; kind: string; actor: string; reason: string } | null;
        by: { actor: { kind: string; id: string; role: string }; requestId: string } | null;
      }>('GET', path(name, `/served?at=${encodeURIComponent(o.at)}`));
      print(cmd, res, () => {
        const lines = [`${name} at ${when(res.at)}: ${res.version === null ? 'no version' : `v${res.version}`} (${res.basis})`];
        if (res.event) lines.push(`  set by ${res.event.kind} at ${when(res.event.at)}: ${res.event.actor}, "${res.event.reason}"`);
        const a = res.by?.actor;
        if (a) lines.push(`  audit: ${a.kind === 'key' ? `key ${a.id}, role ${a.role}` : a.kind === 'loop' ? `the ${a.id} loop` : 'anonymous (auth off)'}, request ${res.by!.requestId}`);
        else if (res.event) lines.push('  audit: no entry for this change (made before the audit log existed)');
        return lines.join('\n');
      });
    });
}
