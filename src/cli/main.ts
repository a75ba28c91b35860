import { Command } from 'commander';
import { WARDEN_VERSION } from '../app.ts';
import { registerDrift } from './drift.ts';
import { registerKeys } from './keys.ts';
import { registerLabels } from './labels.ts';
import { registerLogs } from './logs.ts';
import { registerModels } from './models.ts';
import { describeCliError } from './output.ts';
import { registerServe } from './serve.ts';
import { registerTrain } from './train.ts';
import { registerReference } from './reference.ts';
import { registerReview } from './review.ts';
import { registerAlerts } from './alerts.ts';
import { registerGameDay } from './gameday.ts';
import { registerSlo } from './slo.ts';
import { registerCost } from './cost.ts';
import { registerDeploy } from './deploy.ts';
import { registerMigrate } from './migrate.ts';
import { registerDataset } from './dataset.ts';
import { registerFeatures } from './features.ts';
import { registerRetrain } from './retrain.ts';
import { registerAudit } from './audit.ts';

/** Builds the `warden` command tree. */
export function buildProgram(): Command {
  const program = new Command('warden')
    .description('Warden: serve ONNX models over the Open Inference Protocol and keep them healthy')
    // Only -V as commander's flag: a program-level --version would swallow `warden deploy NAME --version V`;
    // `warden --version` alone is answered in main().
    .version(WARDEN_VERSION, '-V', 'print the version (also: warden --version)')
    .option('--url <url>', 'Warden server URL for client commands (env WARDEN_URL)', undefined)
    .option('--api-key <key>', 'API key for client commands (env WARDEN_API_KEY)')
    .option('--json', 'print JSON instead of text')
    .exitOverride()
    .showHelpAfterError();
  registerServe(program);
  registerModels(program);
  registerLogs(program);
  registerKeys(program);
  registerTrain(program);
  registerDrift(program);
  registerReference(program);
  registerLabels(program);
  registerDataset(program);
  registerFeatures(program);
  registerRetrain(program);
  registerAudit(program);
  registerReview(program);
  registerAlerts(program);
  registerGameDay(program);
  registerSlo(program);
  registerCost(program);
  registerDeploy(program);
  registerMigrate(program);
  return program;
}

/** CLI entry: runs one command; errors print one line and set the exit code. */
export async function main(argv: string[]): Promise<void> {
  if (argv.length === 3 && argv[2] === '--version') {
    process.stdout.write(`${WARDEN_VERSION}\n`);
    return;
  }
  try {
    await buildProgram().parseAsync(argv);
  } catch (e) {
    const { message, exitCode } = describeCliError(e);
    if (message) process.stderr.write(`warden: ${message}\n`);
    process.exitCode = exitCode;
  }
}
