import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { GameDayRecord } from '../lifecycle/index.ts';
import { tableFromCsv } from '../monitoring/index.ts';
import type { ModelVersionRecord } from '../storage/index.ts';
import type { WardenClient } from './client.ts';
import { clientFor, print } from './models.ts';
import { CliError, table } from './output.ts';

/** The bundled demo rows `--traffic` replays when no `--traffic-file` is given. */
export const DEMO_TRAFFIC_CSV = path.resolve(import.meta.dirname, '../../data/bike-sharing/hour.csv');

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `500ms`, `30s`, `10m`, `1h`, `1m30s` → milliseconds; a bare number is refused (which unit?). */
export function parseDurationFlag(raw: string, flag: string): number {
  const parts = [...raw.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== raw.trim()) {
    throw new CliError(`${flag} must be a duration such as 30s, 10m or 1h, got ${JSON.stringify(raw)}`, 2);
  }
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * UNITS[p[2]!]!, 0));
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** One alert as the game day saw it fire. */
export interface FiredAlert {
  alertname: string;
  severity: string;
  labels: Record<string, string>;
  /** Epoch ms when it fired (the server's time when the alert says, else when the CLI first saw it firing). */
  firedAt: number;
  /** Time from the fault's start to firing. */
  afterMs: number;
}

/** What `warden gameday` prints (and returns, for tests). */
export interface GameDayReport {
  gameday: GameDayRecord;
  traffic?: { sent: number; ok: number; failed: number; injectedFailures: number };
  alerts: FiredAlert[];
  /** Alerts of the deployment already firing when the game day started; not counted as caught. */
  alreadyFiring: string[];
  /** Set when the server has no alerting API (404) or it failed: the report then cannot say what fired. */
  alertingUnavailable?: string;
}

export interface GameDayOptions {
  deployment: string;
  fault: string;
  durationMs: number;
  intensity?: number;
  feature?: string;
  /** Requests per second to send while the game day runs (0: none). */
  trafficRps?: number;
  trafficFile?: string;
  pollMs?: number;
  /** Keep polling this long after the fault ends: alerts with a `for` may fire late. */
  waitMs?: number;
  /** Progress lines (stderr in the CLI). */
  progress?: (line: string) => void;
  /** Resolves to stop the game day early (Ctrl-C in the CLI). */
  abort?: Promise<void>;
}

interface AlertLike {
  alertname?: string;
  name?: string;
  labels?: Record<string, string>;
  severity?: string;
  state?: string;
  status?: string | { state?: string };
  firingAt?: number | string;
  firedAt?: number | string;
  activeAt?: number | string;
  startsAt?: number | string;
  since?: number | string;
  ts?: number | string;
  at?: number | string;
  to?: string;
}

function listOf(body: unknown, ...keys: string[]): AlertLike[] {
  if (Array.isArray(body)) return body as AlertLike[];
  if (body && typeof body === 'object') {
    for (const k of keys) {
      const v = (body as Record<string, unknown>)[k];
      if (Array.isArray(v)) return v as AlertLike[];
    }
  }
  return [];
}

const timeOf = (v: number | string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const t = typeof v === 'number' ? v : Date.parse(v);
  return Number.isFinite(t) && t > 0 ? t : undefined;
};

const nameOf = (a: AlertLike) => a.alertname ?? a.labels?.alertname ?? a.name ?? '(unnamed)';
const stateOf = (a: AlertLike) => (a.to ?? a.state ?? (typeof a.status === 'string' ? a.status : a.status?.state) ?? '').toLowerCase();
/** Firing, whether or not a silence, an inhibiting page or a rollout mutes its notifications. */
const FIRING = new Set(['firing', 'silenced', 'inhibited', 'suppressed', 'active']);
const isFiring = (a: AlertLike) => FIRING.has(stateOf(a));
const severityOf = (a: AlertLike) => a.severity ?? a.labels?.severity ?? '';
const alertKey = (a: AlertLike) =>
  `${nameOf(a)}\u0000${Object.entries(a.labels ?? {})
    .filter(([k]) => k !== 'alertname' && k !== 'severity')
    .sort(([x], [y]) => x.localeCompare(y))
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}`;

