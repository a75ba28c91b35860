import type { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { isWardenError } from '../errors.ts';
import { parseSloFile, prometheusRules, type SloDefinition, type SloStatus } from '../slo/index.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

const pct = (x: number) => `${(x * 100).toFixed(Math.abs(x) >= 0.9995 ? 1 : 2)}%`;
const rate = (x: number) => `${x.toFixed(2)}x`;
/** An objective as written, in percent: 0.999 → 99.9%, 0.99 → 99%. */
const objective = (x: number) => `${+(x * 100).toPrecision(6)}%`;

function sliText(s: SloDefinition): string {
  const sli = s.sli;
  switch (sli.kind) {
    case 'latency':
      return `latency <= ${sli.thresholdMs}ms`;
    case 'accuracy':
      return `accuracy (${sli.method})`;
    case 'cost':
      return `cost <= ${sli.maxCostPer1k}/1k`;
    default:
      return sli.kind;
  }
}

/** The status of one SLO as text: SLI, error budget and the burn rate of every policy window. */
export function statusText(st: SloStatus): string {
  const s = st.slo;
  const b = st.budget;
  const lines = [
    `${s.name}  (${s.deployment}, ${sliText(s)})  objective ${objective(s.objective)} over ${s.period}${st.timeScale !== 1 ? ` (time scale ${st.timeScale})` : ''}`,
    `  ${st.measures}`,
    b.total > 0
      ? `  SLI ${pct(b.sli)} of ${b.total} events; error budget remaining ${pct(b.remaining)} (${b.bad} bad of ${+b.allowedBad.toFixed(2)} allowed)`
      : '  no events recorded in the period yet; error budget remaining 100%',
  ];
  if (st.lastCost) lines.push(`  last cost per 1,000 inferences: ${+st.lastCost.costPer1k.toPrecision(4)}`);
  if (st.lastStaleness) lines.push(`  last staleness of the view: ${st.lastStaleness.stalenessMs === null ? 'no rows online' : `${Math.round(st.lastStaleness.stalenessMs / 1000)} s`}`);
  for (const w of st.warnings ?? []) lines.push(`  warning: ${w}`);
  lines.push(
    table(
      st.burnRates.map((r) => ({
        window: r.name,
        severity: r.severity,
        threshold: `${r.factor}x`,
        long: rate(r.longBurnRate),
        short: rate(r.shortBurnRate),
        firing: r.firing ? 'FIRING' : 'no',
      })),
      ['window', 'severity', 'threshold', 'long', 'short', 'firing'],
    )
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n'),
  );
  return lines.join('\n');
}

async function definitionsFrom(file: string): Promise<SloDefinition[]> {
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new CliError(`cannot read ${file}: ${e.message}`, 2);
  });
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new CliError(`${file} is not valid YAML: ${(e as Error).message}`, 2);
  }
  try {
    return parseSloFile(raw, file);
  } catch (e) {
    throw new CliError(isWardenError(e) ? e.message : String(e), 2);
  }
}

function positive(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1) throw new CliError(`${flag} must be a number in (0, 1], got ${raw}`, 2);
  return n;
}

/** `warden slo …`: list SLOs, show their status, export Prometheus rules. */
export function registerSlo(program: Command): void {
  const slo = program.command('slo').description('service level objectives: list, status (error budget and burn rates), export Prometheus rules');

  slo
    .command('list')
    .description('SLOs defined on the server')
    .action(async (_o, cmd: Command) => {
      const res = await clientFor(cmd).request<{ slos: SloDefinition[]; file: string }>('GET', '/api/v1/slos');
      print(cmd, res, () =>
        res.slos.length === 0
          ? `no SLOs; define them in ${res.file} or with PUT /api/v1/slos/{name} (docs/slo.md)`
          : table(
              res.slos.map((s) => ({ name: s.name, deployment: s.deployment, sli: sliText(s), objective: objective(s.objective), period: s.period })),
              ['name', 'deployment', 'sli', 'objective', 'period'],
            ),
      );
    });

  slo
    .command('status [name]')
    .description('SLI, error budget remaining and burn rate per alert window, of one SLO or all')
    .action(async (name: string | undefined, _o, cmd: Command) => {
      const c = clientFor(cmd);
      const names = name ? [name] : (await c.request<{ slos: SloDefinition[] }>('GET', '/api/v1/slos')).slos.map((s) => s.name);
      const statuses: SloStatus[] = [];
      for (const n of names) statuses.push(await c.request<SloStatus>('GET', `/api/v1/slos/${encodeURIComponent(n)}/status`));
      print(cmd, name ? statuses[0] : { slos: statuses }, () => (statuses.length === 0 ? 'no SLOs defined' : statuses.map(statusText).join('\n\n')));
    });

  slo
    .command('export')
    .description('write Prometheus recording and alerting rules (multi-window burn rates) for the latency and availability SLOs')
    .requiredOption('--format <format>', 'output format: prometheus')
    .option('--file <slo.yaml>', 'read SLO definitions from this file instead of the server')
    .option('--out <rules.yml>', 'write the rules here (default: stdout)')
    .option('--time-scale <x>', 'scale every window as slo.timeScale does (game days), in (0, 1]')
    .option('--runbook-base-url <url>', 'prefix of runbook_url annotations (default: repository-relative paths)')
    .action(async (o: { format: string; file?: string; out?: string; timeScale?: string; runbookBaseUrl?: string }, cmd: Command) => {
      if (o.format !== 'prometheus') throw new CliError(`--format ${o.format} is not supported; use --format prometheus`, 2);
      const timeScale = positive(o.timeScale, '--time-scale');
      const slos = o.file ? await definitionsFrom(o.file) : (await clientFor(cmd).request<{ slos: SloDefinition[] }>('GET', '/api/v1/slos')).slos;
      const { text, notes } = prometheusRules(slos, {
        ...(timeScale !== undefined ? { timeScale } : {}),
        ...(o.runbookBaseUrl ? { runbookBaseUrl: o.runbookBaseUrl } : {}),
      });
      if (!o.out) {
        process.stdout.write(text);
        return;
      }
      await writeFile(o.out, text).catch((e: Error) => {
        throw new CliError(`cannot write ${o.out}: ${e.message}`, 2);
      });
      const exported = notes.filter((n) => n.exported).length;
      print(cmd, { out: o.out, notes }, () =>
        [`wrote ${o.out}: rules for ${exported} of ${slos.length} SLO(s)`, ...notes.filter((n) => n.note).map((n) => `  ${n.slo}: ${n.exported ? '' : 'skipped, '}${n.note}`)].join('\n'),
      );
    });
}
