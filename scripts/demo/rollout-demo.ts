// The rollout demo: bike-demand (linear, trained on 2011 by `npm start`) is retrained on 2011 plus January–March 2012
// and rolled out shadow → canary → promoted while real hours of April–December 2012 are sent at a steady rate; then a
// broken candidate (temperature trained in °C while callers send the dataset's normalized values) fails its canary
// analysis and the controller rolls it back by itself. Every analysis run, step and decision is printed as it happens.
// Run against `npm start`:  npm run demo:rollout [-- --url URL] [--rate 100] [--canary 10,50] [--help]
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEMO_MODELS } from '../../src/lifecycle/demo.ts';
import { BIKE_SHARING_CSV, bikeSharingDemoOptions, formatMetrics, train, type TrainResult } from '../../src/lifecycle/trainer/index.ts';
import type { RolloutDecisionRecord } from '../../src/storage/index.ts';

export const MODEL = 'bike-demand';
const FEATURES = ['season', 'mnth', 'hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed'];

export interface RolloutDemoOptions {
  url: string;
  apiKey?: string;
  /** :predict requests per second. */
  rate: number;
  /** Hours (rows) per request. */
  batch: number;
  /** Seconds between analysis runs. */
  intervalS: number;
  /** Seconds each step holds before it may advance. */
  pauseS: number;
  /** Candidate weights of the canary steps after the shadow step, e.g. [10, 50]. */
  canary: number[];
  minSamples: number;
  /** Agreement tolerance of a mirrored row, in standard deviations of the stable version's predictions. */
  agreementTolerance: number;
  /** Abort a rollout already running on bike-demand instead of refusing to start. */
  abortRunning: boolean;
  /** Seconds a rollout may take before the demo gives up on it (and aborts it). */
  timeoutS: number;
  out?: (line: string) => void;
}

export const DEFAULTS: Omit<RolloutDemoOptions, 'url' | 'out'> = {
  rate: 100,
  batch: 4,
  intervalS: 5,
  pauseS: 10,
  canary: [10, 50],
  minSamples: 100,
  agreementTolerance: 0.5,
  abortRunning: false,
  timeoutS: 240,
};

/** A failure the user can act on: printed as is, without a stack. */
export class DemoError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- data and training

interface Csv {
  header: string[];
  lines: string[][];
}

function readCsv(file: string): Csv {
  const text = readFileSync(file, 'utf8').trim().split('\n');
  return { header: text[0]!.split(','), lines: text.slice(1).map((l) => l.split(',')) };
}

/** Real hours of April–December 2012 as named-feature instances (none of them was in any training set), shuffled with a fixed seed. */
export function trafficRows(csv: Csv = readCsv(BIKE_SHARING_CSV)): Record<string, number>[] {
  const ix = (n: string) => csv.header.indexOf(n);
  const rows = csv.lines.filter((c) => c[ix('yr')] === '1' && Number(c[ix('mnth')]) >= 4).map((c) => Object.fromEntries(FEATURES.map((f) => [f, Number(c[ix(f)])])));
  // A fixed shuffle (mulberry32): every few seconds of traffic spans the whole period, not one week of April.
  let s = 2012;
  const rand = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [rows[i], rows[j]] = [rows[j]!, rows[i]!];
  }
  return rows;
}

export interface DemoModels {
  baseline: TrainResult;
  retrained: TrainResult;
  broken: TrainResult;
  retrainedRows: number;
}

/**
 * The three models, trained here like `warden train` would: the 2011 baseline `npm start` seeded (to recognise it),
 * the retrain on 2011 + Jan–Mar 2012, and the same retrain with temp × 41 and atemp × 50 (°C, as the dataset's README
 * defines them) while callers keep sending the normalized values. `where` filters by equality only, so the rows are
 * written to temporary CSVs.
 */
