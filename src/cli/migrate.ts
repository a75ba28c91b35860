import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { openConfiguredStores, postgresSchemaStatus, redactPgUrl } from '../storage/index.ts';
import { CliError, table } from './output.ts';

/**
 * `warden migrate`: brings the store's schema up to this version of Warden and exits. Every replica also migrates
 * at start (under a lock, so replicas starting together migrate once); running this first, as a release step or a
 * Kubernetes Job, keeps the replicas' start fast and puts a failed migration in one place.
 */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('apply pending schema migrations to the configured store (storage.url or storage.dataDir), then exit')
    .option('-c, --config <file>', 'config file')
    .option('--data-dir <dir>', 'storage.dataDir')
    .option('--status', 'only show each part of the schema: applied and known versions')
    .option('--wait <seconds>', 'how long to wait for PostgreSQL to answer', '30')
    .action(async (o: { config?: string; dataDir?: string; status?: boolean; wait: string }) => {
      const config = await loadConfig({ ...(o.config ? { file: o.config } : {}), overrides: { 'storage.dataDir': o.dataDir } });
      const wait = Number(o.wait);
      if (!Number.isFinite(wait) || wait < 0) throw new CliError('--wait must be a number of seconds', 2);
      const url = config.storage.url;
      if (!url) {
        if (o.status) throw new CliError('--status reads a PostgreSQL store (storage.url); the embedded SQLite store migrates when opened', 2);
        const stores = await openConfiguredStores(config.storage);
        await stores.close();
        process.stdout.write(`embedded store in ${config.storage.dataDir} is up to date\n`);
        return;
      }
      if (!o.status) {
        const t0 = Date.now();
        const stores = await openConfiguredStores(config.storage, {
          waitMs: wait * 1000,
          onWait: (err, attempt) => process.stderr.write(`waiting for PostgreSQL (attempt ${attempt}): ${(err as Error).message}\n`),
        });
        await stores.close();
        process.stderr.write(`migrated ${redactPgUrl(url)} in ${Date.now() - t0} ms\n`);
      }
      const rows = (await postgresSchemaStatus(url)).map((r) => ({
        ...r,
        state: r.applied === r.known ? 'up to date' : r.applied < r.known ? `${r.known - r.applied} pending` : 'newer than this Warden',
      }));
      process.stdout.write(table(rows, ['part', 'applied', 'known', 'state']));
      if (o.status && rows.some((r) => r.state !== 'up to date')) process.exitCode = 1;
    });
}
