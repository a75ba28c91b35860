import type { Command } from 'commander';
import type { LabelOutcome, ReviewItem } from '../lifecycle/index.ts';
import type { ReviewPolicyRecord } from '../storage/index.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

const when = (ms: number | undefined) => (ms === undefined ? '' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

function number(raw: string, flag: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new CliError(`${flag} must be a number, got ${raw}`, 2);
  return n;
}

function itemId(raw: string): string {
  if (!/^[0-9]+$/.test(raw)) throw new CliError(`item id must be a positive integer, got ${raw}`, 2);
  return raw;
}

/** A label as typed: numbers and true/false become JSON numbers and booleans unless --string says otherwise. */
export function labelValue(raw: string, asString = false): number | string | boolean {
  if (asString) return raw;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) return Number(raw);
  return raw;
}

function policyText(p: ReviewPolicyRecord): string {
  return [
    `review policy of ${p.model}`,
    `confidence threshold: ${p.confidenceThreshold ?? '(none)'}`,
    `probability output:   ${p.output ?? '(first single-column floating-point output)'}`,
    `sample rate:          ${p.sampleRate ?? 0}`,
    `max queue:            ${p.maxQueue}`,
    `updated:              ${when(p.updatedAt)}`,
  ].join('\n');
}

const fmtValue = (v: unknown) => (v === undefined ? '' : JSON.stringify(v));

function itemsTable(items: ReviewItem[]): string {
  return table(
    items.map((i) => ({
      id: i.id,
      model: `${i.model} v${i.version}`,
      status: i.status,
      reason: i.reason,
      confidence: i.confidence.toFixed(3),
      request: `${i.requestId}#${i.row}`,
      created: when(i.createdAt),
      reviewer: i.labelledBy ?? (i.status === 'claimed' ? i.claimedBy : ''),
      label: fmtValue(i.label),
    })),
    ['id', 'model', 'status', 'reason', 'confidence', 'request', 'created', 'reviewer', 'label'],
  );
}

/** `warden review …`: set a model's review policy, list, claim and label queue items. */
export function registerReview(program: Command): void {
  const review = program.command('review').description('human review queue: policies, list, claim and label items');

  review
    .command('policy <model>')
    .description('show a model\'s review policy, or set it with --confidence and/or --sample-rate (or --delete it)')
    .option('--confidence <threshold>', 'rows with confidence max(p, 1-p) below this go to review, in (0.5, 1]')
    .option('--sample-rate <rate>', 'active-learning share of the other rows, in [0, 1]')
    .option('--output <name>', 'the output holding P(y=1) (default: the first single-column floating-point output)')
    .option('--max-queue <n>', 'bound on unlabelled items; new items beyond it are dropped and counted (default 10000)')
    .option('--delete', 'remove the policy')
    .action(async (model: string, o: { confidence?: string; sampleRate?: string; output?: string; maxQueue?: string; delete?: boolean }, cmd: Command) => {
      const c = clientFor(cmd);
      const path = `/api/v1/models/${encodeURIComponent(model)}/review-policy`;
      const setting = o.confidence !== undefined || o.sampleRate !== undefined || o.output !== undefined || o.maxQueue !== undefined;
      if (o.delete) {
        if (setting) throw new CliError('--delete takes no other policy option', 2);
        await c.request('DELETE', path);
        print(cmd, { deleted: model }, () => `review policy of ${model} deleted`);
        return;
      }
      if (!setting) {
        const p = await c.request<ReviewPolicyRecord>('GET', path);
        print(cmd, p, () => policyText(p));
        return;
      }
      const body: Record<string, unknown> = {};
      if (o.confidence !== undefined) body.confidenceThreshold = number(o.confidence, '--confidence');
      if (o.sampleRate !== undefined) body.sampleRate = number(o.sampleRate, '--sample-rate');
      if (o.output !== undefined) body.output = o.output;
      if (o.maxQueue !== undefined) body.maxQueue = number(o.maxQueue, '--max-queue');
      const p = await c.request<ReviewPolicyRecord>('PUT', path, body);
      print(cmd, p, () => policyText(p));
    });

  review
    .command('list')
    .description('queue items, oldest first')
    .option('--model <name>', 'only this model')
    .option('--status <status>', 'open, claimed or labelled')
    .option('--limit <n>', 'at most this many (1-1000)', '100')
    .option('--after <id>', 'items after this id (paging)')
    .action(async (o: { model?: string; status?: string; limit: string; after?: string }, cmd: Command) => {
      const q = new URLSearchParams({ limit: o.limit });
      if (o.model) q.set('model', o.model);
      if (o.status) q.set('status', o.status);
      if (o.after) q.set('after', o.after);
      const res = await clientFor(cmd).request<{ items: ReviewItem[]; nextCursor: string | null }>('GET', `/api/v1/review/items?${q}`);
      print(cmd, res, () => (res.items.length === 0 ? 'no review items' : itemsTable(res.items)));
    });

  review
    .command('show <id>')
    .description('one item with its inputs and prediction')
    .action(async (id: string, _o, cmd: Command) => {
      const item = await clientFor(cmd).request<ReviewItem>('GET', `/api/v1/review/items/${itemId(id)}`);
      print(cmd, item, () => JSON.stringify(item, null, 2));
    });

  review
    .command('claim <id>')
    .description('claim an item (for 15 minutes) so other reviewers skip it')
    .requiredOption('--reviewer <name>', 'who reviews it')
    .action(async (id: string, o: { reviewer: string }, cmd: Command) => {
      const item = await clientFor(cmd).request<ReviewItem>('POST', `/api/v1/review/items/${itemId(id)}/claim`, { reviewer: o.reviewer });
      print(cmd, item, () =>
        [`claimed item ${item.id} for ${item.claimedBy}`, `inputs:     ${JSON.stringify(item.inputs)}`, `prediction: ${JSON.stringify(item.prediction)} (confidence ${item.confidence.toFixed(3)})`].join('\n'),
      );
    });

  review
    .command('label <id> <value>')
    .description('label an item; the label also feeds live performance as a human label')
    .requiredOption('--reviewer <name>', 'who labels it')
    .option('--string', 'send the value as text even when it looks like a number or boolean')
    .action(async (id: string, value: string, o: { reviewer: string; string?: boolean }, cmd: Command) => {
      const res = await clientFor(cmd).request<LabelOutcome>('POST', `/api/v1/review/items/${itemId(id)}/label`, {
        value: labelValue(value, o.string),
        reviewer: o.reviewer,
      });
      print(cmd, res, () =>
        [
          `labelled item ${res.item.id} as ${JSON.stringify(res.item.label)} (${res.item.labelledBy})`,
          res.forwarded ? 'label stored as a human label of the prediction' : `label kept on the item only: ${res.forwardError ?? 'not forwarded'}`,
        ].join('\n'),
      );
    });
}
