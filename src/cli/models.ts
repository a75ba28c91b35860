import type { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import type { AliasRecord, ModelRecord, ModelVersionRecord } from '../storage/index.ts';
import type { ModelCard, PushResult } from '../registry/index.ts';
import { WardenClient } from './client.ts';
import { CliError, table } from './output.ts';

interface GlobalFlags {
  url?: string;
  apiKey?: string;
  json?: boolean;
}

function client(cmd: Command): WardenClient {
  const g = cmd.optsWithGlobals<GlobalFlags>();
  return new WardenClient({ ...(g.url ? { url: g.url } : {}), ...(g.apiKey ? { apiKey: g.apiKey } : {}) });
}

function print(cmd: Command, value: unknown, text: () => string): void {
  process.stdout.write(`${cmd.optsWithGlobals<GlobalFlags>().json ? JSON.stringify(value, null, 2) : text()}\n`);
}

const when = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** `warden models …` (list, get, card, alias, unalias, delete) and `warden push`. */
export function registerModels(program: Command): void {
  const models = program.command('models').description('list and manage registered models, versions and aliases');

  models
    .command('list')
    .description('list models with their latest version and aliases')
    .action(async (_o, cmd: Command) => {
      const res = await client(cmd).request<{ models: (ModelRecord & { latestVersion: number | null; versionCount: number; aliases: AliasRecord[] })[] }>(
        'GET',
        '/api/v1/models',
      );
      print(cmd, res, () =>
        res.models.length === 0
          ? 'no models registered; push one with: warden push model.onnx --model NAME'
          : table(
              res.models.map((m) => ({
                name: m.name,
                latest: m.latestVersion,
                versions: m.versionCount,
                aliases: m.aliases.map((a) => `${a.alias}→v${a.version}`).join(' '),
                created: when(m.createdAt),
              })),
              ['name', 'latest', 'versions', 'aliases', 'created'],
            ),
      );
    });

  models
    .command('get <name> [version]')
    .description('show a model (or one version: number, alias or "latest") with signature and metadata')
    .action(async (name: string, version: string | undefined, _o, cmd: Command) => {
      const c = client(cmd);
      if (version) {
        const v = await c.request<ModelVersionRecord>('GET', `/api/v1/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}`);
        print(cmd, v, () => JSON.stringify(v, null, 2));
        return;
      }
      const m = await c.request<ModelRecord & { versions: ModelVersionRecord[]; aliases: AliasRecord[] }>('GET', `/api/v1/models/${encodeURIComponent(name)}`);
      print(cmd, m, () =>
        [
          `${m.name}${m.description ? ` — ${m.description}` : ''}`,
          `aliases: ${m.aliases.map((a) => `${a.alias}→v${a.version}`).join(', ') || '(none)'}`,
          '',
          table(
            m.versions.map((v) => ({
              version: v.version,
              sha256: v.sha256.slice(0, 12),
              size: v.sizeBytes,
              inputs: v.signature.inputs.map((i) => `${i.name}:${i.datatype}${JSON.stringify(i.shape)}`).join(' '),
              metrics: Object.entries(v.metadata.metrics ?? {})
                .map(([k, x]) => `${k}=${Number(x.toPrecision(4))}`)
                .join(' '),
              created: when(v.createdAt),
            })),
            ['version', 'sha256', 'size', 'inputs', 'metrics', 'created'],
          ),
        ].join('\n'),
      );
    });

  models
    .command('card <name> [version]')
    .description("print a version's model card (default: the deployment's stable version), generated from what the server stores")
    .option('--format <format>', 'md (default) or json; the global --json also selects json')
    .option('-o, --out <file>', 'write the card to this file instead of stdout')
    .action(async (name: string, version: string | undefined, o: { format?: string; out?: string }, cmd: Command) => {
      const format = o.format ?? (cmd.optsWithGlobals<GlobalFlags>().json ? 'json' : 'md');
      if (format !== 'md' && format !== 'json') throw new CliError(`--format must be md or json, got ${format}`, 2);
      const c = client(cmd);
      // Without a version, the one requests without a version get: the stable version, else the latest.
      const ref = version ?? String((await c.request<{ stable: { version: number } | null }>('GET', `/api/v1/deployments/${encodeURIComponent(name)}`)).stable?.version ?? 'latest');
      const path = `/api/v1/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(ref)}/card?format=${format}`;
      const text = await (await c.open('GET', path)).text();
      const out = format === 'json' ? `${JSON.stringify(JSON.parse(text) as ModelCard, null, 2)}\n` : text;
      if (!o.out) {
        process.stdout.write(out);
        return;
      }
      await writeFile(o.out, out).catch((e: Error) => {
        throw new CliError(`cannot write ${o.out}: ${e.message}`, 2);
      });
      process.stderr.write(`wrote the model card of ${name} (${/^[0-9]+$/.test(ref) ? `v${ref}` : ref}) to ${o.out}\n`);
    });

  models
    .command('alias <name> <alias> <version>')
    .description('point an alias (e.g. champion, challenger) at a version; moves atomically')
    .action(async (name: string, alias: string, version: string, _o, cmd: Command) => {
      if (!/^[0-9]+$/.test(version)) throw new CliError(`version must be a number, got ${version}`, 2);
      const a = await client(cmd).request<AliasRecord>('PUT', `/api/v1/models/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias)}`, {
        version: Number(version),
      });
      print(cmd, a, () => `${name}: ${a.alias} → v${a.version}`);
    });

  models
    .command('unalias <name> <alias>')
    .description('delete an alias')
    .action(async (name: string, alias: string, _o, cmd: Command) => {
      await client(cmd).request('DELETE', `/api/v1/models/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias)}`);
      print(cmd, { deleted: alias }, () => `${name}: alias ${alias} deleted`);
    });

  models
    .command('delete <name> [version]')
    .description('delete a version, or the whole model; refused while an alias points at it')
    .option('--force', 'delete a whole model even though aliases point at its versions')
    .action(async (name: string, version: string | undefined, o: { force?: boolean }, cmd: Command) => {
      const path = version
        ? `/api/v1/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}`
        : `/api/v1/models/${encodeURIComponent(name)}${o.force ? '?force=true' : ''}`;
      await client(cmd).request('DELETE', path);
      print(cmd, { deleted: version ? `${name} v${version}` : name }, () => `deleted ${version ? `${name} v${version}` : name}`);
    });

  program
    .command('push <file>')
    .description('register an .onnx file as a new immutable version of a model')
    .requiredOption('-m, --model <name>', 'model name (created when new)')
    .option('-a, --alias <aliases>', 'comma-separated aliases to point at the new version (e.g. champion)')
    .option('--metadata <file>', 'JSON file: {description, params, metrics, trainingDataSha256, sourceCommit, tags}')
    .option('--features <file>', 'JSON file: [{name, datatype, min, max}] named features in input column order')
    .option('-d, --description <text>', 'model description (used when the model is new)')
    .action(async (file: string, o: { model: string; alias?: string; metadata?: string; features?: string; description?: string }, cmd: Command) => {
      const bytes = await readFile(file).catch((e: Error) => {
        throw new CliError(`cannot read ${file}: ${e.message}`, 2);
      });
      const readJson = async (path: string, what: string): Promise<string> => {
        const text = await readFile(path, 'utf8').catch((e: Error) => {
          throw new CliError(`cannot read ${what} file ${path}: ${e.message}`, 2);
        });
        try {
          return JSON.stringify(JSON.parse(text));
        } catch (e) {
          throw new CliError(`${what} file ${path} is not valid JSON: ${(e as Error).message}`, 2);
        }
      };
      const headers: Record<string, string> = {};
      if (o.metadata) headers['x-warden-metadata'] = await readJson(o.metadata, 'metadata');
      if (o.features) headers['x-warden-features'] = await readJson(o.features, 'features');
      if (o.description) headers['x-warden-description'] = o.description;
      const q = o.alias ? `?alias=${encodeURIComponent(o.alias)}` : '';
      const res = await client(cmd).request<PushResult>('POST', `/api/v1/models/${encodeURIComponent(o.model)}/versions${q}`, new Uint8Array(bytes), headers);
      print(cmd, res, () =>
        [
          res.created
            ? `registered ${o.model} v${res.version.version}`
            : `already registered (same bytes) ${o.model} v${res.version.version}${res.amended.length ? `; added ${res.amended.join(', ')}` : '; nothing new to add'}`,
          `sha256 ${res.version.sha256}`,
          ...res.aliases.map((a) => `alias ${a.alias} → v${a.version}`),
        ].join('\n'),
      );
    });
}

export { client as clientFor, print };
