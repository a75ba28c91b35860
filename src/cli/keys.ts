import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { createApiKey, isRole, ROLES } from '../security/index.ts';
import { openMetadataStore } from '../storage/index.ts';
import { CliError, table } from './output.ts';

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
    .option('--data-dir <dir>', 'storage.dataDir')
    .option('-c, --config <file>', 'config file')
    .action(async (o: { role: string; name: string; dataDir?: string; config?: string }) => {
      if (!isRole(o.role)) throw new CliError(`unknown role ${o.role}; use one of ${ROLES.join(', ')}`, 2);
      const store = await openStore(o);
      try {
        const created = await createApiKey(store, o.name, o.role);
        process.stdout.write(`${created.secret}\n`);
        process.stderr.write(`created key ${created.record.id} (${o.role}); store the secret now: only its hash is kept\n`);
      } finally {
        await store.close();
      }
    });
  keys
    .command('list')
    .description('list keys (never their secrets)')
    .option('--data-dir <dir>', 'storage.dataDir')
    .option('-c, --config <file>', 'config file')
    .action(async (o: { dataDir?: string; config?: string }) => {
      const store = await openStore(o);
      try {
        const all = await store.listApiKeys();
        process.stdout.write(
          `${table(
            all.map((k) => ({ id: k.id, name: k.name, role: k.role, created: new Date(k.createdAt).toISOString(), revoked: k.revokedAt ? new Date(k.revokedAt).toISOString() : '' })),
            ['id', 'name', 'role', 'created', 'revoked'],
          )}\n`,
        );
      } finally {
        await store.close();
      }
    });
  keys
    .command('revoke <id>')
    .description('revoke a key (servers stop accepting it within 10 s)')
    .option('--data-dir <dir>', 'storage.dataDir')
    .option('-c, --config <file>', 'config file')
    .action(async (id: string, o: { dataDir?: string; config?: string }) => {
      const store = await openStore(o);
      try {
        if (!(await store.revokeApiKey(id, Date.now()))) throw new CliError(`no active key ${id}`, 2);
        process.stdout.write(`revoked ${id}\n`);
      } finally {
        await store.close();
      }
    });
}