/** Reads the feature names the deployment's default version takes, for `--traffic`. */
async function featuresOf(c: WardenClient, deployment: string): Promise<string[]> {
  const name = encodeURIComponent(deployment);
  let v: ModelVersionRecord;
  try {
    v = await c.request<ModelVersionRecord>('GET', `/api/v1/models/${name}/versions/champion`);
  } catch (e) {
    if (!(e instanceof CliError) || !e.message.includes('→ 404')) throw e;
    v = await c.request<ModelVersionRecord>('GET', `/api/v1/models/${name}/versions/latest`);
  }
  const features = v.signature.features?.map((f) => f.name) ?? [];
  if (features.length === 0) throw new CliError(`--traffic sends :predict requests, and ${deployment} v${v.version} has no named features`, 2);
  return features;
}

/** Rows of the traffic file as `:predict` instances of the given features. */
async function trafficRows(file: string, features: string[]): Promise<Record<string, unknown>[]> {
  const bytes = await readFile(file).catch((e: Error) => {
    throw new CliError(`cannot read traffic file ${file}: ${e.message}`, 2);
  });
  const t = tableFromCsv(bytes);
  const missing = features.filter((f) => !t.names.includes(f));
  if (missing.length) throw new CliError(`traffic file ${file} lacks the feature column(s) ${missing.join(', ')}`, 2);
  const idx = features.map((f) => t.names.indexOf(f));
  const rows = t.rows.map((r) => Object.fromEntries(features.map((f, i) => [f, r[idx[i]!]])));
  if (rows.length === 0) throw new CliError(`traffic file ${file} has no rows`, 2);
  return rows;
}

/** Sends `rps` single-row `:predict` requests per second until stopped; at most 256 in flight. */
function driveTraffic(c: WardenClient, deployment: string, rows: Record<string, unknown>[], rps: number) {
  const stats = { sent: 0, ok: 0, failed: 0, injectedFailures: 0 };
  const url = `/v1/models/${encodeURIComponent(deployment)}:predict`;
  let inflight = 0;
  let next = 0;
  const pending = new Set<Promise<void>>();
  const send = () => {
    if (inflight >= 256) return;
    const row = rows[next++ % rows.length]!;
    inflight++;
    stats.sent++;
    const p = c
      .request('POST', url, { instances: [row] })
      .then(() => {
        stats.ok++;
      })
      .catch((e: Error) => {
        stats.failed++;
        if (e.message.includes('WARDEN_FAULT_INJECTED')) stats.injectedFailures++;
      })
      .finally(() => {
        inflight--;
        pending.delete(p);
      });
    pending.add(p);
  };
  // A 10 ms tick sends what the rate owes since the start, so the rate holds above 100/s too.
  const started = Date.now();
  const timer = setInterval(() => {
    const owed = Math.floor(((Date.now() - started) / 1000) * rps) - stats.sent;
    for (let i = 0; i < Math.min(owed, 1000); i++) send();
  }, 10);
  return {
    stats,
    async stop() {
      clearInterval(timer);
      await Promise.all(pending);
    },
  };
}

/**
 * Runs one game day against a server: starts it, optionally drives traffic, polls the deployment's alerts
 * until the fault has ended (plus `waitMs`), then reads the alert history and the game day's final state.
 */
