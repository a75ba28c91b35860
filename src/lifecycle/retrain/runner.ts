import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WardenError } from '../../errors.ts';
import { columnLayout } from '../../monitoring/index.ts';
import { inspectOnnx, type Registry } from '../../registry/index.ts';
import { signatureDifferences } from '../../rollouts/index.ts';
import { OnnxModel } from '../../serving/index.ts';
import type { EventStore, FeatureSpec, JobRecord, MetadataStore, ModelSignature, ModelVersionRecord } from '../../storage/index.ts';
import { DatasetExport } from '../dataset/index.ts';
import { runCommand, type JobLog } from './command.ts';
import { readBase, readTraffic, writeRowsCsv } from './data.ts';
import { runGate, type GateReport } from './gate.ts';
import type { RetrainPolicy } from './policy.ts';

const WARDEN_BIN = fileURLToPath(new URL('../../../bin/warden.js', import.meta.url));
/** The largest model file a trainer may write: what the registry's upload limit allows by default. */
const MAX_MODEL_BYTES = 512 * 1024 * 1024;
/** Single-row model runs timed for the latency budget. */
const LATENCY_RUNS = 200;
const BATCH = 1024;

/** Option names each built-in trainer takes, and the `warden train` flag each becomes. */
const TRAINER_FLAGS: Record<string, Record<string, string>> = {
  linear: { l2: '--l2', seed: '--seed', rangeMargin: '--range-margin' },
  logistic: { l2: '--l2', seed: '--seed', rangeMargin: '--range-margin' },
  gbt: { nEstimators: '--n-estimators', learningRate: '--learning-rate', maxDepth: '--max-depth', minSamplesLeaf: '--min-samples-leaf', minSamplesSplit: '--min-samples-split', rangeMargin: '--range-margin' },
  'gbt-classifier': { nEstimators: '--n-estimators', learningRate: '--learning-rate', maxDepth: '--max-depth', minSamplesLeaf: '--min-samples-leaf', minSamplesSplit: '--min-samples-split', rangeMargin: '--range-margin' },
};

export function trainerOptionNames(trainer: string): string[] {
  return Object.keys(TRAINER_FLAGS[trainer] ?? {});
}

export interface RunnerDeps {
  metadata: MetadataStore;
  events: EventStore;
  registry: Registry;
  /** Hands a registered version to delivery (DeploymentService.deploy). */
  deploy(name: string, req: { version: number; strategy: string; spec?: unknown; actor: string; reason: string }): Promise<{ rollout?: { id: number } | null; deployment: { stable: { version: number } | null } }>;
  jobsDir: string;
  now: () => number;
}

/** What a finished run returns to the service: the state it ends in and what it stores. */
export interface RunEnd {
  state: 'succeeded' | 'rejected' | 'failed';
  outputs: Record<string, unknown>;
  error?: string;
}

