import { createWriteStream } from 'node:fs';
import { rename } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { verifyAuditChain, type AuditVerification } from '../security/index.ts';
import { openMetadataStore, type AuditEntry } from '../storage/index.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

const when = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
const who = (e: AuditEntry) => (e.actor.kind === 'key' ? `key ${e.actor.id} (${e.actor.role})` : e.actor.kind === 'loop' ? `loop ${e.actor.id}` : e.actor.kind === 'local' ? `local user ${e.actor.id}` : 'anonymous');

interface LogOptions {
  since?: string;
  until?: string;
  actor?: string;
  object?: string;
  deployment?: string;
  action?: string;
  requestId?: string;
  limit: string;
  format: string;
  out?: string;
}

function parseHead(raw: string): { seq: number; hash?: string } {
  const m = /^(\d+)(?::([0-9a-f]{64}))?$/.exec(raw);
  if (!m) throw new CliError('--expect-head must be SEQ or SEQ:HASH, as `warden audit verify` printed it (e.g. 1234:9f86d0…, 64 hex digits)', 2);
  return { seq: Number(m[1]), ...(m[2] ? { hash: m[2] } : {}) };
}

function verificationText(v: AuditVerification): string {
  const head = v.head ? `head ${v.head.seq}:${v.head.hash} (${when(v.head.at)})` : 'the log is empty';
  if (v.ok) return `audit log intact: ${v.entries} entries, ${head}; checked in ${v.ms} ms`;
  return [`audit log TAMPERED: ${v.problems.length} problem(s) in ${v.entries} entries (${head})`, ...v.problems.map((p) => `  seq ${p.seq}: ${p.problem}: ${p.detail}`)].join('\n');
}

/** `warden audit log | verify`: the audit trail (docs/audit.md); who deployed what is `warden deployments served`. */
export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the audit log of state changes: list or export it, verify its hash chain');

  audit
    .command('log')
    .description('audit entries, newest first (a table), or every matching entry oldest first as JSON lines (--format jsonl)')
    .option('--since <time>', 'entries at or after this time (ISO-8601 or epoch ms)')
    .option('--until <time>', 'entries before this time')
    .option('--actor <id>', 'a key id, or a loop name (rollouts, retraining)')
    .option('--object <object>', 'e.g. model:bike-demand, deployment:bike-demand, key:1a2b3c')
    .option('--deployment <name>', 'entries about the deployment and its model')
    .option('--action <prefix>', 'actions starting with this, e.g. "PUT /api/v1/slos" or rollout.')
    .option('--request-id <id>', 'the entries of one request or loop action')
    .option('--limit <n>', 'entries in the table (at most 1000)', '100')
    .option('--format <format>', 'table or jsonl', 'table')
    .option('-o, --out <file>', 'write the JSON lines to a file (written as FILE.partial, renamed when complete)')
    .action(async (o: LogOptions, cmd: Command) => {
      if (o.format !== 'table' && o.format !== 'jsonl') throw new CliError('--format must be table or jsonl', 2);
      if (o.out && o.format !== 'jsonl') throw new CliError('--out writes JSON lines: add --format jsonl', 2);
      const q = new URLSearchParams();
      const set = (k: string, v: string | undefined) => v !== undefined && q.set(k, v);
      set('since', o.since);
      set('until', o.until);
      set('actor', o.actor);
      set('object', o.object);
      set('deployment', o.deployment);
      set('action', o.action);
      set('requestId', o.requestId);
      const client = clientFor(cmd);
      if (o.format === 'jsonl') {
        q.set('format', 'jsonl');
        const res = await client.open('GET', `/api/v1/audit?${q}`);
        const body = Readable.fromWeb(res.body! as import('node:stream/web').ReadableStream<Uint8Array>);
        if (!o.out) {
          await pipeline(body, process.stdout, { end: false });
          return;
        }
        const partial = `${o.out}.partial`;
        await pipeline(body, createWriteStream(partial));
        await rename(partial, o.out);
        process.stderr.write(`wrote ${o.out}\n`);
        return;
      }
      q.set('limit', o.limit);
      const res = await client.request<{ entries: AuditEntry[]; nextBefore?: number }>('GET', `/api/v1/audit?${q}`);
      print(cmd, res, () =>
        res.entries.length === 0
          ? 'no audit entries match'
          : table(
              res.entries.map((e) => ({ seq: e.seq, at: when(e.at), actor: who(e), action: e.action, object: e.object, request: e.requestId })),
              ['seq', 'at', 'actor', 'action', 'object', 'request'],
            ) + (res.nextBefore !== undefined ? `\n(more: --limit, or the API's before=${res.nextBefore})` : ''),
      );
    });

  audit
    .command('verify')
    .description("recompute the audit log's hash chain: exit 1 naming each entry edited, deleted or moved")
    .option('--expect-head <seq[:hash]>', 'a head recorded earlier (from this command\'s output): entries deleted from the end are found only against it')
    .option('--offline', 'read the store directly (the data directory or storage.url) instead of asking the server')
    .option('--data-dir <dir>', 'storage.dataDir (implies --offline)')
    .option('-c, --config <file>', 'config file (implies --offline)')
    .action(async (o: { expectHead?: string; offline?: boolean; dataDir?: string; config?: string }, cmd: Command) => {
      const expect = o.expectHead ? parseHead(o.expectHead) : undefined;
      let v: AuditVerification;
      if (o.offline || o.dataDir || o.config) {
        const config = await loadConfig({ ...(o.config ? { file: o.config } : {}), overrides: { 'storage.dataDir': o.dataDir } });
        const store = await openMetadataStore(config.storage);
        try {
          let shown = 0;
          v = await verifyAuditChain(store, {
            ...(expect ? { expectHead: expect } : {}),
            onProgress: (n) => {
              if (n - shown >= 100_000) {
                process.stderr.write(`checked ${n} entries\n`);
                shown = n;
              }
            },
          });
        } finally {
          await store.close();
        }
      } else {
        const q = expect ? `?expectSeq=${expect.seq}${expect.hash ? `&expectHash=${expect.hash}` : ''}` : '';
        v = await clientFor(cmd).request<AuditVerification>('GET', `/api/v1/audit/verify${q}`);
      }
      print(cmd, v, () => verificationText(v));
      if (!v.ok) process.exitCode = 1;
    });
}