export async function runGameDay(c: WardenClient, o: GameDayOptions): Promise<GameDayReport> {
  const progress = o.progress ?? (() => undefined);
  const pollMs = Math.max(100, o.pollMs ?? 1000);
  // Read the traffic rows first: a bad file should fail before any fault is armed.
  const rows = o.trafficRps ? await trafficRows(o.trafficFile ?? DEMO_TRAFFIC_CSV, await featuresOf(c, o.deployment)) : undefined;

  let alertingUnavailable: string | undefined;
  const readAlerts = async (p: string, ...keys: string[]): Promise<AlertLike[] | undefined> => {
    if (alertingUnavailable) return undefined;
    try {
      return listOf(await c.request<unknown>('GET', p), ...keys);
    } catch (e) {
      alertingUnavailable = `${(e as Error).message}`;
      progress(`alerting API unavailable, the report cannot list alerts: ${alertingUnavailable}`);
      return undefined;
    }
  };
  const ours = (a: AlertLike) => a.labels?.deployment === o.deployment;

  // Alerts firing before the fault are not caught by it.
  const before = new Set(((await readAlerts('/api/v1/alerts', 'alerts', 'data')) ?? []).filter((a) => ours(a) && isFiring(a)).map(alertKey));

  const body: Record<string, unknown> = { deployment: o.deployment, fault: o.fault, durationMs: o.durationMs };
  if (o.intensity !== undefined) body.intensity = o.intensity;
  if (o.feature !== undefined) body.feature = o.feature;
  let gameday = await c.request<GameDayRecord>('POST', '/api/v1/gamedays', body);
  const clientStart = Date.now();
  progress(`game day ${gameday.id} started on ${o.deployment}: ${gameday.fault} for ${seconds(gameday.durationMs)}, ${gameday.effect}`);

  let aborted = false;
  void o.abort?.then(() => (aborted = true));
  const traffic = rows && o.trafficRps ? driveTraffic(c, o.deployment, rows, o.trafficRps) : undefined;
  const fired = new Map<string, FiredAlert>();
  const note = (a: AlertLike, seenAt: number) => {
    const key = alertKey(a);
    if (fired.has(key) || before.has(key)) return;
    // Current alerts say when they started firing; history transitions say when they happened.
    const at = timeOf(a.firingAt) ?? timeOf(a.firedAt) ?? timeOf(a.startsAt) ?? timeOf(a.at) ?? timeOf(a.ts) ?? timeOf(a.activeAt);
    // The alert's own time is on the server's clock, like startedAt; the CLI's sighting is mapped onto it.
    const firedAt = at ?? gameday.startedAt + (seenAt - clientStart);
    if (firedAt < gameday.startedAt - 1000) {
      before.add(key);
      return;
    }
    const f: FiredAlert = { alertname: nameOf(a), severity: severityOf(a), labels: a.labels ?? {}, firedAt, afterMs: Math.max(0, firedAt - gameday.startedAt) };
    fired.set(key, f);
    progress(`alert ${f.alertname}${f.severity ? ` (${f.severity})` : ''} fired ${seconds(f.afterMs)} after the fault started`);
  };

  const endAt = clientStart + gameday.durationMs + (o.waitMs ?? 0);
  let lastProgress = clientStart;
  try {
    while (!aborted && Date.now() < endAt) {
      await Promise.race([new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, endAt - Date.now())))), o.abort ?? new Promise(() => undefined)]);
      const now = Date.now();
      for (const a of (await readAlerts('/api/v1/alerts', 'alerts', 'data')) ?? []) if (ours(a) && isFiring(a)) note(a, now);
      if (now - lastProgress >= 5000) {
        lastProgress = now;
        const t = traffic?.stats;
        progress(`${seconds(now - clientStart)}/${seconds(gameday.durationMs)}${t ? `, traffic ${t.ok} ok / ${t.failed} failed` : ''}, ${fired.size} alert(s) fired`);
      }
    }
  } finally {
    await traffic?.stop();
    gameday = aborted ? await c.request<GameDayRecord>('DELETE', `/api/v1/gamedays/${gameday.id}`) : gameday;
    if (aborted) progress(`stopped game day ${gameday.id} early`);
  }
  // Alerts that fired and resolved between two polls are in the history.
  const history = await readAlerts(`/api/v1/alerts/history?since=${gameday.startedAt}&deployment=${encodeURIComponent(o.deployment)}&kind=transition&limit=1000`, 'entries', 'history');
  for (const entry of history ?? []) {
    // An entry wraps the transition it records (`data`: labels, from, to, at).
    const data = (entry as { data?: unknown }).data;
    const a: AlertLike = data && typeof data === 'object' ? { ...(data as AlertLike), at: (data as AlertLike).at ?? entry.at } : entry;
    if (ours(a) && isFiring(a)) note(a, Date.now());
  }
  gameday = await c.request<GameDayRecord>('GET', `/api/v1/gamedays/${gameday.id}`);
  return {
    gameday,
    ...(traffic ? { traffic: { ...traffic.stats } } : {}),
    alerts: [...fired.values()].sort((a, b) => a.afterMs - b.afterMs),
    alreadyFiring: [...before].map((k) => k.split('\u0000')[0]!),
    ...(alertingUnavailable ? { alertingUnavailable } : {}),
  };
}

