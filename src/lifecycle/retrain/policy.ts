import { z } from 'zod';
import { parseDuration } from '../../alerting/index.ts';
import { WardenError } from '../../errors.ts';
import type { LabelSource } from '../../storage/index.ts';

/** The built-in trainers a policy can name; the task follows from the kind. */
export const BUILTIN_TRAINERS = ['linear', 'logistic', 'gbt', 'gbt-classifier'] as const;
export type BuiltinTrainer = (typeof BUILTIN_TRAINERS)[number];
export type Task = 'regression' | 'binary';

/** Metrics the gate can score on the holdout, per task, and which way is better (MLflow's `greater_is_better`). */
export const GATE_METRICS: Record<Task, Record<string, boolean>> = {
  regression: { mae: false, rmse: false, r2: true },
  binary: { accuracy: true, log_loss: false, roc_auc: true, brier: false },
};

/** One metric's rule, with MLflow MetricThreshold's three parts. */
export interface MetricRule {
  threshold?: number;
  minAbsoluteChange?: number;
  minRelativeChange?: number;
  greaterIsBetter: boolean;
}

export type TrainSpec =
  | { trainer: BuiltinTrainer; options: Record<string, number> }
  | { command: string[]; timeoutMs: number };

/** A deployment's retraining policy, validated, with every default filled in (docs/lifecycle.md#retraining). */
export interface RetrainPolicy {
  enabled: boolean;
  task: Task;
  triggers: {
    drift?: { windows: number };
    accuracy?: { windows: number; estimated: boolean; tolerance: number };
    labels?: { min: number };
    schedule?: { everyMs: number };
  };
  guardrails: { cooldownMs: number; maxMachineLabelShare: number; maxLabelShift?: number; approval: boolean };
  data: {
    sinceMs: number;
    sources: LabelSource[];
    holdout: number;
    minRows: number;
    maxRows: number;
    /** Rows from a file on the server added to the traffic's, e.g. the original training set. */
    base?: { csv: string; target: string; where?: Record<string, number> };
  };
  train: TrainSpec;
  gate: {
    metrics: Record<string, MetricRule>;
    latencyBudgetMs?: number;
    segments?: { maxDrop: number; minRows: number };
  };
  deploy: { strategy: 'shadow' | 'canary' | 'direct'; spec?: Record<string, unknown> };
}

export const MAX_TRAIN_ROWS = 1_000_000;
const MAX_COMMAND_TIMEOUT_MS = 24 * 3600_000;

const duration = (where: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      return parseDuration(v, where);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

const share = z.number().min(0).max(1);
const count = (min: number, max: number) => z.number().int().min(min).max(max);

const metricRule = z
  .object({
    threshold: z.number().finite().optional(),
    minAbsoluteChange: z.number().finite().min(0).optional(),
    minRelativeChange: z.number().finite().min(0).max(1).optional(),
    greaterIsBetter: z.boolean().optional(),
  })
  .strict();

const schema = z
  .object({
    enabled: z.boolean().default(true),
    task: z.enum(['regression', 'binary']).optional(),
    triggers: z
      .object({
        drift: z.object({ windows: count(1, 1000).default(3) }).strict().optional(),
        accuracy: z.object({ windows: count(1, 1000).default(1), estimated: z.boolean().default(true), tolerance: share.default(0.05) }).strict().optional(),
        labels: z.object({ min: count(1, 100_000_000) }).strict().optional(),
        schedule: z.object({ every: duration('triggers.schedule.every') }).strict().optional(),
      })
      .strict(),
    guardrails: z
      .object({
        cooldown: duration('guardrails.cooldown').default('6h'),
        maxMachineLabelShare: share.default(0.1),
        maxLabelShift: z.number().finite().min(0).optional(),
        approval: z.boolean().default(false),
      })
      .strict()
      .default({}),
    data: z
      .object({
        since: duration('data.since').default('90d'),
        sources: z.array(z.enum(['human', 'system', 'model'])).min(1).default(['human', 'system']),
        holdout: z.number().gt(0).lt(1).default(0.2),
        minRows: count(10, MAX_TRAIN_ROWS).default(200),
        maxRows: count(10, MAX_TRAIN_ROWS).default(MAX_TRAIN_ROWS),
        base: z.object({ csv: z.string().min(1).max(4096), target: z.string().min(1).max(256), where: z.record(z.number().finite()).optional() }).strict().optional(),
      })
      .strict()
      .default({}),
    train: z.union([
      z.object({ trainer: z.enum(BUILTIN_TRAINERS), options: z.record(z.number().finite()).default({}) }).strict(),
      z
        .object({
          command: z.union([z.string().min(1).max(4096), z.array(z.string().max(4096)).min(1).max(256)]),
          timeout: duration('train.timeout').default('30m'),
        })
        .strict(),
    ]),
    gate: z
      .object({
        metrics: z.record(metricRule).default({}),
        latencyBudgetMs: z.number().positive().max(60_000).optional(),
        segments: z.object({ maxDrop: z.number().min(0).max(10), minRows: count(1, 1_000_000).default(30) }).strict().optional(),
      })
      .strict()
      .default({}),
    deploy: z
      .object({ strategy: z.enum(['shadow', 'canary', 'direct']).default('shadow'), spec: z.record(z.unknown()).optional() })
      .strict()
      .default({}),
  })
  .strict();

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);

