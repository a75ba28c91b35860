import { z, type ZodIssue } from 'zod';
import { WardenError } from '../errors.ts';

/** SLI kinds: three measured on every request, three on monitoring windows, one on CPU cost, one on feature freshness (docs/slo.md). */
export const SLI_KINDS = ['latency', 'availability', 'accuracy', 'drift_free', 'completeness', 'cost', 'explanation_coverage', 'feature_freshness'] as const;
export type SliKind = (typeof SLI_KINDS)[number];

/**
 * SLIs counted from the prediction log's request events and expressible from /metrics (exported as Prometheus rules).
 * explanation_coverage is counted from request events too, but its failed explanations are not told apart in /metrics.
 */
export const TRAFFIC_SLI_KINDS: readonly SliKind[] = ['latency', 'availability'];
/** SLIs counted from evaluated monitoring windows. */
export const WINDOW_SLI_KINDS: readonly SliKind[] = ['accuracy', 'drift_free', 'completeness'];

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/;

/** Milliseconds of a duration such as `30d`, `6h`, `5m` (one number and one unit); undefined when malformed. */
export function durationMs(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : undefined;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const sliSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('latency'),
      /** A request is good when it succeeded within this many milliseconds. */
      thresholdMs: z.number().positive().max(600_000),
    })
    .strict(),
  z.object({ kind: z.literal('availability') }).strict(),
  z
    .object({
      kind: z.literal('accuracy'),
      /** realized: share of labelled predictions that were correct; live_offline_gap: share of windows within tolerance of offline. */
      method: z.enum(['realized', 'live_offline_gap']).default('realized'),
    })
    .strict(),
  z.object({ kind: z.literal('drift_free') }).strict(),
  z.object({ kind: z.literal('completeness') }).strict(),
  z
    .object({
      kind: z.literal('cost'),
      /** A minute is good when the deployment's cost per 1,000 inferences stays at or under this (config currency). */
      maxCostPer1k: z.number().positive(),
    })
    .strict(),
  /** A successful request is good when it was answered with its explanation (`parameters.explain`). */
  z.object({ kind: z.literal('explanation_coverage') }).strict(),
  z
    .object({
      kind: z.literal('feature_freshness'),
      /** The feature view watched (one the deployment reads). */
      view: z.string().min(1).max(256),
      /** A minute is good when the view's staleness (now - newest event time online) stayed at or under this. */
      maxStalenessMs: z.number().positive().max(400 * DAY),
    })
    .strict(),
]);

const NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

const sloBody = z
  .object({
    name: z.string().regex(NAME, 'must be 1-64 characters of a-z, 0-9, "_", "." or "-", starting with a letter or digit'),
    deployment: z.string().min(1).max(256),
    /** Only this version's requests or windows count (a candidate's own SLO during a rollout); default every version. */
    version: z.number().int().positive().max(1e9).optional(),
    description: z.string().max(1000).optional(),
    sli: sliSchema,
    objective: z
      .number()
      .gt(0, 'must be above 0')
      .lt(1, 'must be below 1 (an objective of 1 leaves no error budget; write 0.999 for 99.9%)'),
    period: z.string().refine(
      (p) => {
        const ms = durationMs(p);
        return ms !== undefined && ms >= HOUR && ms <= 400 * DAY;
      },
      { message: 'must be a duration between 1h and 400d such as "30d", "28d" or "7d"' },
    ),
  })
  .strict()
  .refine((s) => s.version === undefined || s.sli.kind !== 'cost', {
    message: 'a cost SLO is per deployment: its CPU time is not split by version; drop "version"',
    path: ['version'],
  })
  .refine((s) => s.version === undefined || s.sli.kind !== 'feature_freshness', {
    message: 'a feature_freshness SLO watches a feature view, which every version reads alike; drop "version"',
    path: ['version'],
  });

/** One SLO: a target share of good events for one SLI of one deployment (model name), over a rolling period. */
export type SloDefinition = z.output<typeof sloBody>;
/** The SLI part of an SLO. */
export type SliSpec = SloDefinition['sli'];
/** An SLO as written (defaults not applied yet). */
export type SloInput = z.input<typeof sloBody>;

const fileSchema = z
  .object({
    // `slos:` with nothing under it reads as null: no SLOs, like a missing key.
    slos: z.array(sloBody).nullish(),
  })
  .strict();