/** The report as text. */
export function reportText(r: GameDayReport): string {
  const g = r.gameday;
  const lines = [
    `game day ${g.id} on ${g.deployment}: ${g.fault} ×${g.intensity} for ${seconds(g.durationMs)} (${g.state}) — ${g.effect}`,
    `injected into ${g.injected.requests} request(s), ${g.injected.rows} row(s)`,
  ];
  if (r.traffic) lines.push(`traffic sent: ${r.traffic.sent} request(s), ${r.traffic.ok} ok, ${r.traffic.failed} failed (${r.traffic.injectedFailures} by the fault)`);
  if (r.alertingUnavailable) lines.push(`alerts: unknown, the alerting API did not answer (${r.alertingUnavailable})`);
  else if (r.alerts.length === 0) lines.push('no alert fired');
  else {
    lines.push(`${r.alerts.length} alert(s) fired:`);
    lines.push(
      table(
        r.alerts.map((a) => ({
          alert: a.alertname,
          severity: a.severity,
          after: seconds(a.afterMs),
          labels: Object.entries(a.labels)
            .filter(([k]) => !['alertname', 'severity', 'deployment', 'inhibit_group'].includes(k))
            .map(([k, v]) => `${k}=${v}`)
            .join(' '),
        })),
        ['alert', 'severity', 'after', 'labels'],
      ),
    );
  }
  if (r.alreadyFiring.length) lines.push(`already firing before the fault (not counted): ${[...new Set(r.alreadyFiring)].join(', ')}`);
  return lines.join('\n');
}

interface GameDayFlags {
  deployment: string;
  fault: string;
  for: string;
  intensity?: string;
  feature?: string;
  traffic?: string;
  trafficFile?: string;
  poll: string;
  wait: string;
  expectAlert?: boolean;
  quiet?: boolean;
}

/** `warden gameday`: inject a bounded fault into live traffic and report which alerts fired, and how fast. */
export function registerGameDay(program: Command): void {
  program
    .command('gameday')
    .description('inject a bounded fault into a deployment\'s live traffic and report which alerts fired and after how long')
    .requiredOption('--deployment <name>', 'the deployment (model name) to break')
    .requiredOption('--fault <kind>', 'latency, errors, drift, nulls or schema')
    .requiredOption('--for <duration>', 'how long the fault lasts, e.g. 30s, 10m (at most 1h)')
    .option('--intensity <n>', 'fault strength in (0, 10], default 1 (latency +200 ms, errors 50%, drift +2 std …)')
    .option('--feature <column>', 'column the nulls and schema faults act on (default: the first), or the only one drift shifts')
    .option('--traffic <rps>', 'also send this many :predict requests per second from the demo rows')
    .option('--traffic-file <csv>', 'rows for --traffic (default: data/bike-sharing/hour.csv)')
    .option('--poll <duration>', 'how often to read the alerts', '1s')
    .option('--wait <duration>', 'keep watching alerts this long after the fault ends', '0s')
    .option('--expect-alert', 'exit 1 when no alert fired')
    .option('-q, --quiet', 'no progress on stderr')
    .action(async (o: GameDayFlags, cmd: Command) => {
      const durationMs = parseDurationFlag(o.for, '--for');
      const number = (raw: string | undefined, flag: string) => {
        if (raw === undefined) return undefined;
        const n = Number(raw);
        if (raw.trim() === '' || !Number.isFinite(n) || n <= 0) throw new CliError(`${flag} must be a positive number, got ${raw}`, 2);
        return n;
      };
      const rps = number(o.traffic, '--traffic');
      if (rps !== undefined && rps > 1000) throw new CliError('--traffic is at most 1000 requests per second', 2);
      let onSigint: (() => void) | undefined;
      const abort = new Promise<void>((resolve) => {
        onSigint = resolve;
        process.once('SIGINT', onSigint);
      });
      try {
        const report = await runGameDay(clientFor(cmd), {
          deployment: o.deployment,
          fault: o.fault,
          durationMs,
          ...(o.intensity !== undefined ? { intensity: number(o.intensity, '--intensity')! } : {}),
          ...(o.feature !== undefined ? { feature: o.feature } : {}),
          ...(rps !== undefined ? { trafficRps: rps } : {}),
          ...(o.trafficFile !== undefined ? { trafficFile: o.trafficFile } : {}),
          pollMs: parseDurationFlag(o.poll, '--poll'),
          waitMs: parseDurationFlag(o.wait, '--wait'),
          abort,
          progress: o.quiet ? () => undefined : (line) => process.stderr.write(`gameday: ${line}\n`),
        });
        print(cmd, report, () => reportText(report));
        if (o.expectAlert && report.alerts.length === 0) {
          throw new CliError(report.alertingUnavailable ? 'no alert could be read (--expect-alert)' : `no alert fired for ${o.deployment} during game day ${report.gameday.id} (--expect-alert)`, 1);
        }
      } finally {
        if (onSigint) process.removeListener('SIGINT', onSigint);
      }
    });
}
