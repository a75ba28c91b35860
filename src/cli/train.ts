import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { formatMetrics, listKinds, train, TRAINER_KINDS, TrainerError, type TrainerKind, type TrainOptions } from '../lifecycle/index.ts';

interface TrainFlags {
  csv: string;
  target: string;
  model: string;
  out: string;
  featuresOut?: string;
  features?: string;
  exclude?: string;
  where?: string;
  threshold?: string;
  holdout?: string;
  seed?: string;
  l2?: string;
  rangeMargin?: string;
  nEstimators?: string;
  learningRate?: string;
  maxDepth?: string;
  minSamplesLeaf?: string;
  minSamplesSplit?: string;
}

/** Adds `warden train`: fit a built-in linear, logistic or gradient-boosted tree model on a CSV and write it as ONNX. */
export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('fit a linear, logistic or gradient-boosted tree model on a CSV file and write it as ONNX')
    .requiredOption('--csv <file>', 'training data, with a header row')
    .requiredOption('--target <col>', 'column to predict')
    .requiredOption('--model <kind>', listKinds())
    .requiredOption('--out <file.onnx>', 'where to write the model')
    .option('--features-out <file.json>', 'also write the feature list (name, datatype, allowed min and max, mean, std) in the format of warden push --features')
    .option('--features <cols>', 'comma-separated feature columns (default: every numeric column but the target)')
    .option('--exclude <cols>', 'comma-separated columns to leave out of the default features')
    .option('--where <col=value,...>', 'keep only rows where each column equals its value, e.g. yr=0,holiday=0')
    .option('--threshold <n>', 'logistic, gbt-classifier: label = target > n (default: median target of the training rows)')
    .option('--holdout <fraction>', 'fraction of rows held out for metrics', '0.2')
    .option('--seed <n>', 'seed of the holdout split', '42')
    .option('--l2 <penalty>', 'linear, logistic: ridge penalty on standardized weights (default: 1e-6 linear, 1e-4 logistic)')
    .option('--n-estimators <n>', 'gbt kinds: number of trees (default 100)')
    .option('--learning-rate <rate>', "gbt kinds: shrinkage of each tree's contribution (default 0.1)")
    .option('--max-depth <n>', 'gbt kinds: depth of each tree (default 3)')
    .option('--min-samples-leaf <n>', 'gbt kinds: fewest training rows in a leaf (default 1)')
    .option('--min-samples-split <n>', 'gbt kinds: fewest training rows a node needs to be split (default 2)')
    .option('--range-margin <share>', "widen each feature's allowed range beyond its training range by this share of its width (0 = exactly the training range)", '0.1')
    .action(async (flags: TrainFlags, cmd: Command) => {
      const output = cmd.configureOutput();
      const writeOut = output.writeOut ?? ((s: string) => process.stdout.write(s));
      const writeErr = output.writeErr ?? ((s: string) => process.stderr.write(s));
      try {
        const result = await train(toOptions(flags), (msg) => writeErr(`${msg}\n`));
        await writeModel(flags.out, result.onnx);
        if (flags.featuresOut) await writeModel(flags.featuresOut, `${JSON.stringify(result.features, null, 2)}\n`);
        const label = result.threshold === undefined ? result.target : `${result.target} > ${result.threshold}`;
        const where = result.params.where === undefined ? '' : ` (where ${result.params.where})`;
        const scored = result.params.metrics_on === 'train' ? 'train' : 'holdout';
        writeOut(
          [
            `trained ${result.kind} model for ${label}${where}`,
            `rows:     ${result.params.rows_train} train, ${result.params.rows_holdout} holdout`,
            `features: ${result.features.map((f) => f.name).join(', ')} (${result.features.length})`,
            `${`${scored}:`.padEnd(9)} ${formatMetrics(result.metrics)}`,
            `wrote:    ${flags.out} (${result.onnx.length} bytes)`,
            ...(flags.featuresOut ? [`wrote:    ${flags.featuresOut} (feature list for warden push --features)`] : []),
            `sha256:   ${createHash('sha256').update(result.onnx).digest('hex')}`,
          ].join('\n') + '\n',
        );
        // Last, on stderr: after the summary so it is not scrolled away by progress lines, and not in stdout,
        // which scripts parse. The model is still written: leakage is a suspicion, the user decides.
        for (const w of result.warnings) writeErr(`warning: ${w.message}\n`);
      } catch (err) {
        // Bad input is the user's to fix: a one-line message and exit code 2, no stack trace, and no
        // help text (the program's showHelpAfterError is inherited, but the usage was right).
        if (err instanceof TrainerError) cmd.showHelpAfterError(false).error(`error: ${err.message}`, { exitCode: 2, code: err.code });
        throw err;
      }
    });
}

function toOptions(flags: TrainFlags): TrainOptions {
  if (!TRAINER_KINDS.includes(flags.model as TrainerKind)) {
    throw badOption(`--model must be ${listKinds()}, got "${flags.model}"`);
  }
  const opts: TrainOptions = { csvPath: flags.csv, target: flags.target, model: flags.model as TrainerKind };
  if (flags.features !== undefined) opts.features = list(flags.features);
  if (flags.exclude !== undefined) opts.exclude = list(flags.exclude);
  if (flags.where !== undefined) opts.where = whereClause(flags.where);
  if (flags.threshold !== undefined) opts.threshold = number('--threshold', flags.threshold);
  if (flags.holdout !== undefined) opts.holdout = number('--holdout', flags.holdout);
  if (flags.seed !== undefined) opts.seed = number('--seed', flags.seed);
  if (flags.l2 !== undefined) opts.l2 = number('--l2', flags.l2);
  if (flags.rangeMargin !== undefined) opts.rangeMargin = number('--range-margin', flags.rangeMargin);
  if (flags.nEstimators !== undefined) opts.nEstimators = number('--n-estimators', flags.nEstimators);
  if (flags.learningRate !== undefined) opts.learningRate = number('--learning-rate', flags.learningRate);
  if (flags.maxDepth !== undefined) opts.maxDepth = number('--max-depth', flags.maxDepth);
  if (flags.minSamplesLeaf !== undefined) opts.minSamplesLeaf = number('--min-samples-leaf', flags.minSamplesLeaf);
  if (flags.minSamplesSplit !== undefined) opts.minSamplesSplit = number('--min-samples-split', flags.minSamplesSplit);
  return opts;
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function whereClause(value: string): Record<string, number> {
  const where: Record<string, number> = {};
  for (const term of list(value)) {
    const match = /^([^=]+)=(.+)$/.exec(term);
    if (!match?.[1] || !match[2]) throw badOption(`--where expects col=value pairs, got "${term}"`);
    where[match[1].trim()] = number(`--where ${match[1].trim()}`, match[2]);
  }
  return where;
}

function number(flag: string, value: string): number {
  const parsed = value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(parsed)) throw badOption(`${flag} expects a number, got "${value}"`);
  return parsed;
}

function badOption(message: string): TrainerError {
  return new TrainerError('WARDEN_TRAIN_BAD_OPTION', message);
}

async function writeModel(path: string, bytes: Uint8Array | string): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
  } catch (err) {
    throw new TrainerError('WARDEN_TRAIN_OUTPUT_UNWRITABLE', `cannot write ${path}: ${(err as Error).message}`);
  }
}