function issueText(issue: ZodIssue, prefix: string): string {
  const where = [prefix, ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : p))].filter(Boolean).join('.').replace(/\.\[/g, '[');
  if (issue.code === 'unrecognized_keys') return `${where ? `${where}: ` : ''}unknown key ${issue.keys.join(', ')}`;
  if (issue.code === 'invalid_union_discriminator') return `${where}: must be one of ${SLI_KINDS.join(', ')}`;
  return `${where || '(root)'}: ${issue.message}`;
}

/** Validates one SLO (as the API receives it); throws WARDEN_BAD_REQUEST listing every problem with its path. */
export function parseSlo(raw: unknown): SloDefinition {
  const result = sloBody.safeParse(raw);
  if (!result.success) {
    throw new WardenError('WARDEN_BAD_REQUEST', `invalid SLO: ${result.error.issues.map((i) => issueText(i, '')).join('; ')}`);
  }
  return result.data;
}

/**
 * Validates the content of an SLO file (`slos: [...]`): every SLO as `parseSlo` checks it, and names unique.
 * Throws WARDEN_BAD_REQUEST naming the path of each problem (`slos[2].sli.thresholdMs: …`).
 */
export function parseSloFile(raw: unknown, source = 'slo file'): SloDefinition[] {
  const result = fileSchema.safeParse(raw ?? {});
  if (!result.success) {
    throw new WardenError('WARDEN_BAD_REQUEST', `${source} is invalid: ${result.error.issues.map((i) => issueText(i, '')).join('; ')}`);
  }
  const slos = result.data.slos ?? [];
  const seen = new Set<string>();
  for (const [i, s] of slos.entries()) {
    if (seen.has(s.name)) throw new WardenError('WARDEN_BAD_REQUEST', `${source} is invalid: slos[${i}].name: ${s.name} is defined twice`);
    seen.add(s.name);
  }
  return slos;
}

/** The SLO's rolling period in milliseconds (validated: always defined for a parsed SLO). */
export function periodMs(slo: Pick<SloDefinition, 'period'>): number {
  const ms = durationMs(slo.period);
  if (ms === undefined) throw new WardenError('WARDEN_BAD_REQUEST', `period ${JSON.stringify(slo.period)} is not a duration`);
  return ms;
}

/** True when two definitions measure the same thing (same deployment and SLI): their recorded series stay valid. */
export function sameSli(a: SloDefinition, b: SloDefinition): boolean {
  return a.deployment === b.deployment && a.version === b.version && JSON.stringify(a.sli) === JSON.stringify(b.sli);
}

/** Runbook of each SLI kind (relative to the repository, as the alerting engine expects); a doc section where none exists. */
export const RUNBOOKS: Record<SliKind, string> = {
  latency: 'docs/runbooks/latency-spike.md',
  availability: 'docs/runbooks/pipeline-failure-nans.md',
  accuracy: 'docs/runbooks/concept-drift.md',
  drift_free: 'docs/runbooks/data-drift.md',
  completeness: 'docs/runbooks/pipeline-failure-nans.md',
  cost: 'docs/runbooks/cost-runaway.md',
  // No runbook covers explanations; the coverage section says what the SLI counts and why it falls.
  explanation_coverage: 'docs/explainability.md#coverage',
  feature_freshness: 'docs/runbooks/training-serving-skew.md#stale-online-features',
};

/** A one-line account of what the SLI counts as good, for status pages, alerts and rule comments. */
export function describeSli(sli: SliSpec): string {
  switch (sli.kind) {
    case 'latency':
      return `share of successful requests answered within ${sli.thresholdMs} ms`;
    case 'availability':
      return 'share of requests not failing with a server (5xx) error; client (4xx) errors are not counted';
    case 'accuracy':
      return sli.method === 'live_offline_gap'
        ? 'share of evaluated windows whose live metric is within tolerance of the offline metric'
        : 'share of labelled predictions that were correct';
    case 'drift_free':
      return 'share of evaluated windows without dataset drift';
    case 'completeness':
      return 'share of evaluated windows whose completeness checks pass';
    case 'cost':
      return `share of minutes whose cost per 1,000 inferences is at most ${sli.maxCostPer1k}`;
    case 'explanation_coverage':
      return 'share of successful requests answered with an explanation (parameters.explain); requests whose explanation failed count as not explained';
    case 'feature_freshness':
      return `share of minutes in which feature view ${sli.view}'s newest online value was at most ${sli.maxStalenessMs} ms old`;
  }
}
