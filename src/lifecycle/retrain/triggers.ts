import type { WindowSummary } from '../../monitoring/index.ts';
import type { JobRecord } from '../../storage/index.ts';
import type { RetrainPolicy } from './policy.ts';

export type TriggerKind = 'drift' | 'accuracy' | 'labels' | 'schedule';

export interface TriggerCheck {
  trigger: TriggerKind;
  fired: boolean;
  detail: string;
  values: Record<string, number>;
}

export interface GuardrailCheck {
  guardrail: 'enabled' | 'one-at-a-time' | 'cooldown' | 'machine-labels' | 'label-shift' | 'data';
  holding: boolean;
  detail: string;
  values?: Record<string, number>;
}

/** What the controller decided for one deployment at one moment, with every number behind it. */
export interface TriggerEvaluation {
  at: number;
  version: number;
  decision: 'start' | 'hold' | 'none';
  /** The first trigger that fired (what a started job records as its cause). */
  fired?: TriggerCheck;
  reason: string;
  triggers: TriggerCheck[];
  guardrails: GuardrailCheck[];
}

export interface TriggerContext {
  now: number;
  policy: RetrainPolicy;
  /** When the policy was last saved: a schedule counts from it until the first job. */
  policyUpdatedAt: number;
  /** The stable version and its offline metrics (what it scored when trained). */
  version: number;
  offline: Record<string, number>;
  /** Closed windows of the stable version within the policy's data range, newest first. */
  windows: readonly WindowSummary[];
  /** The deployment's newest job, and its active one if any. */
  lastJob?: JobRecord;
  activeJob?: JobRecord;
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

/**
 * Evaluates a deployment's triggers and guardrails. Counting starts again after each job: drift must be confirmed on
 * windows that began after the last run was started, labels are those that arrived since, and the schedule runs from
 * it. The guardrails hold a fired trigger: one run at a time, the cooldown after the last run, and the feedback-loop
 * indicators of the newest labelled window (the share of machine-made labels; the label shift when a limit is set).
 */
export function evaluateTriggers(ctx: TriggerContext): TriggerEvaluation {
  const { policy, now } = ctx;
  const since = ctx.lastJob?.createdAt ?? -Infinity;
  const fresh = ctx.windows.filter((w) => w.windowStart >= since);
  const triggers: TriggerCheck[] = [];

  const drift = policy.triggers.drift;
  if (drift) {
    const lastN = fresh.slice(0, drift.windows);
    const drifted = lastN.filter((w) => w.datasetDrift).length;
    const fired = lastN.length >= drift.windows && drifted === drift.windows;
    triggers.push({
      trigger: 'drift',
      fired,
      detail: `${drifted} of the last ${lastN.length} windows${ctx.lastJob ? ' since the last run' : ''} show dataset drift; ${drift.windows} in a row confirm it`,
      values: { drifted, windows: lastN.length, needed: drift.windows, driftShare: lastN[0]?.driftShare ?? 0 },
    });
  }

  const acc = policy.triggers.accuracy;
  if (acc) triggers.push(accuracyTrigger(acc, fresh, ctx.offline, policy.task));

  const labels = policy.triggers.labels;
  if (labels) {
    const n = fresh.reduce((s, w) => s + (w.performance?.labelled ?? 0), 0);
    triggers.push({ trigger: 'labels', fired: n >= labels.min, detail: `${n} labelled rows${ctx.lastJob ? ' since the last run' : ''}; ${labels.min} start one`, values: { labelled: n, min: labels.min } });
  }

  const schedule = policy.triggers.schedule;
  if (schedule) {
    const from = ctx.lastJob?.createdAt ?? ctx.policyUpdatedAt;
    const due = from + schedule.everyMs;
    triggers.push({
      trigger: 'schedule',
      fired: now >= due,
      detail: now >= due ? `due since ${new Date(due).toISOString()} (every ${Math.round(schedule.everyMs / 60_000)} min)` : `next at ${new Date(due).toISOString()}`,
      values: { due },
    });
  }

  const guardrails: GuardrailCheck[] = [];
  guardrails.push({ guardrail: 'enabled', holding: !policy.enabled, detail: policy.enabled ? 'the policy is enabled' : 'the policy is disabled: triggers are evaluated and shown, never acted on' });
  guardrails.push({
    guardrail: 'one-at-a-time',
    holding: ctx.activeJob !== undefined,
    detail: ctx.activeJob ? `job #${ctx.activeJob.id} is ${ctx.activeJob.state}` : 'no job is awaiting approval, queued or running',
  });
  const ended = ctx.lastJob?.finishedAt;
  const coolUntil = ended === undefined ? -Infinity : ended + policy.guardrails.cooldownMs;
  guardrails.push({
    guardrail: 'cooldown',
    holding: now < coolUntil,
    detail: now < coolUntil ? `the last run ended at ${new Date(ended!).toISOString()}; cooling down until ${new Date(coolUntil).toISOString()}` : 'no run ended within the cooldown',
    values: { cooldownMs: policy.guardrails.cooldownMs },
  });
  const concept = ctx.windows.find((w) => w.performance?.concept)?.performance?.concept;
  const machine = concept?.machineLabelShare ?? 0;
  guardrails.push({
    guardrail: 'machine-labels',
    holding: machine > policy.guardrails.maxMachineLabelShare,
    detail: `${pct(machine)} of the newest labelled window's labels were made by a model; at most ${pct(policy.guardrails.maxMachineLabelShare)} before a model would learn from its own answers`,
    values: { share: machine, max: policy.guardrails.maxMachineLabelShare },
  });
  if (policy.guardrails.maxLabelShift !== undefined) {
    const shift = concept?.labelShift ?? 0;
    guardrails.push({
      guardrail: 'label-shift',
      holding: shift > policy.guardrails.maxLabelShift,
      detail: `label shift ${shift.toPrecision(3)} against the reference; at most ${policy.guardrails.maxLabelShift}`,
      values: { shift, max: policy.guardrails.maxLabelShift },
    });
  }
  const available = ctx.windows.reduce((s, w) => s + (w.performance?.labelled ?? 0), 0);
  guardrails.push({
    guardrail: 'data',
    holding: available < policy.data.minRows,
    detail: `${available} labelled rows in the data range; a run needs ${policy.data.minRows}`,
    values: { labelled: available, min: policy.data.minRows },
  });

  const fired = triggers.find((t) => t.fired);
  const holding = guardrails.filter((g) => g.holding);
  const base = { at: now, version: ctx.version, triggers, guardrails };
  if (!fired) return { ...base, decision: 'none', reason: triggers.length ? 'no trigger fired' : 'the policy has no trigger' };
  if (holding.length) return { ...base, decision: 'hold', fired, reason: `${fired.trigger} fired, held by ${holding.map((g) => g.guardrail).join(', ')}: ${holding[0]!.detail}` };
  return { ...base, decision: 'start', fired, reason: `${fired.trigger}: ${fired.detail}` };
}

/**
 * Live accuracy below offline: the newest `windows` windows with labels each have their realized primary metric
 * outside the offline tolerance (monitoring's `offline.healthy`). Windows without labels use the estimate (CBPE
 * accuracy, DLE RMSE) against the offline metric when `estimated` is on.
 */
function accuracyTrigger(acc: NonNullable<RetrainPolicy['triggers']['accuracy']>, windows: readonly WindowSummary[], offline: Record<string, number>, task: RetrainPolicy['task']): TriggerCheck {
  const primary = task === 'binary' ? 'accuracy' : 'rmse';
  const off = offline[primary];
  const judged: { healthy: boolean; live: number; source: 'live' | 'estimated' }[] = [];
  for (const w of windows) {
    if (judged.length >= acc.windows) break;
    const p = w.performance;
    if (p?.offline) judged.push({ healthy: p.offline.healthy, live: p.offline.live, source: 'live' });
    else if (acc.estimated && p?.estimated && off !== undefined && off !== 0) {
      const est = (p.estimated as unknown as Record<string, number>)[primary];
      if (est === undefined) continue;
      const gap = (est - off) / Math.abs(off);
      judged.push({ healthy: task === 'binary' ? gap >= -acc.tolerance : gap <= acc.tolerance, live: est, source: 'estimated' });
    }
  }
  const bad = judged.filter((j) => !j.healthy).length;
  const fired = judged.length >= acc.windows && bad === acc.windows;
  const newest = judged[0];
  return {
    trigger: 'accuracy',
    fired,
    detail: newest
      ? `${bad} of the last ${judged.length} judged windows below offline ${primary} ${off ?? 'n/a'} (newest: ${newest.source} ${newest.live.toPrecision(4)}); ${acc.windows} in a row start a run`
      : `no window with labels${acc.estimated ? ' or an estimate' : ''} to judge`,
    values: { below: bad, judged: judged.length, needed: acc.windows, ...(newest ? { newest: newest.live } : {}), ...(off !== undefined ? { offline: off } : {}) },
  };
}
