import type { Command } from 'commander';
import type { DeployResult, DeploymentState } from '../rollouts/index.ts';
import type { DeploymentEventRecord } from '../storage/index.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

const when = (ms: number | null) => (ms === null ? '' : new Date(ms).toISOString().replace('.000Z', 'Z'));
const path = (name: string, rest = '') => `/api/v1/deployments/${encodeURIComponent(name)}${rest}`;

/** A version flag as the API takes it: a number when it is one, else the alias or `latest`. */
function versionRef(v: string): string | number {
  return /^[0-9]{1,9}$/.test(v) ? Number(v) : v;
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
    .option('--strategy <s>', 'direct (the only one built; shadow, canary and ab are refused)', 'direct')
    .option('--reason <text>', 'why, for the history')
    .option('--force', 'deploy even when the signature differs from the stable version')
    .action(async (name: string, o: { version: string; strategy: string; reason?: string; force?: boolean }, cmd: Command) => {
      const res = await clientFor(cmd).request<DeployResult>('POST', path(name, '/deploy'), {
        version: versionRef(o.version),
        strategy: o.strategy,
        ...(o.reason ? { reason: o.reason } : {}),
        ...(o.force ? { force: true } : {}),
      });
      print(cmd, res, () => changeText(res, 'deployed'));
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
      print(cmd, res, () => changeText(res, 'rolled back'));
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
        [`deployment ${d.name}`, `stable:    ${stableText(d)}`, `candidate: none`, `strategy:  ${d.strategy}`, `versions:  ${d.versions.join(', ')}`].join('\n'),
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
    .description('which version served requests without a version at a time')
    .requiredOption('--at <time>', 'epoch milliseconds or ISO-8601')
    .action(async (name: string, o: { at: string }, cmd: Command) => {
      if (!o.at) throw new CliError('--at needs a time', 2);
      const res = await clientFor(cmd).request<{ version: number | null; basis: string; at: number }>('GET', path(name, `/served?at=${encodeURIComponent(o.at)}`));
      print(cmd, res, () => `${name} at ${when(res.at)}: ${res.version === null ? 'no version' : `v${res.version}`} (${res.basis})`);
    });
}
