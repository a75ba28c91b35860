import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { isWardenError } from '../errors.ts';
import { createApiKey, isRole, parseDuration, ROLES, rotateApiKey } from '../security/index.ts';
import { openMetadataStore, type MetadataStore } from '../storage/index.ts';
import { CliError, table } from './output.ts';

/** A refusal by the key rules (unknown scope, past expiry, no such key) is a usage error: exit 2 with its message. */
const asCliError = (e: unknown): never => {
  if (isWardenError(e) && e.status < 500) throw new CliError(e.message, 2);
  throw e;
};

/**
 * `warden keys …` works on the local data directory directly, so the first admin key can be made
 * before any key exists (whoever can read the data directory already controls the server).
 */
export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('create, list and revoke API keys (works on the store directly: the data directory, or storage.url)');
  const openStore = async (o: { dataDir?: string; config?: string }) => {
    const config = await loadConfig({ ...(o.config ? { file: o.config } : {}), overrides: { 'storage.dataDir': o.dataDir } });
    // With storage.url, keys live in the shared PostgreSQL store: a key made here works on every replica.
    return openMetadataStore(config.storage);
  };
  keys
    .command('create')
    .description('create a key; the secret is printed once')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .option('--name <name>', 'a label for the key', 'cli')
    .option('--scope <models...>', 'limit the key to these models (deployments); each must exist')
    .option('--expires <when>', 'refuse the key from then on: a duration from now (30d, 12h) or an ISO-8601 time')
    .option('--data-dir <dir>', 'storage.dataDir')
    .option('-c, --config <file>', 'config file')
    .action(async (o: { role: string; name: string; scope?: string[]; expires?: string; dataDir?: string; config?: string }) => {
      if (!isRole(o.role)) throw new CliError(`unknown role ${o.role}; use one of ${ROLES.join(', ')}`, 2);
      const store = await openStore(o);
      try {
        const scopes = o.scope?.flatMap((s) => s.split(',')).filter((s) => s !== '');
        const created = await createApiKey(store, o.name, o.role, { ...(scopes ? { scopes } : {}), ...(o.expires ? { expires: o.expires } : {}) }).catch(asCliError);
        const r = created.record;
        await auditLocal(store, 'key.create', `key:${r.id}`, { after: { name: r.name, role: r.role, scopes: r.scopes ?? null, expiresAt: r.expiresAt ?? null } });
        process.stdout.write(`${created.secret}\n`);
        const extra = [r.scopes ? `scoped to ${r.scopes.join(', ')}` : '', r.expiresAt ? `expires ${new Date(r.expiresAt).toISOString()}` : ''].filter(Boolean).join('; ');
        process.stderr.write(`created key ${r.id} (${o.role}${extra ? `; ${extra}` : ''}); store the secret now: only its hash is kept\n`);
      } finally {
        await store.close();
      }
    });
  keys
    .command('list')
    .description('list keys (never their secrets), with scopes, expiry and last use')
    .option('--data-dir <dir>', 'storage.dataDir')
    .option('-c, --config <file>', 'config file')
    .action(async (o: { dataDir?: string; config?: string }) => {
      const store = await openStore(o);
      const at = (ms: number | undefined) => (ms === undefined ? '' : new Date(ms).toISOString());
      try {
        const all = await store.listApiKeys();
        process.stdout.write(
          `${table(
            all.map((k) => ({
              id: k.id,
              name: k.name,
              role: k.role,
              scopes: k.scopes?.join(',') ?? '*',
              created: at(k.createdAt),
              expires: at(k.expiresAt),
              'old secret until': k.previousUntil !== undefined && k.previousUntil > Date.now() ? at(k.previousUntil) : '',
              'last used': at(k.lastUsedAt),
              revoked: at(k.revokedAt),
            })),
            ['id', 'name', 'role', 'scopes', 'created', 'expires', 'old secret until', 'last used', 'revoked'],
          )}\n`,
        );
      } finally {
        await store.close();
      }
    });
  keys
    .command('rotate <id>')
    .description('give a key a new secret (printed once); the old one keeps working for --overlap, then is refused')
    .option('--overlap <duration>', 'how long the old secret keeps working (0 refuses it at once; at most 30d)', '1h')
    .option('--data-dir <dir>', 'storage.dataDir')
    .option('-c, --config <file>', 'config file')
    .action(async (id: string, o: { overlap: string; dataDir?: string; config?: string }) => {
      const overlapMs = (() => {
        try {
          return parseDuration(o.overlap, '--overlap');
        } catch (e) {
          throw new CliError((e as Error).message, 2);
        }
      })();
      const store = await openStore(o);
      try {
        const rotated = await rotateApiKey(store, id, overlapMs).catch(asCliError);
        await auditLocal(store, 'key.rotate', `key:${id}`, { after: { previousUntil: rotated.record.previousUntil ?? null } });
        process.stdout.write(`${rotated.secret}\n`);
        process.stderr.write(`rotated key ${id}; the old secret works until ${new Date(rotated.record.previousUntil ?? Date.now()).toISOString()}; store the new secret now\n`);
      } finally {
        await store.close();
      }
    });
  keys
    .command('revoke <id>')
    .description('revoke a key (servers stop accepting it within auth.keyRefreshMs, 10 s by default)')
    .option('--data-dir <dir>', 'storage.dataDir')
    .option('-c, --config <file>', 'config file')
    .action(async (id: string, o: { dataDir?: string; config?: string }) => {
      const store = await openStore(o);
      try {
        if (!(await store.revokeApiKey(id, Date.now()))) throw new CliError(`no active key ${id}`, 2);
        await auditLocal(store, 'key.revoke', `key:${id}`, { after: { revoked: true } });
        process.stdout.write(`revoked ${id}\n`);
      } finally {
        await store.close();
      }
    });
}

/**
 * These commands write the store directly (the first admin key needs no server), so they record their own audit entry:
 * the actor is the local operating-system user who ran them, with access to the data directory or database.
 */
async function auditLocal(store: MetadataStore, action: string, object: string, summary: Record<string, unknown>): Promise<void> {
  await store.appendAudit([{ at: Date.now(), actor: { kind: 'local', id: userInfo().username, role: '' }, action: `warden keys → ${action}`, object, summary: { ...summary, host: hostname() }, requestId: `cli-${randomBytes(6).toString('hex')}` }]);
}