export async function trainModels(log: (m: string) => void): Promise<DemoModels> {
  const csv = readCsv(BIKE_SHARING_CSV);
  const ix = (n: string) => csv.header.indexOf(n);
  const keep = csv.lines.filter((c) => c[ix('yr')] === '0' || (c[ix('yr')] === '1' && Number(c[ix('mnth')]) <= 3));
  const celsius = keep.map((c) => c.map((v, i) => (i === ix('temp') ? String(Number(v) * 41) : i === ix('atemp') ? String(Number(v) * 50) : v)));
  const dir = mkdtempSync(path.join(tmpdir(), 'warden-rollout-demo-'));
  try {
    const write = (name: string, lines: string[][]) => {
      const file = path.join(dir, name);
      writeFileSync(file, [csv.header, ...lines].map((l) => l.join(',')).join('\n') + '\n');
      return file;
    };
    const retrainedCsv = write('hour-2011-2012q1.csv', keep);
    const brokenCsv = write('hour-2011-2012q1-celsius.csv', celsius);
    const baseline = await train(bikeSharingDemoOptions('linear'));
    // yr stays out: the stable version does not take it, and a candidate must take what callers send.
    const retrained = await train({ ...bikeSharingDemoOptions('linear', retrainedCsv), where: {} });
    log(`retrained bike-demand on ${keep.length} hours (2011 + Jan–Mar 2012): holdout ${formatMetrics(retrained.metrics)}`);
    const broken = await train({ ...bikeSharingDemoOptions('linear', brokenCsv), where: {} });
    log(`trained the broken candidate on the same hours with temp × 41, atemp × 50 (°C): holdout ${formatMetrics(broken.metrics)}`);
    // A linear model fits rescaled columns exactly as well: offline, the unit bug is invisible.
    log('           (the same holdout scores: the unit bug shows only once callers send what they always sent)');
    return { baseline, retrained, broken, retrainedRows: keep.length };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- HTTP

/** The warden CLI command that does `args` against the demo's server. */
const cli = (url: string, args: string) => `npm run warden -- ${url === 'http://127.0.0.1:8080' ? '' : `--url ${url} `}${args}`;

interface Api {
  /** A JSON call (or raw bytes for a Uint8Array body); `body` is the parsed answer, of the shape the caller names. */
  call<T = unknown>(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T }>;
  /** Like call, but any answer other than 2xx is a DemoError naming the call and the server's message. */
  ok<T = unknown>(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
}

/** What the demo reads of GET /api/v1/deployments/{name}. */
interface DeploymentView {
  stable: { version: number } | null;
  candidate: { version: number; rollout: number; state: string } | null;
}

interface RolloutAnswer {
  id: number;
  stable: number;
  candidate: number;
  steps: Step[];
  spec: { analysis: { intervalMs: number; minSamples: number } };
}

/** POST …/deploy: the rollout it started, or the error. */
interface DeployAnswer {
  rollout?: RolloutAnswer;
  event?: { data?: { monitoring?: string } };
  error?: string;
}

function api(o: Pick<RolloutDemoOptions, 'url' | 'apiKey'>): Api {
  const call = async <T>(method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> => {
    let res: Response;
    try {
      res = await fetch(`${o.url}${p}`, {
        method,
        headers: {
          ...(body !== undefined && !(body instanceof Uint8Array) ? { 'content-type': 'application/json' } : {}),
          ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body: body instanceof Uint8Array ? new Uint8Array(body) : JSON.stringify(body) } : {}),
      });
    } catch (e) {
      // fetch fails with "fetch failed" and the reason in `cause` when nothing answers; anything else is a bug here.
      if ((e as Error).message !== 'fetch failed') throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new DemoError(
        `cannot reach Warden at ${o.url} (${cause?.code ?? cause?.message ?? (e as Error).message}).\n` +
          `Start it in another terminal with \`npm start\` (it trains and serves bike-demand), or point the demo at a running server with --url or WARDEN_URL.`,
        2,
      );
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* keep the text */
    }
    return { status: res.status, body: parsed as T };
  };
  return {
    call,
    async ok<T>(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
      const r = await call<T>(method, p, body, headers);
      if (r.status >= 200 && r.status < 300) return r.body;
      const msg = typeof r.body === 'object' && r.body && 'error' in r.body ? String((r.body as { error: unknown }).error) : String(r.body).slice(0, 300);
      if (r.status === 401 || r.status === 403) {
        throw new DemoError(`${method} ${p} → ${r.status}: ${msg}\nThis server wants an API key with the deployer role: set WARDEN_API_KEY (npm start runs with auth off).`, 2);
      }
      throw new DemoError(`${method} ${p} → ${r.status}: ${msg}`);
    },
  };
}

// ---------------------------------------------------------------- traffic

/** Steady :predict traffic at a fixed rate, counting which version answered each request. */
class Traffic {
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();
  private next = 0;
  private owed = 0;
  private last = 0;
  /** Every answer: when it arrived and the version that answered (or the HTTP status of a failure). */
  readonly answers: { at: number; version: string | null; status: number }[] = [];
  firstError: string | undefined;
  skipped = 0;

  constructor(
    private readonly o: Pick<RolloutDemoOptions, 'url' | 'apiKey' | 'rate' | 'batch'>,
    private readonly rows: Record<string, number>[],
  ) {}

  start(): void {
    this.last = performance.now();
    this.timer = setInterval(() => this.tick(), 10);
  }

  private tick(): void {
    const now = performance.now();
    this.owed += ((now - this.last) / 1000) * this.o.rate;
    this.last = now;
    while (this.owed >= 1) {
      this.owed--;
      // A server slower than the rate gets fewer requests, not an unbounded queue.
      if (this.inFlight.size >= 64) {
        this.skipped++;
        continue;
      }
      const p = this.send().finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }
  }

  private async send(): Promise<void> {
    const instances = Array.from({ length: this.o.batch }, () => this.rows[this.next++ % this.rows.length]!);
    try {
      const res = await fetch(`${this.o.url}/v1/models/${MODEL}:predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(this.o.apiKey ? { authorization: `Bearer ${this.o.apiKey}` } : {}) },
        body: JSON.stringify({ instances }),
      });
      const body = (await res.json().catch(() => undefined)) as { model_version?: string; error?: string } | undefined;
      this.answers.push({ at: Date.now(), version: res.ok ? (body?.model_version ?? null) : null, status: res.status });
      if (!res.ok) this.firstError ??= `${res.status}: ${body?.error ?? 'no message'}`;
    } catch (e) {
      this.answers.push({ at: Date.now(), version: null, status: 0 });
      this.firstError ??= (e as Error).message;
    }
  }

  /** Answers in [since, until) by version, with the failures under "errors". */
  split(since: number, until = Infinity): { total: number; byVersion: Map<string, number>; errors: number } {
    const byVersion = new Map<string, number>();
    let total = 0;
    let errors = 0;
    for (const a of this.answers) {
      if (a.at < since || a.at >= until) continue;
      total++;
      if (a.version === null) errors++;
      else byVersion.set(a.version, (byVersion.get(a.version) ?? 0) + 1);
    }
    return { total, byVersion, errors };
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.inFlight]);
  }
}

// ---------------------------------------------------------------- printing

/** A decision as the API answers it, with the detail fields the demo prints. */
type Decision = Omit<RolloutDecisionRecord, 'detail'> & { detail: DecisionDetail };

/** The parts of a decision's detail (rollouts/analysis.ts) the timeline prints. */
interface DecisionDetail {
  blocking?: boolean;
  stableRate?: number | null;
  difference?: number;
  lower?: number | null;
  upper?: number | null;
  stableP99Ms?: number | null;
  observedShares?: number[];
  expectedShares?: number[];
  measure?: string;
  stable?: number;
  drop?: number;
}

interface HistoryEvent {
  id: number;
  at: number;
  kind: string;
  fromVersion: number | null;
  toVersion: number | null;
  actor: string;
  reason: string;
  data: { rollout?: number; candidate?: number; step?: number; monitoring?: string };
}

interface Step {
  weight: number;
  mirror: number;
  pauseMs: number | null;
  description: string;
}

const num = (x: number | null | undefined, digits = 3) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : Math.abs(x) >= 100 ? x.toFixed(0) : Number(x.toPrecision(digits)).toString());
const pct = (x: number | null | undefined, digits = 1) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${(100 * x).toFixed(digits)}%`);
/** A difference of two rates in percentage points; a bound wider than the rates can differ (±100) is shown as ±100. */
const pts = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '?' : `${x >= 0 ? '+' : '−'}${Math.min(100, Math.abs(100 * x)).toFixed(2)}`);
const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
const VERDICT = { success: 'pass', failure: 'FAIL', inconclusive: 'wait' } as const;

/** One metric of one analysis run in words: what was measured against what limit, and on how much data. */
export function describeDecision(d: Decision): string {
  const x = d.detail ?? {};
  let what: string;
  switch (d.metric) {
    case 'errorRate':
      what = `errors ${pct(d.value, 2)} vs stable ${pct(x.stableRate, 2)}: increase ${pts(x.difference)} pt, bound [${pts(x.lower)}, ${pts(x.upper)}] vs max +${num(100 * (d.threshold ?? NaN))} pt`;
      break;
    case 'latencyP99':
      what = `p99 ${num(d.value)} ms vs limit ${num(d.threshold)} ms (stable p99 ${num(x.stableP99Ms)} ms)${x.blocking === false ? ', not blocking in a shadow step' : ''}`;
      break;
    case 'predictionDistance':
      what = `KS D ${num(d.value)}, band [${num(x.lower)}, ${num(x.upper)}] vs max ${num(d.threshold)}`;
      break;
    case 'agreement':
      what = `${pct(d.value)} of mirrored rows agree, band [${pct(x.lower)}, ${pct(x.upper)}] vs min ${pct(d.threshold, 0)}`;
      break;
    case 'sampleRatio':
      what = `candidate got ${pct(x.observedShares?.[1])} of requests (asked ${pct(x.expectedShares?.[1], 0)}), SRM p ${num(d.value)} vs alpha ${num(d.threshold)}`;
      break;
    case 'accuracy':
      what = d.nStable === 0 && d.nCandidate === 0 ? 'no labels sent (not blocking)' : `${x.measure ?? 'accuracy'} ${num(d.value)} (stable ${num(x.stable)}), drop ${num(x.drop)} vs max ${num(d.threshold)}`;
      break;
    default:
      what = `${num(d.value)} vs ${num(d.threshold)}`;
  }
  const n = d.metric === 'agreement' ? `${d.nStable} rows` : `${d.nStable}/${d.nCandidate}`;
  return `${d.metric.padEnd(18)} ${VERDICT[d.verdict]}  ${what}  (n ${n})`;
}

/** A run's verdict from its decisions, as the controller takes it: any failure fails it; a blocking metric still inconclusive holds it. */
export function runVerdict(ds: Decision[]): { verdict: Decision['verdict']; holding: string[]; failed: string[] } {
  const failed = ds.filter((d) => d.verdict === 'failure').map((d) => d.metric);
  const holding = ds.filter((d) => d.verdict === 'inconclusive' && d.detail?.blocking !== false).map((d) => d.metric);
  return { verdict: failed.length ? 'failure' : holding.length ? 'inconclusive' : 'success', holding, failed };
}

const stepName = (s: Step) => (s.weight === 0 ? `shadow (mirror ${s.mirror}%)` : `canary ${s.weight}%${s.mirror ? `, mirror ${s.mirror}%` : ''}`);

// ---------------------------------------------------------------- one rollout, watched

interface RolloutOutcome {
  id: number;
  candidate: number;
  stable: number;
  state: 'promoted' | 'aborted' | 'paused' | 'timeout';
  reason: string;
  runs: number;
  failures: number;
  startedAt: number;
  endedAt: number;
  /** The failing metrics of the run that ended it, when it was aborted by its analysis. */
  failed: Decision[];
  /** Requests each version answered while it ran. */
  split: ReturnType<Traffic['split']>;
}

interface Context {
  o: RolloutDemoOptions;
  http: Api;
  traffic: Traffic;
  t0: number;
  out: (line: string) => void;
  /** The rollout this demo started and has not seen end, for Ctrl-C. */
  active?: number;
}

const stamp = (c: Context, at = Date.now()) => `[${((at - c.t0) / 1000).toFixed(1).padStart(6)}s]`;

function splitText(split: ReturnType<Traffic['split']>): string {
  const parts = [...split.byVersion.entries()].sort(([a], [b]) => Number(a) - Number(b)).map(([v, n]) => `v${v} ${n} (${pct(n / split.total)})`);
  if (split.errors) parts.push(`errors ${split.errors}`);
  return `${split.total} requests: ${parts.join(', ') || 'none answered'}`;
}

/** Starts a canary of `version` with `steps` and prints its timeline until it ends, pauses or times out. */
async function rollout(c: Context, version: number, reason: string, steps: { weight: number; mirror?: number; pause: string }[]): Promise<RolloutOutcome> {
  const { o, http, out } = c;
  // The timeline starts after the last event already in the history.
  let historyCursor = '0';
  for (;;) {
    const page = await http.ok<{ events: HistoryEvent[]; nextCursor: string | null }>('GET', `/api/v1/deployments/${MODEL}/history?limit=1000&after=${historyCursor}`);
    if (page.events.length === 0) break;
    historyCursor = page.nextCursor ?? historyCursor;
  }
  const spec = {
    steps,
    analysis: {
      interval: `${o.intervalS}s`,
      minSamples: o.minSamples,
      // The demo's own timeout decides when to give up, not a count of inconclusive runs.
      inconclusiveLimit: Math.ceil(o.timeoutS / o.intervalS) + 5,
      metrics: { agreement: { tolerance: o.agreementTolerance } },
    },
  };
  const started = await http.call<DeployAnswer>('POST', `/api/v1/deployments/${MODEL}/deploy`, { version, strategy: 'canary', reason, spec });
  if (started.status !== 200 || !started.body.rollout) {
    const msg = started.body?.error ?? JSON.stringify(started.body);
    if (started.status === 409 && /rollout/.test(String(msg))) {
      throw new DemoError(`${MODEL} is busy: ${msg}\nAbort it with \`${cli(o.url, `rollout abort ${MODEL}`)}\` or rerun the demo with --abort-running.`, 2);
    }
    throw new DemoError(`could not start the canary of v${version}: ${started.status} ${msg}`);
  }
  const r = started.body.rollout;
  c.active = r.id;
  const startedAt = Date.now();
  out(`${stamp(c)} ▶ rollout #${r.id} started: canary of v${r.candidate} beside stable v${r.stable} (${reason})`);
  r.steps.forEach((s, i) => out(`           step ${i + 1}/${r.steps.length}: ${stepName(s)}, hold ${s.pauseMs === null ? 'until promoted' : `${s.pauseMs / 1000}s`}`));
  out(`           analysis every ${r.spec.analysis.intervalMs / 1000}s, at least ${r.spec.analysis.minSamples} samples a side; one failed run aborts`);
  const monitoring = started.body.event?.data?.monitoring ?? '';
  if (monitoring.startsWith('inherited')) out(`           monitoring: ${monitoring}`);

  let decisionCursor = '0';
  let runs = 0;
  let failures = 0;
  let step = 0;
  let stepSince = startedAt;
  let lastFailed: Decision[] = [];
  const deadline = startedAt + o.timeoutS * 1000;
  for (;;) {
    // History first, then decisions: the controller stores a run's decisions before the event they caused, so every
    // event read here has its run among the decisions read after it.
    const h = await http.ok<{ events: HistoryEvent[]; nextCursor: string | null }>('GET', `/api/v1/deployments/${MODEL}/history?limit=100&after=${historyCursor}`);
    const d = await http.ok<{ decisions: Decision[]; nextCursor: string | null }>('GET', `/api/v1/deployments/${MODEL}/rollout/decisions?rollout=${r.id}&limit=5000&after=${decisionCursor}`);
    decisionCursor = d.nextCursor ?? decisionCursor;
    const byRun = new Map<number, Decision[]>();
    for (const x of d.decisions) byRun.set(x.at, [...(byRun.get(x.at) ?? []), x]);
    // Runs and events in time order; a run comes before the event it caused (stored first, at the same time or earlier).
    const items = [
      ...[...byRun].map(([at, ds]) => ({ at, order: 0, ds, e: undefined })),
      ...h.events.map((e) => ({ at: e.at, order: 1, ds: undefined, e })),
    ].sort((a, b) => a.at - b.at || a.order - b.order);
    for (const e of h.events) historyCursor = String(e.id);
    for (const item of items) {
      if (item.ds) {
        const ds = item.ds;
        runs++;
        const v = runVerdict(ds);
        if (v.verdict === 'failure') {
          failures++;
          lastFailed = ds.filter((x) => x.verdict === 'failure');
        }
        const s = r.steps[ds[0]!.step]!;
        const tail = v.verdict === 'failure' ? `failed: ${v.failed.join(', ')}` : v.verdict === 'inconclusive' ? `holding for: ${v.holding.join(', ')}` : 'every blocking metric passed';
        out(`${stamp(c, item.at)} analysis run ${runs} · step ${ds[0]!.step + 1}/${r.steps.length} ${stepName(s)} → ${v.verdict} (${tail})`);
        for (const x of ds) out(`             ${describeDecision(x)}`);
        continue;
      }
      const e = item.e!;
      if (!e.kind.startsWith('rollout-') || e.data?.rollout !== r.id) continue;
      const split = c.traffic.split(stepSince, e.at);
      if (e.kind === 'rollout-step' && e.data.step !== undefined) {
        out(`${stamp(c, e.at)} ▶ step ${e.data.step}/${r.steps.length}: ${stepName(r.steps[e.data.step - 1]!)} — ${e.reason.split(':')[0]} (${e.actor})`);
        out(`           traffic during step ${step + 1}: ${splitText(split)}`);
        step = e.data.step - 1;
        stepSince = e.at;
      } else if (e.kind === 'rollout-promote' || e.kind === 'rollout-abort' || e.kind === 'rollout-pause') {
        const state = e.kind === 'rollout-promote' ? 'promoted' : e.kind === 'rollout-abort' ? 'aborted' : 'paused';
        out(`           traffic during step ${step + 1}: ${splitText(split)}`);
        if (state === 'promoted') out(`${stamp(c, e.at)} ✔ PROMOTED by the ${e.actor}: v${r.candidate} is the stable version of ${MODEL} — ${e.reason.split(':')[0]}`);
        else if (state === 'aborted') out(`${stamp(c, e.at)} ✖ ABORTED by the ${e.actor}: all traffic back to v${r.stable} — ${e.reason}`);
        else out(`${stamp(c, e.at)} ‖ PAUSED by the ${e.actor}: ${e.reason}`);
        if (state !== 'paused') c.active = undefined;
        return { id: r.id, candidate: r.candidate, stable: r.stable, state, reason: e.reason, runs, failures, startedAt, endedAt: e.at, failed: lastFailed, split: c.traffic.split(startedAt, e.at) };
      }
    }
    if (Date.now() > deadline) {
      return { id: r.id, candidate: r.candidate, stable: r.stable, state: 'timeout', reason: `still running after ${o.timeoutS}s`, runs, failures, startedAt, endedAt: Date.now(), failed: lastFailed, split: c.traffic.split(startedAt) };
    }
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** Ends a rollout the demo started and could not finish, so the next run (or the user) finds bike-demand free. */
async function cleanUp(c: Context, why: string): Promise<void> {
  if (c.active === undefined) return;
  const r = await c.http.call('POST', `/api/v1/deployments/${MODEL}/rollout/abort`, { reason: `rollout demo: ${why}` }).catch(() => undefined);
  c.out(r?.status === 200 ? `aborted rollout #${c.active} (${why}); ${MODEL} serves its stable version only` : `could not abort rollout #${c.active}: abort it with \`${cli(c.o.url, `rollout abort ${MODEL}`)}\``);
  c.active = undefined;
}

// ---------------------------------------------------------------- the demo

export interface DemoSummary {
  baseline: number;
  retrained: RolloutOutcome;
  broken: RolloutOutcome;
  finalStable: number;
  requests: number;
  errors: number;
  seconds: number;
}

async function push(http: Api, model: TrainResult, description: string, dataset: string, demo = 'rollout'): Promise<{ version: number; created: boolean }> {
  const res = await http.ok<{ version: { version: number }; created: boolean }>('POST', `/api/v1/models/${MODEL}/versions`, model.onnx, {
    'content-type': 'application/octet-stream',
    // Header values are Latin-1: anything beyond ASCII goes as a JSON \u escape.
    'x-warden-metadata': JSON.stringify({ description, tags: { demo, dataset } }).replace(/[\u0080-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`),
  });
  return { version: res.version.version, created: res.created };
}

/** Runs both rollouts against a Warden at `o.url`; returns what happened (also printed through `o.out`). */
export async function runRolloutDemo(o: RolloutDemoOptions, hooks: { context?: (c: Context) => void } = {}): Promise<DemoSummary> {
  const out = o.out ?? ((l: string) => console.log(l));
  const http = api(o);
  const t0 = Date.now();
  const c: Context = { o, http, traffic: new Traffic(o, trafficRows()), t0, out };
  hooks.context?.(c);

  // Preflight: the server, the model, and no rollout in the way.
  const dep = await http.call<DeploymentView>('GET', `/api/v1/deployments/${MODEL}`);
  if (dep.status === 404) throw new DemoError(`${o.url} has no ${MODEL} model. The demo needs the one \`npm start\` (warden serve --demo) trains and deploys.`, 2);
  if (dep.status !== 200) await http.ok('GET', `/api/v1/deployments/${MODEL}`);
  if (!dep.body.stable) throw new DemoError(`${MODEL} has no version to serve on ${o.url}; restart \`npm start\` on a fresh data directory to seed it`, 2);
  out(`Warden at ${o.url}: ${MODEL} serves v${dep.body.stable.version}`);
  if (dep.body.candidate) {
    const cand = dep.body.candidate;
    if (!o.abortRunning) {
      throw new DemoError(
        `${MODEL} already has a ${cand.state} rollout (#${cand.rollout}) of v${cand.version}, and a deployment runs one rollout at a time.\n` +
          `Abort it with \`${cli(o.url, `rollout abort ${MODEL}`)}\` (or POST ${o.url}/api/v1/deployments/${MODEL}/rollout/abort), or rerun with --abort-running.`,
        2,
      );
    }
    await http.ok('POST', `/api/v1/deployments/${MODEL}/rollout/abort`, { reason: 'aborted by the rollout demo (--abort-running)' });
    out(`aborted the ${cand.state} rollout #${cand.rollout} of v${cand.version} (--abort-running)`);
  }

  const models = await trainModels(out);

  // An earlier run left the retrained version stable: start again from the 2011 model, so there is something to roll out.
  const versions = (await http.ok<{ versions: { version: number; sha256: string }[] }>('GET', `/api/v1/models/${MODEL}/versions`)).versions;
  const shaOf = (v: number | undefined) => versions.find((x) => x.version === v)?.sha256;
  const sha = (m: TrainResult) => createHash('sha256').update(m.onnx).digest('hex');
  let stable = dep.body.stable.version;
  if (shaOf(stable) === sha(models.retrained) || shaOf(stable) === sha(models.broken)) {
    // The 2011 model npm start seeded, found by its bytes (training is deterministic); pushed again if it was deleted.
    const seeded = versions.find((x) => x.sha256 === sha(models.baseline))?.version;
    const demo = DEMO_MODELS.find((m) => m.name === MODEL)!;
    const base = seeded ?? (await push(http, models.baseline, demo.description, 'uci-bike-sharing-2011', 'true')).version;
    await http.ok('POST', `/api/v1/deployments/${MODEL}/deploy`, { version: base, strategy: 'direct', reason: 'rollout demo: start again from the 2011 model' });
    out(`v${stable} is the retrain of an earlier demo run: deployed the 2011 model v${base} directly, so the demo can roll the retrain out again`);
    stable = base;
  }
  const baselineVersion = stable;

  const good = await push(http, models.retrained, 'Hourly bike rentals (cnt), retrained on 2011 + Jan–Mar 2012 (UCI Bike Sharing)', 'uci-bike-sharing-2011-2012q1');
  out(`pushed the retrain as v${good.version}${good.created ? '' : ' (those bytes were already registered)'}`);

  c.traffic.start();
  try {
    return await rollBoth(c, models, good.version, baselineVersion);
  } finally {
    await c.traffic.stop();
  }
}

/** The two rollouts, with traffic flowing: the retrain to promotion, then the broken candidate to its abort. */
async function rollBoth(c: Context, models: DemoModels, goodVersion: number, baselineVersion: number): Promise<DemoSummary> {
  const { o, http, out, t0 } = c;
  out(`sending ${o.rate} requests/s to /v1/models/${MODEL}:predict, ${o.batch} real hours of Apr–Dec 2012 each (named features)`);
  out('');
  out(`── 1. the retrain: shadow → ${o.canary.map((w) => `${w}%`).join(' → ')} → promoted ──`);
  const pause = `${o.pauseS}s`;
  const goodRun = await rollout(c, goodVersion, 'retrained on 2011 + Jan–Mar 2012', [{ weight: 0, mirror: 100, pause }, ...o.canary.map((weight) => ({ weight, pause }))]);
  if (goodRun.state !== 'promoted') {
    await cleanUp(c, goodRun.state === 'timeout' ? 'timed out' : goodRun.state);
    throw new DemoError(
      `the retrain was ${goodRun.state}, not promoted: ${goodRun.reason}` +
        (goodRun.state === 'timeout' || goodRun.state === 'paused' ? '\nThe analysis needs a few hundred requests per side; raise --rate or --timeout.' : '') +
        (goodRun.failed.some((d) => d.metric === 'agreement') ? `\nA mirrored row agrees within --agreement-tolerance (${o.agreementTolerance}) standard deviations of the stable predictions; the retrain moves most hours by more than 0.1.` : ''),
    );
  }
  const after = await http.ok<{ stable: { version: number } }>('GET', `/api/v1/deployments/${MODEL}`);
  out(`           ${MODEL} now serves v${after.stable.version} to every caller`);

  out('');
  out(`── 2. a broken candidate: temperature trained in °C, callers send it normalized (0–1) ──`);
  const bad = await push(http, models.broken, 'Hourly bike rentals (cnt), retrained with temperatures in °C (broken on purpose: callers send normalized values)', 'uci-bike-sharing-2011-2012q1-celsius');
  out(`pushed the broken candidate as v${bad.version}${bad.created ? '' : ' (those bytes were already registered)'}`);
  const badRun = await rollout(c, bad.version, 'retrained with temperatures in °C', o.canary.map((weight) => ({ weight, pause })));
  if (badRun.state !== 'aborted') {
    await cleanUp(c, badRun.state === 'timeout' ? 'timed out' : badRun.state);
    throw new DemoError(`the broken candidate was ${badRun.state}, not aborted by its analysis: ${badRun.reason}`);
  }
  // Every replica drops the candidate within a sync of the abort; look at what answered after that.
  const settle = Date.now() + 1500;
  await new Promise((res) => setTimeout(res, 3000));
  const back = c.traffic.split(settle);
  out(`           after the abort: ${splitText(back)}`);
  await c.traffic.stop();
  const final = await http.ok<{ stable: { version: number }; candidate: unknown }>('GET', `/api/v1/deployments/${MODEL}`);
  out(`           ${MODEL}: stable v${final.stable.version}, candidate ${final.candidate ? JSON.stringify(final.candidate) : 'none'}`);

  const all = c.traffic.split(0);
  const summary: DemoSummary = { baseline: baselineVersion, retrained: goodRun, broken: badRun, finalStable: final.stable.version, requests: all.total, errors: all.errors, seconds: (Date.now() - t0) / 1000 };
  out('');
  out('── summary ──');
  const secs = (r: RolloutOutcome) => `${((r.endedAt - r.startedAt) / 1000).toFixed(1)}s`;
  out(`v${goodRun.candidate} retrain (2011 + Jan–Mar 2012, ${models.retrainedRows} hours): shadow → ${o.canary.map((w) => `${w}%`).join(' → ')} → PROMOTED in ${secs(goodRun)}, ${plural(goodRun.runs, 'analysis run')}, ${goodRun.failures} failed`);
  out(`v${badRun.candidate} temperature in °C:  ${o.canary[0]}% canary → ABORTED automatically after ${secs(badRun)}, ${plural(badRun.runs, 'analysis run')}`);
  for (const f of badRun.failed) out(`    ${describeDecision(f)}`);
  const badServed = badRun.split.byVersion.get(String(badRun.candidate)) ?? 0;
  out(`    v${badRun.candidate} answered ${badServed} of ${badRun.split.total} requests (${pct(badServed / (badRun.split.total || 1))}) before the abort; ${back.byVersion.get(String(badRun.candidate)) ?? 0} after it`);
  out(`${MODEL} ends on v${final.stable.version}; ${all.total} requests sent, ${all.errors} failed${c.traffic.skipped ? `, ${c.traffic.skipped} not sent (64 in flight)` : ''}${c.traffic.firstError ? ` (first failure: ${c.traffic.firstError})` : ''}; ${summary.seconds.toFixed(0)}s in all`);
  out(`the record: ${cli(o.url, `deployments history ${MODEL}`)} · ${cli(o.url, `rollout decisions ${MODEL} --rollout ${badRun.id}`)}`);
  return summary;
}

// ---------------------------------------------------------------- command line

const HELP = `npm run demo:rollout [-- options]   (against a running \`npm start\`)

  --url URL                  Warden to talk to (default $WARDEN_URL or http://127.0.0.1:8080)
  --rate N                   :predict requests per second (default ${DEFAULTS.rate})
  --batch N                  hours of 2012 per request (default ${DEFAULTS.batch})
  --canary W,W               candidate weights of the canary steps after the shadow step (default ${DEFAULTS.canary.join(',')})
  --pause S                  seconds each step holds before it may advance (default ${DEFAULTS.pauseS})
  --interval S               seconds between analysis runs, at least 1 (default ${DEFAULTS.intervalS})
  --min-samples N            samples a side before a metric can pass (default ${DEFAULTS.minSamples})
  --agreement-tolerance X    a mirrored row agrees within X standard deviations of the stable predictions (default ${DEFAULTS.agreementTolerance})
  --timeout S                give up on a rollout (and abort it) after S seconds (default ${DEFAULTS.timeoutS})
  --abort-running            abort a rollout already running on bike-demand instead of stopping
  WARDEN_API_KEY             a deployer key, when the server requires one`;

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): RolloutDemoOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      rate: { type: 'string' },
      batch: { type: 'string' },
      canary: { type: 'string' },
      pause: { type: 'string' },
      interval: { type: 'string' },
      'min-samples': { type: 'string' },
      'agreement-tolerance': { type: 'string' },
      timeout: { type: 'string' },
      'abort-running': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const number = (name: string, raw: string | undefined, dflt: number, min: number, max: number) => {
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) throw new DemoError(`--${name} must be a number in [${min}, ${max}], got ${raw}`, 2);
    return n;
  };
  const canary = values.canary === undefined ? DEFAULTS.canary : values.canary.split(',').map((w) => number('canary', w.trim(), 0, 1, 99));
  if (canary.length === 0 || canary.some((w, i) => i > 0 && w < canary[i - 1]!)) throw new DemoError('--canary takes growing weights in [1, 99], e.g. 10,50', 2);
  return {
    url: (values.url ?? env.WARDEN_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, ''),
    ...(env.WARDEN_API_KEY ? { apiKey: env.WARDEN_API_KEY } : {}),
    rate: number('rate', values.rate, DEFAULTS.rate, 1, 5000),
    batch: Math.round(number('batch', values.batch, DEFAULTS.batch, 1, 1000)),
    canary,
    pauseS: number('pause', values.pause, DEFAULTS.pauseS, 0, 3600),
    intervalS: number('interval', values.interval, DEFAULTS.intervalS, 1, 3600),
    minSamples: Math.round(number('min-samples', values['min-samples'], DEFAULTS.minSamples, 10, 1_000_000)),
    agreementTolerance: number('agreement-tolerance', values['agreement-tolerance'], DEFAULTS.agreementTolerance, 0, 10),
    timeoutS: number('timeout', values.timeout, DEFAULTS.timeoutS, 5, 86_400),
    abortRunning: values['abort-running'] === true,
  };
}

// Real paths on both sides: run through a symlinked folder, the script must still know it is the entry point.
if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(import.meta.filename)) {
  let context: Context | undefined;
  try {
    const o = parseOptions(process.argv.slice(2));
    if (o === 'help') {
      console.log(HELP);
    } else {
      // Ctrl-C mid-rollout: abort the rollout the demo started, so bike-demand is left serving its stable version.
      process.once('SIGINT', () => {
        void (async () => {
          if (context) await cleanUp(context, 'interrupted');
          process.exit(130);
        })();
      });
      await runRolloutDemo(o, { context: (c) => (context = c) });
    }
  } catch (e) {
    if (context) await cleanUp(context, 'the demo failed');
    if (e instanceof DemoError) {
      console.error(`rollout demo: ${e.message}`);
      process.exitCode = e.exitCode;
    } else if (e instanceof TypeError && /Unknown option|Option/.test(e.message)) {
      console.error(`rollout demo: ${e.message}\n\n${HELP}`);
      process.exitCode = 2;
    } else {
      throw e;
    }
  }
}