/** Validates a policy as given to the API; every error names the field and says what is allowed. */
export function parseRetrainPolicy(raw: unknown): RetrainPolicy {
  const r = schema.safeParse(raw);
  if (!r.success) throw bad(`retraining policy: ${r.error.issues.map((i) => `${i.path.join('.') || '(policy)'}: ${i.message}`).join('; ')}`);
  const p = r.data;
  let task: Task;
  let train: TrainSpec;
  if ('trainer' in p.train) {
    const implied: Task = p.train.trainer === 'logistic' || p.train.trainer === 'gbt-classifier' ? 'binary' : 'regression';
    if (p.task !== undefined && p.task !== implied) throw bad(`retraining policy: trainer ${p.train.trainer} trains a ${implied} model, but task is ${p.task}`);
    task = implied;
    train = { trainer: p.train.trainer, options: p.train.options };
  } else {
    if (p.task === undefined) throw bad('retraining policy: a train command needs task (regression or binary), so the gate knows which metrics apply');
    task = p.task;
    const command = typeof p.train.command === 'string' ? splitCommand(p.train.command) : p.train.command;
    if (!command.some((a) => a.includes('{dataset}')) || !command.some((a) => a.includes('{model}'))) {
      throw bad('retraining policy: train.command must name {dataset} (the training CSV it reads) and {model} (the ONNX file it writes)');
    }
    if (p.train.timeout <= 0 || p.train.timeout > MAX_COMMAND_TIMEOUT_MS) throw bad('retraining policy: train.timeout must be above 0 and at most 24h');
    train = { command, timeoutMs: p.train.timeout };
  }
  if (Object.keys(p.triggers).length === 0) throw bad('retraining policy: name at least one trigger (drift, accuracy, labels or schedule); a run can still be started by hand');
  if (p.triggers.schedule && p.triggers.schedule.every < 60_000) throw bad('retraining policy: triggers.schedule.every must be at least 1m');
  if (p.data.minRows > p.data.maxRows) throw bad('retraining policy: data.minRows must not exceed data.maxRows');
  const known = GATE_METRICS[task];
  const metrics: Record<string, MetricRule> = {};
  for (const [name, rule] of Object.entries(p.gate.metrics)) {
    if (!(name in known)) throw bad(`retraining policy: gate metric ${JSON.stringify(name)} does not apply to a ${task} task; use ${Object.keys(known).join(', ')}`);
    if (rule.threshold === undefined && rule.minAbsoluteChange === undefined && rule.minRelativeChange === undefined) {
      throw bad(`retraining policy: gate.metrics.${name} sets nothing; give threshold, minAbsoluteChange or minRelativeChange`);
    }
    const m: MetricRule = { greaterIsBetter: rule.greaterIsBetter ?? known[name]! };
    if (rule.threshold !== undefined) m.threshold = rule.threshold;
    if (rule.minAbsoluteChange !== undefined) m.minAbsoluteChange = rule.minAbsoluteChange;
    if (rule.minRelativeChange !== undefined) m.minRelativeChange = rule.minRelativeChange;
    metrics[name] = m;
  }
  const policy: RetrainPolicy = {
    enabled: p.enabled,
    task,
    triggers: {},
    guardrails: { cooldownMs: p.guardrails.cooldown, maxMachineLabelShare: p.guardrails.maxMachineLabelShare, approval: p.guardrails.approval },
    data: { sinceMs: p.data.since, sources: p.data.sources, holdout: p.data.holdout, minRows: p.data.minRows, maxRows: p.data.maxRows },
    train,
    gate: { metrics },
    deploy: { strategy: p.deploy.strategy },
  };
  if (p.triggers.drift) policy.triggers.drift = p.triggers.drift;
  if (p.triggers.accuracy) policy.triggers.accuracy = p.triggers.accuracy;
  if (p.triggers.labels) policy.triggers.labels = p.triggers.labels;
  if (p.triggers.schedule) policy.triggers.schedule = { everyMs: p.triggers.schedule.every };
  if (p.guardrails.maxLabelShift !== undefined) policy.guardrails.maxLabelShift = p.guardrails.maxLabelShift;
  if (p.data.base) policy.data.base = p.data.base.where ? { csv: p.data.base.csv, target: p.data.base.target, where: p.data.base.where } : { csv: p.data.base.csv, target: p.data.base.target };
  if (p.gate.latencyBudgetMs !== undefined) policy.gate.latencyBudgetMs = p.gate.latencyBudgetMs;
  if (p.gate.segments) policy.gate.segments = p.gate.segments;
  if (p.deploy.spec) policy.deploy.spec = p.deploy.spec;
  if (policy.deploy.strategy === 'direct' && policy.deploy.spec) throw bad('retraining policy: deploy.spec belongs to shadow and canary; a direct deploy takes none');
  return policy;
}

/**
 * Splits a command line into arguments, with single and double quotes and backslash escapes as a POSIX shell reads
 * them, and nothing else: no variables, globs, pipes or redirections, because the command runs without a shell.
 */
export function splitCommand(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) cur += line[++i]!;
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      has = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i]!;
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = '';
      has = false;
    } else {
      if ('|&;<>()$`*?'.includes(c)) throw bad(`retraining policy: train.command runs without a shell, so ${JSON.stringify(c)} would not do what a shell does; give the command as an array of arguments, or wrap it in a script`);
      cur += c;
    }
  }
  if (quote) throw bad('retraining policy: train.command has an unclosed quote');
  if (has || cur) out.push(cur);
  if (out.length === 0) throw bad('retraining policy: train.command is empty');
  return out;
}
