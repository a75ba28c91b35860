/**
 * `warden features materialize | bind | unbind | bindings | skew | online`: the online store's commands, under
 * `warden features` (src/cli/features.ts registers them).
 */
import type { Command } from 'commander';
import type { DeploymentFeaturesView, MaterializeRun, OnlineRead, SkewViewReport, ViewMaterialization } from '../features/index.ts';
import type { WardenClient } from './client.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

/** How often `features materialize` reads the run's progress. */
export const MATERIALIZE_POLL_MS = 500;

const when = (ms: number | undefined | null) => (ms === undefined || ms === null ? '' : new Date(ms).toISOString().replace('.000Z', 'Z'));
const dep = (name: string) => `/api/v1/deployments/${encodeURIComponent(name)}/features`;

function runLines(run: MaterializeRun): string[] {
  return run.views.map(
    (v) =>
      `  ${v.view} (${v.source}): ${v.state}, ${v.rowsRead} read, ${v.rowsWritten} written, ${v.rowsReplaced} replaced${v.resumed ? ', resumed' : ''}, watermark ${when(v.watermark) || 'none'}${v.error ? `: ${v.error}` : ''}`,
  );
}

/** Follows a run until it ends, printing each view's progress when it changes. */
async function follow(client: WardenClient, run: MaterializeRun, out: NodeJS.WritableStream, pollMs: number): Promise<MaterializeRun> {
  let last = '';
  for (;;) {
    const res = await client.open('GET', `/api/v1/features/materialize/${encodeURIComponent(run.id)}`).catch((e: unknown) => {
      // Behind a load balancer the run lives on one replica; the views' stored states say the same from any.
      if (e instanceof CliError && / → 404:/.test(e.message)) return undefined;
      throw e;
    });
    if (res) run = ((await res.json()) as { run: MaterializeRun }).run;
    else {
      const q = encodeURIComponent(run.views.map((v) => v.view).join(','));
      const st = await client.request<{ views: ViewMaterialization[] }>('GET', `/api/v1/features/materialize?views=${q}`);
      for (const v of run.views) {
        const s = st.views.find((x) => x.view === v.view)?.lastRun;
        if (s?.run === run.id) Object.assign(v, s);
      }
      const states = run.views.map((v) => v.state);
      if (!states.some((s) => s === 'queued' || s === 'running')) run.state = states.includes('failed') ? 'failed' : states.includes('stopped') ? 'stopped' : 'succeeded';
    }
    const text = runLines(run).join('\n');
    if (text !== last) {
      out.write(`${text}\n`);
      last = text;
    }
    if (run.state !== 'running') return run;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Registers the online store's commands on `warden features`. */
export function registerOnlineFeatureCommands(features: Command): void {
  features
    .command('materialize [views...]')
    .description('copy the views\' newest rows into the online store (default every view), continuing where a stopped run got to; waits for the run')
    .option('--full', 'offer every row again, ignoring the watermark (the store still keeps the newest row per entity)')
    .option('--no-wait', 'print the run and return at once instead of following it')
    .action(async (views: string[], o: { full?: boolean; wait: boolean }, cmd: Command) => {
      const client = clientFor(cmd);
      const { run } = await client.request<{ run: MaterializeRun }>('POST', '/api/v1/features/materialize', { ...(views.length ? { views } : {}), ...(o.full ? { full: true } : {}) });
      const json = Boolean(cmd.optsWithGlobals().json);
      if (!o.wait) {
        print(cmd, { run }, () => `materialization ${run.id} started: ${run.views.map((v) => v.view).join(', ')}; see it with: warden features materialize-status ${run.views.map((v) => v.view).join(' ')}`);
        return;
      }
      const end = await follow(client, run, json ? process.stderr : process.stdout, MATERIALIZE_POLL_MS);
      print(cmd, { run: end }, () => `materialization ${end.id} ${end.state}`);
      if (end.state !== 'succeeded') process.exitCode = 1;
    });

  features
    .command('materialize-status [views...]')
    .description("each view's materialization state: watermark, rows, last run (from any replica)")
    .action(async (views: string[], _o, cmd: Command) => {
      const q = views.length ? `?views=${encodeURIComponent(views.join(','))}` : '';
      const res = await clientFor(cmd).request<{ views: ViewMaterialization[] }>('GET', `/api/v1/features/materialize${q}`);
      print(cmd, res, () =>
        table(
          res.views.map((v) => ({
            view: v.view,
            source: v.source,
            watermark: when(v.watermark),
            rows: v.rows,
            last: v.lastRun ? `${v.lastRun.run} ${v.lastRun.state}${v.lastRun.error ? `: ${v.lastRun.error}` : ''}` : '',
            updated: when(v.updatedAt),
          })),
          ['view', 'source', 'watermark', 'rows', 'last', 'updated'],
        ),
      );
    });

  features
    .command('bind <deployment> <views...>')
    .description('name the feature views a deployment\'s model reads: requests then send entity keys and Warden fills the features')
    .option('--entity-key <column>', 'the instances\' column holding the entity key, when it is not named as the views\' join key')
    .action(async (deployment: string, views: string[], o: { entityKey?: string }, cmd: Command) => {
      const v = await clientFor(cmd).request<DeploymentFeaturesView>('PUT', dep(deployment), { views, ...(o.entityKey ? { entityKey: o.entityKey } : {}) });
      print(cmd, v, () => bindingText(v));
    });

  features
    .command('bindings <deployment>')
    .description('the feature views a deployment reads and which view provides each feature')
    .action(async (deployment: string, _o, cmd: Command) => {
      const v = await clientFor(cmd).request<DeploymentFeaturesView>('GET', dep(deployment));
      print(cmd, v, () => bindingText(v));
    });

  features
    .command('unbind <deployment>')
    .description('stop filling a deployment\'s features from the online store')
    .action(async (deployment: string, _o, cmd: Command) => {
      await clientFor(cmd).request('DELETE', dep(deployment));
      print(cmd, { unbound: deployment }, () => `${deployment}: reads no feature views`);
    });

  features
    .command('skew')
    .description('training-serving skew: per view and feature, the share of sampled served values that differ from the offline store')
    .option('--check', 'run a check now on the rows this server sampled since the last one (deployer), instead of showing the last')
    .option('--view <name>', 'only this view')
    .action(async (o: { check?: boolean; view?: string }, cmd: Command) => {
      const client = clientFor(cmd);
      const res = o.check
        ? await client.request<{ views: SkewViewReport[]; message?: string }>('POST', '/api/v1/features/skew/check', {})
        : await client.request<{ views: SkewViewReport[]; message?: string }>('GET', `/api/v1/features/skew${o.view ? `?view=${encodeURIComponent(o.view)}` : ''}`);
      const views = o.view ? res.views.filter((v) => v.view === o.view) : res.views;
      print(cmd, { ...res, views }, () => skewText(views, res.message ?? (o.view ? `no skew check of view ${o.view} has run on this server` : undefined)));
    });

  features
    .command('online <view>')
    .description('read online values of entities with their status (present, expired, missing) and event time')
    .requiredOption('--entity <key=value...>', 'an entity by its join keys, e.g. --entity dteday=2012-06-01 (repeat for more; join keys of one entity separated by commas)')
    .option('--features <names>', 'only these features, comma-separated')
    .action(async (view: string, o: { entity: string[]; features?: string }, cmd: Command) => {
      const entities = o.entity.map((e) => {
        const out: Record<string, string> = {};
        for (const pair of e.split(',')) {
          const eq = pair.indexOf('=');
          if (eq <= 0) throw new CliError(`--entity ${e}: give join keys as key=value`, 2);
          out[pair.slice(0, eq)] = pair.slice(eq + 1);
        }
        return out;
      });
      const res = await clientFor(cmd).request<OnlineRead>('POST', '/api/v1/features/online', { view, entities, ...(o.features ? { features: o.features.split(',') } : {}) });
      print(cmd, res, () =>
        table(
          res.results.flatMap((r) =>
            Object.entries(r.features).map(([name, f]) => ({
              entity: Object.entries(r.entity).map(([k, v]) => `${k}=${String(v)}`).join(','),
              feature: name,
              value: f.value === null ? '' : String(f.value),
              status: f.status,
              event_time: when(f.eventTs),
            })),
          ),
          ['entity', 'feature', 'value', 'status', 'event_time'],
        ),
      );
    });
}

/** A skew report as text: per view its sample, per feature the rate, then the differing rows it kept. */
export function skewText(views: SkewViewReport[], message?: string): string {
  if (views.length === 0) return message ?? 'no skew check has run on this server yet';
  const lines: string[] = [];
  for (const v of views) {
    lines.push(`${v.view}: ${v.rows} of ${v.seen} served rows compared at ${when(v.at)}${v.deployments.length ? ` (${v.deployments.join(', ')})` : ''}${v.error ? `; check failed: ${v.error}` : ''}`);
    for (const f of v.features) lines.push(`  ${f.feature}: skew ${(100 * f.rate).toFixed(1)} % (${f.differing} of ${f.compared} differ)`);
    for (const e of v.examples) {
      const key = Object.entries(e.joinKeys).map(([k, x]) => `${k}=${x}`).join(',');
      lines.push(`  e.g. ${e.feature} for ${key || '(no key)'} at ${when(e.ts)}: served ${String(e.served)}, offline ${String(e.offline)}`);
    }
  }
  return lines.join('\n');
}

function bindingText(v: DeploymentFeaturesView): string {
  const lines = [`${v.deployment} reads ${v.views.join(', ')}${v.entityKey ? ` (entity key column ${v.entityKey})` : ''}; updated ${when(v.updatedAt)} by ${v.updatedBy}`];
  for (const view of v.views) {
    const names = v.features.filter((f) => f.view === view).map((f) => f.name);
    lines.push(`  ${view}: ${names.join(', ') || '(no features: the view is not defined)'}`);
  }
  return lines.join('\n');
}