class StepError extends Error {
  constructor(
    readonly step: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * One retraining run, step by step: export the labelled traffic (recorded as a dataset), split off the most recent
 * share as the holdout, train (built-in trainer or the policy's command, as a child process so the server's event
 * loop never trains), score candidate and stable on the holdout, and only if the gate passes register the version
 * with its lineage and hand it to delivery. A failure at any step ends the run with nothing registered.
 */
export async function runRetrain(deps: RunnerDeps, job: JobRecord, policy: RetrainPolicy, log: JobLog, ctl: { signal: AbortSignal; inputs: (patch: Record<string, unknown>) => Promise<void> }): Promise<RunEnd> {
  const dir = path.join(deps.jobsDir, String(job.id));
  const outputs: Record<string, unknown> = {};
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    if (ctl.signal.aborted) throw new StepError(name, 'the job was canceled');
    const t0 = performance.now();
    try {
      const r = await fn();
      log.line(`${name}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      return r;
    } catch (e) {
      if (e instanceof StepError) throw e;
      throw new StepError(name, (e as Error).message);
    }
  };
  try {
    await mkdir(dir, { recursive: true });
    const name = job.deployment;
    const stable = await step('stable', async () => {
      const state = await deps.registry.resolve(name, 'champion').catch(() => deps.registry.resolve(name, 'latest'));
      checkRetrainable(state);
      log.line(`stable: ${name} v${state.version} (${state.signature.features!.length} features)`);
      return state;
    });
    const features = stable.signature.features!.map((f) => f.name);

    const trafficFile = path.join(dir, 'traffic.csv');
    const dataset = await step('export', async () => {
      const since = deps.now() - policy.data.sinceMs;
      const exp = await DatasetExport.open(
        { events: deps.events, metadata: deps.metadata, registry: deps.registry, now: deps.now },
        { model: name, since, sources: policy.data.sources, format: 'csv', actor: `retraining job #${job.id}` },
      );
      const ws = createWriteStream(trafficFile);
      let rows = 0;
      for await (const chunk of exp.chunks((p) => (rows = p.rows))) if (!ws.write(chunk)) await once(ws, 'drain');
      ws.end();
      await once(ws, 'finish');
      const rec = (await deps.metadata.getDataset(exp.record.id))!;
      log.line(`export: dataset #${rec.id}, ${rec.rows ?? rows} labelled rows since ${new Date(since).toISOString()} (${policy.data.sources.join(', ')} labels), sha256 ${rec.sha256}`);
      return rec;
    });
    await ctl.inputs({ dataset: { id: dataset.id, sha256: dataset.sha256, rows: dataset.rows }, stableVersion: stable.version });

    const traffic = await step('split', async () => {
      const t = await readTraffic(trafficFile, features, policy.task, policy.data.maxRows);
      const skipped = t.skipped.label + t.skipped.feature;
      log.line(`split: ${t.x.length} usable rows${skipped ? ` (${t.skipped.label} without a usable label, ${t.skipped.feature} with a missing feature left out)` : ''}${t.skipped.duplicate ? `, ${t.skipped.duplicate} repeats of a row labelled under two versions counted once` : ''}`);
      if (t.x.length < policy.data.minRows) {
        throw new WardenError('WARDEN_DATASET_EMPTY', `${t.x.length} usable labelled rows; the policy needs data.minRows ${policy.data.minRows}: send more labels or widen data.since`);
      }
      return t;
    });
    const nHold = Math.max(1, Math.round(traffic.x.length * policy.data.holdout));
    const cut = traffic.x.length - nHold;
    const holdout = { x: traffic.x.slice(cut), y: traffic.y.slice(cut), segment: traffic.segment.slice(cut), from: traffic.ts[cut]! };
    const trainRows = { x: traffic.x.slice(0, cut), y: traffic.y.slice(0, cut) };
    const base = policy.data.base ? await step('base', async () => {
      const b = await readBase(policy.data.base!, features, policy.data.maxRows);
      log.line(`base: ${b.x.length} rows from ${policy.data.base!.csv}${b.skipped ? ` (${b.skipped} with a non-numeric cell left out)` : ''}`);
      return b;
    }) : undefined;
    const trainFile = path.join(dir, 'train.csv');
    const holdoutFile = path.join(dir, 'holdout.csv');
    await writeRowsCsv(trainFile, features, [...(base ? [base] : []), trainRows]);
    await writeRowsCsv(holdoutFile, features, [{ ...holdout, extra: { name: 'segment', values: holdout.segment } }]);
    const trainSha = createHash('sha256').update(await readFile(trainFile)).digest('hex');
    log.line(`split: training on ${trainRows.x.length + (base?.x.length ?? 0)} rows (${base ? `${base.x.length} base + ` : ''}${trainRows.x.length} traffic), holding out the newest ${nHold} (predicted since ${new Date(holdout.from).toISOString()})`);
    await ctl.inputs({ trainRows: trainRows.x.length + (base?.x.length ?? 0), holdoutRows: nHold, holdoutSince: holdout.from, trainingDataSha256: trainSha, train: describeTrain(policy) });

    const modelFile = path.join(dir, 'model.onnx');
    const featuresFile = path.join(dir, 'features.json');
    await step('train', async () => {
      const t = policy.train;
      let argv: string[];
      let timeoutMs: number;
      if ('trainer' in t) {
        argv = [process.execPath, WARDEN_BIN, 'train', '--csv', trainFile, '--target', 'label', '--model', t.trainer, '--out', modelFile, '--features-out', featuresFile, '--features', features.join(','), '--holdout', '0'];
        if (policy.task === 'binary') argv.push('--threshold', '0.5');
        for (const [k, v] of Object.entries(t.options)) argv.push(TRAINER_FLAGS[t.trainer]![k]!, String(v));
        timeoutMs = 3600_000;
      } else {
        argv = t.command;
        timeoutMs = t.timeoutMs;
      }
      log.line(`train: ${argv.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}`);
      const r = await runCommand(argv, { dataset: trainFile, model: modelFile, holdout: holdoutFile, dir }, { cwd: dir, timeoutMs, log, signal: ctl.signal });
      if (ctl.signal.aborted) throw new Error('the job was canceled');
      if (r.timedOut) throw new Error(`the trainer ran past its timeout of ${Math.round(timeoutMs / 1000)} s and was stopped`);
      if (r.exitCode !== 0) throw new Error(r.exitCode === null ? `the trainer did not run${r.signal ? ` (killed by ${r.signal})` : ''}; see the log` : `the trainer exited with code ${r.exitCode}; see the log`);
      const s = await stat(modelFile).catch(() => undefined);
      if (!s || s.size === 0) throw new Error(`the trainer exited 0 but wrote no model to ${modelFile}`);
      if (s.size > MAX_MODEL_BYTES) throw new Error(`the trainer wrote a ${s.size}-byte model; at most ${MAX_MODEL_BYTES} bytes`);
    });

    const bytes = new Uint8Array(await readFile(modelFile));
    const candidateSig = await step('inspect', async () => {
      const sig = (await inspectOnnx(bytes)).signature;
      const trained = await readFile(featuresFile, 'utf8').then((s) => JSON.parse(s) as FeatureSpec[], () => undefined);
      // A command's model names no features: it takes the stable version's, in the same order.
      sig.features = trained ?? stable.signature.features!;
      return sig;
    });

    const gate: GateReport = await step('gate', async () => {
      const [cand, stab] = await Promise.all([loadModel(bytes, candidateSig), loadModel(await deps.registry.readArtifact(stable), stable.signature)]);
      const k = features.length;
      const differences = signatureDifferences(stable.signature, candidateSig);
      const candidate = differences.length ? new Float32Array(holdout.x.length) : await predictAll(cand, candidateSig, holdout.x, k);
      const stablePred = await predictAll(stab, stable.signature, holdout.x, k);
      const latency = policy.gate.latencyBudgetMs !== undefined && !differences.length ? await timeRuns(cand, candidateSig, holdout.x, k) : undefined;
      const report = runGate({
        task: policy.task,
        labels: Float64Array.from(holdout.y),
        stable: stablePred,
        candidate,
        segments: holdout.segment,
        rules: policy.gate,
        signatures: { stable: stable.signature, candidate: candidateSig },
        signatureDifferences: differences,
        ...(latency ? { latency } : {}),
      });
      for (const c of report.checks) log.line(`gate: ${c.passed ? 'pass' : 'FAIL'} ${c.check}: ${c.detail}`);
      log.line(`gate: ${report.summary}`);
      return report;
    });
    outputs.gate = gate;
    if (!gate.passed) return { state: 'rejected', outputs, error: `the validation gate ${gate.summary}` };

    if (ctl.signal.aborted) throw new StepError('register', 'the job was canceled');
    const pushed = await step('register', async () => {
      const trigger = String(job.trigger.trigger ?? job.trigger.kind ?? 'manual');
      const r = await deps.registry.push({
        model: name,
        bytes,
        features: candidateSig.features,
        actor: `retraining job #${job.id}`,
        metadata: {
          description: `retrained by job #${job.id} (${trigger}) from v${stable.version}`,
          metrics: gate.metrics.candidate,
          trainingDataSha256: trainSha,
          tags: {
            'lineage.job': String(job.id),
            'lineage.parent': String(stable.version),
            'lineage.trigger': trigger,
            'lineage.dataset': String(dataset.id),
            'lineage.dataset_sha256': dataset.sha256 ?? '',
            'lineage.gate': gate.summary.slice(0, 1000),
            ...(base ? { 'lineage.base': policy.data.base!.csv.slice(0, 1000) } : {}),
          },
        },
      });
      if (!r.created) log.line(`register: the model is byte-identical to v${r.version.version}; that version is used`);
      else log.line(`register: ${name} v${r.version.version} (sha256 ${r.version.sha256.slice(0, 12)}…)`);
      return r.version;
    });
    outputs.version = pushed.version;
    const deployed = await step('deploy', async () => {
      const r = await deps.deploy(name, {
        version: pushed.version,
        strategy: policy.deploy.strategy,
        ...(policy.deploy.spec ? { spec: policy.deploy.spec } : {}),
        actor: `retraining job #${job.id}`,
        reason: `retrained (${String(job.trigger.trigger ?? 'manual')}); gate ${gate.summary}`,
      });
      log.line(`deploy: v${pushed.version} handed to ${policy.deploy.strategy}${r.rollout ? ` (rollout #${r.rollout.id})` : ''}`);
      return { strategy: policy.deploy.strategy, ...(r.rollout ? { rollout: r.rollout.id } : {}) };
    }).catch((e: StepError) => {
      // Registered but not delivered: the version exists in full (nothing half-written); say what stopped delivery.
      throw new StepError('deploy', `v${pushed.version} was registered but not deployed: ${e.message}`);
    });
    outputs.deploy = deployed;
    return { state: 'succeeded', outputs };
  } catch (e) {
    const step = e instanceof StepError ? e.step : 'run';
    const msg = `${step}: ${(e as Error).message}`;
    log.line(`failed at ${msg}`);
    return { state: 'failed', outputs, error: msg };
  } finally {
    // The files are the job's scratch space; the dataset record, the log and the report are what is kept.
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Retraining reads named numeric features from one FP32 input, with one prediction column. */
export function checkRetrainable(v: ModelVersionRecord): void {
  const sig = v.signature;
  if (sig.inputs.length !== 1 || sig.inputs[0]!.datatype !== 'FP32' || !sig.features?.length) {
    throw new WardenError('WARDEN_BAD_REQUEST', `${v.model} v${v.version} must take one FP32 input with named features to be retrained (it has ${sig.inputs.length} inputs${sig.features?.length ? '' : ' and no named features'})`);
  }
  if (columnLayout(sig).predictions.length < 1) throw new WardenError('WARDEN_BAD_REQUEST', `${v.model} v${v.version} has no prediction column`);
}

function describeTrain(p: RetrainPolicy): Record<string, unknown> {
  return 'trainer' in p.train ? { trainer: p.train.trainer, options: p.train.options } : { command: p.train.command, timeoutMs: p.train.timeoutMs };
}

async function loadModel(bytes: Uint8Array, sig: ModelSignature): Promise<OnnxModel> {
  return OnnxModel.load(bytes, sig.outputs, { intraOpThreads: 1 });
}

/** The first prediction column of every row, in batches, yielding between them. */
async function predictAll(m: OnnxModel, sig: ModelSignature, rows: readonly Float32Array[], k: number): Promise<Float32Array> {
  const layout = columnLayout(sig);
  const pred = layout.predictions[0]!;
  const tensor = layout.outputs.find((o) => o.columns.includes(pred))!;
  const col = tensor.columns.indexOf(pred);
  const width = tensor.columns.length;
  const out = new Float32Array(rows.length);
  for (let i = 0; i < rows.length; i += BATCH) {
    const n = Math.min(BATCH, rows.length - i);
    const data = new Float32Array(n * k);
    for (let r = 0; r < n; r++) data.set(rows[i + r]!, r * k);
    const res = await m.run([{ name: sig.inputs[0]!.name, datatype: 'FP32', dims: [n, k], data }], [tensor.name]);
    const values = res[0]!.data as number[];
    for (let r = 0; r < n; r++) out[i + r] = values[r * width + col]!;
    await new Promise((r) => setImmediate(r));
  }
  return out;
}

/** The candidate's p99 over single-row runs (the model call alone, as a request would make it). */
async function timeRuns(m: OnnxModel, sig: ModelSignature, rows: readonly Float32Array[], k: number): Promise<{ p99Ms: number; runs: number }> {
  const times: number[] = [];
  for (let i = 0; i < Math.min(LATENCY_RUNS, rows.length * 10); i++) {
    const data = Float32Array.from(rows[i % rows.length]!);
    const t0 = performance.now();
    await m.run([{ name: sig.inputs[0]!.name, datatype: 'FP32', dims: [1, k], data }]);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p99Ms: times[Math.min(times.length - 1, Math.ceil(0.99 * times.length) - 1)]!, runs: times.length };
}
