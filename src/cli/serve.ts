import type { Command } from 'commander';
import { createWarden } from '../app.ts';
import { loadConfig } from '../config.ts';
import { openConfiguredStores, redactPgUrl } from '../storage/index.ts';
import { seedDemo } from '../lifecycle/index.ts';

interface ServeFlags {
  config?: string;
  host?: string;
  port?: string;
  dataDir?: string;
  demo?: boolean;
}

/** `warden serve`: start the server; `--demo` also trains and deploys the bike-sharing models and opens auth on loopback. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('start the Warden server (OIP v2 inference, registry API, /metrics)')
    .option('-c, --config <file>', 'YAML config file (default ./warden.yaml when present)')
    .option('--host <host>', 'listen address (server.host)')
    .option('--port <port>', 'listen port (server.port)')
    .option('--data-dir <dir>', 'embedded store directory (storage.dataDir)')
    .option('--demo', 'train and deploy the bike-sharing demo models; API keys not required (loopback only)')
    .action(async (flags: ServeFlags) => {
      const overrides: Record<string, unknown> = {
        'server.host': flags.host,
        'server.port': flags.port === undefined ? undefined : Number(flags.port),
        'storage.dataDir': flags.dataDir,
      };
      if (flags.demo) {
        overrides.demo = true;
        overrides['auth.required'] = false;
      }
      const config = await loadConfig({ ...(flags.config ? { file: flags.config } : {}), overrides });
      // PostgreSQL (storage.url) opens asynchronously and migrates first; the embedded store opens as before.
      const stores = await openConfiguredStores(config.storage, {
        writerNice: config.predictionLog.writerNice,
        onWait: (err, attempt) => process.stderr.write(`waiting for PostgreSQL (attempt ${attempt}): ${(err as Error).message}\n`),
      });
      const warden = createWarden(config, { stores, ownStores: true });
      const { logger } = warden;
      let url: string;
      try {
        if (config.demo) {
          const created = await seedDemo(warden.registry, logger);
          if (created.length) logger.info({ models: created }, 'demo models ready');
        }
        url = await warden.listen();
      } catch (e) {
        // Open stores, pools and timers would keep the process alive after a failed start: close them so it exits.
        await warden.close().catch((err: unknown) => logger.error({ err }, 'closing after a failed start failed'));
        throw e;
      }
      if (config.auth.required && (await warden.stores.metadata.listApiKeys()).every((k) => k.revokedAt !== undefined)) {
        logger.warn("auth is on but no API key exists: every request except health checks will get 401; create one with 'warden keys create --role admin'");
      }
      if (!config.auth.required) {
        logger.warn(`auth is OFF: anyone who can reach ${config.server.host} can push models and predict (allowed on loopback only)`);
      }
      logger.info({ url, store: stores.kind === 'postgres' ? redactPgUrl(config.storage.url ?? '') : config.storage.dataDir, models: warden.table.modelNames() }, `Warden listening on ${url}`);
      if (config.demo) {
        process.stderr.write(
          `\nDashboard: ${url}/\n\nTry:\n  curl -s ${url}/v1/models/bike-demand:predict -H 'content-type: application/json' \\\n` +
            `    -d '{"instances":[{"season":3,"mnth":7,"hr":17,"holiday":0,"weekday":3,"workingday":1,"weathersit":1,"temp":0.7,"atemp":0.65,"hum":0.5,"windspeed":0.2}]}'\n\n`,
        );
      }
      // SIGTERM (an orchestrator or load balancer stopping this replica): drain first — readiness answers 503 at once
      // while requests keep being served for server.drainDelayMs, so the balancer moves traffic away before the
      // server closes. SIGINT (Ctrl-C in a terminal) closes at once, as does a second signal during the drain;
      // a signal while closing exits at once (events still queued for the prediction log may then be lost).
      let phase: 'serving' | 'draining' | 'closing' = 'serving';
      let drainTimer: NodeJS.Timeout | undefined;
      const close = () => {
        clearTimeout(drainTimer);
        phase = 'closing';
        logger.info('shutting down: draining requests and the prediction log');
        warden.close().then(
          () => {
            logger.info('stopped cleanly');
            process.exit(0);
          },
          (err) => {
            logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      const stop = (signal: string) => {
        if (phase === 'closing') {
          logger.warn({ signal }, 'second signal while closing: exiting now');
          process.exit(1);
        }
        if (phase === 'draining') {
          logger.warn({ signal }, 'second signal: ending the drain delay now');
          close();
          return;
        }
        const drainDelayMs = config.server.drainDelayMs;
        phase = 'draining';
        warden.http.startDraining();
        if (signal !== 'SIGTERM' || drainDelayMs === 0) {
          close();
          return;
        }
        logger.info({ signal, drainDelayMs }, `draining: /v2/health/ready answers 503; serving for ${drainDelayMs} ms more, then closing`);
        drainTimer = setTimeout(close, drainDelayMs);
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
}
