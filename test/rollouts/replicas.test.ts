/**
 * A canary across replicas (issue point 7): two real `warden serve` processes on one data directory. Rollout state
 * lives in the metadata store, so both route by the same policy (each one's share of the candidate during a step
 * is the step's weight, within a binomial band); one of them holds the controller lease and advances the steps; when
 * it is killed (SIGKILL, so it cannot release the lease) the other takes the lease once it expires and finishes the
 * rollout, and the history shows every step exactly once.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIKE_SHARING_CSV, bikeSharingDemoOptions, train } from '../../src/lifecycle/index.ts';
import { launchWarden, stopCliServers, type RunningCli } from '../helpers/cli.ts';

const rows = (parse(readFileSync(BIKE_SHARING_CSV), { columns: true }) as Record<string, string>[]).filter((r) => r.yr === '0');
const FEATURES = ['season', 'mnth', 'hr', 'holiday', 'weekday', 'workingday', 'weathersit', 'temp', 'atemp', 'hum', 'windspeed'];
const instanceAt = (i: number) => Object.fromEntries(FEATURES.map((f) => [f, Number(rows[i % rows.length]![f])]));

const SYNC_MS = 100;
const LEASE_MS = 1500;
const WEIGHTS = [10, 20, 40, 60];
/** Callers per replica, each one request at a time. */
const CALLERS = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** `warden serve` on a given (shared) data directory, auth off on loopback, with fast rollout settings. */
async function serve(dataDir: string, started: ChildProcess[]): Promise<RunningCli> {
  return launchWarden(
    ['serve', '--port', '0'],
    dataDir,
    {
      WARDEN_HOST: '127.0.0.1',
      WARDEN_AUTH_REQUIRED: 'false',
      WARDEN_ROLLOUTS_SYNC_MS: String(SYNC_MS),
      WARDEN_ROLLOUTS_LEASE_MS: String(LEASE_MS),
      WARDEN_PREDICTION_LOG_FLUSH_INTERVAL_MS: '50',
    },
    (child) => started.push(child),
  );
}

/** The JSON log lines of a process with the given msg. */
function logLines(r: RunningCli, msg: string): Record<string, any>[] {
  const out: Record<string, any>[] = [];
  for (const line of r.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const rec = JSON.parse(line) as Record<string, any>;
      if (rec.msg === msg) out.push(rec);
    } catch {
      /* not JSON */
    }
  }
  return out;
}

async function json(url: string, method: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** One answer of a replica: when it was asked and answered (test clock = the servers' clock, same host). */
interface Answer {
  replica: number;
  t0: number;
  t1: number;
  status: number;
  version: string | undefined;
}

/** One read of a replica's /metrics: its candidate weight gauge (null: no rollout there) and its lease gauge. */
interface Obs {
  t0: number;
  t1: number;
  weight: number | null;
  leader: number | null;
}

function readMetrics(text: string): { weight: number | null; leader: number | null } {
  let weight: number | null = null;
  let leader: number | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('warden_rollout_weight_percent{') && line.includes('deployment="bike"') && line.includes('version="2"')) weight = Number(line.split(' ').at(-1));
    if (line.startsWith('warden_rollout_controller_leader ')) leader = Number(line.split(' ').at(-1));
  }
  return { weight, leader };
}

/** The controller lease as it stands in the shared metadata store (read by the test, never written). */
function leaseRow(dataDir: string): { holder: string; expiresAt: number } | undefined {
  const db = new Database(path.join(dataDir, 'metadata.db'), { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    return db.prepare("SELECT holder, expires_at AS expiresAt FROM leases WHERE name = 'rollouts.controller'").get() as { holder: string; expiresAt: number } | undefined;
  } finally {
    db.close();
  }
}

describe('a canary across two replicas on one data directory', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'warden-replicas-'));
  const servers: RunningCli[] = [];
  /** Every child started, so afterAll kills one even when it never got to listen. */
  const children: ChildProcess[] = [];
  const replicas: RunningCli[] = [];
  const answers: Answer[] = [];
  const obs: Obs[][] = [[], []];
  const errors: string[] = [];
  /** Per replica: whether its callers and its metrics poller keep going. */
  const live = [false, false];
  const loops: Promise<void>[][] = [[], []];
  let onnx: Uint8Array[] = [];
  let passed = false;

  const callers = (replica: number) => {
    live[replica] = true;
    const url = `${replicas[replica]!.url}/v1/models/bike:predict`;
    const caller = async (c: number) => {
      for (let i = c + replica * 7919; live[replica]; i += CALLERS) {
        const t0 = Date.now();
        try {
          const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [instanceAt(i)] }) });
          const body = (await res.json()) as { model_version?: string };
          answers.push({ replica, t0, t1: Date.now(), status: res.status, version: body.model_version });
        } catch (e) {
          errors.push(`replica ${replica}: ${(e as Error).message}`);
          await sleep(20);
        }
      }
    };
    const poller = async () => {
      while (live[replica]) {
        const t0 = Date.now();
        try {
          const res = await fetch(`${replicas[replica]!.url}/metrics`);
          const m = readMetrics(await res.text());
          obs[replica]!.push({ t0, t1: Date.now(), ...m });
        } catch (e) {
          errors.push(`replica ${replica} /metrics: ${(e as Error).message}`);
        }
        await sleep(50);
      }
    };
    loops[replica]!.push(...Array.from({ length: CALLERS }, (_, c) => caller(c)), poller());
  };

  /** Stops a replica's traffic and waits until its requests in flight have been answered. */
  const quiet = async (replica: number) => {
    live[replica] = false;
    await Promise.all(loops[replica]!);
    loops[replica] = [];
  };

  beforeAll(async () => {
    // Two compatible versions of one model: the same trainer and data, another seed.
    onnx = [(await train({ ...bikeSharingDemoOptions('linear'), seed: 1 })).onnx, (await train({ ...bikeSharingDemoOptions('linear'), seed: 2 })).onnx];
  }, 60_000);

  afterAll(async () => {
    live[0] = live[1] = false;
    await Promise.race([Promise.all(loops.flat()), sleep(5000)]);
    if (!passed) {
      // What the controllers did, to read a failure by.
      const said = /"msg":"(rollout (step|promoted|loop failed|analysis failed)|rollout controller lease (taken|lost))/;
      for (const [i, r] of servers.entries()) console.log(`replica ${i}:\n${r.output().split('\n').filter((l) => said.test(l)).join('\n')}`);
    }
    await stopCliServers(servers);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('both replicas split traffic alike, one controller advances the steps, and the other takes over exactly where it stopped', async () => {
    const started = Date.now();
    // Replica A comes up, the versions are pushed through it, then replica B comes up on the same directory.
    const a = await serve(dataDir, children);
    servers.push(a);
    replicas.push(a);
    for (const [i, bytes] of onnx.entries()) {
      const res = await fetch(`${a.url}/api/v1/models/bike/versions${i === 0 ? '?alias=champion' : ''}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(bytes) });
      expect(res.status, await res.text()).toBe(201);
    }
    const b = await serve(dataDir, children);
    servers.push(b);
    replicas.push(b);
    callers(0);
    callers(1);
    // Both serve the stable version before the rollout starts.
    await until(() => (answers.filter((x) => x.replica === 1 && x.status === 200).length > 20 ? true : undefined), 10_000, 'replica B to answer');
    expect(new Set(answers.map((x) => x.version))).toEqual(new Set(['1']));

    const start = await json(`${a.url}/api/v1/deployments/bike/deploy`, 'POST', {
      version: 2,
      strategy: 'canary',
      reason: 'retrained, rolled out across replicas',
      spec: { steps: WEIGHTS.map((weight) => ({ weight, pause: '2s' })), analysis: { interval: '1s', minSamples: 30 } },
    });
    expect(start.status, JSON.stringify(start.body)).toBe(200);
    expect(start.body.rollout).toMatchObject({ state: 'running', stable: 1, candidate: 2, step: 0, weight: 10 });

    // The controller takes the rollout to its third step (two steps taken); then the replica that holds the lease is
    // killed mid-step. Which one holds it: 1 on exactly one replica's gauge, the other 0, and its name in the store.
    // Alone this takes 5–10 s; under the whole suite on two cores the callers get few answers, the analysis waits for
    // its 30 samples a side, and it took longer than 30 s twice: a slow step, not a missed one.
    await until(async () => ((await json(`${b.url}/api/v1/deployments/bike/rollout`, 'GET')).body.rollout.step >= 2 ? true : undefined), 75_000, 'the controller to take two steps');
    await sleep(500);
    const holderOf = (r: number) => logLines(replicas[r]!, 'rollout controller lease taken').at(-1)?.holder as string | undefined;
    const leader = await until(async () => {
      const gauges = await Promise.all(replicas.map(async (r) => readMetrics(await (await fetch(`${r.url}/metrics`)).text()).leader));
      if (gauges.slice().sort().join() !== '0,1') return undefined;
      const l = gauges.indexOf(1);
      return leaseRow(dataDir)?.holder === holderOf(l) ? l : undefined;
    }, 5000, 'exactly one replica to hold the lease');
    const survivor = 1 - leader;
    expect(logLines(replicas[leader]!, 'rollout step').length, 'the leader has taken a step').toBeGreaterThanOrEqual(1);
    // Its callers stop first (a killed process answers nothing; what is measured is what was answered).
    await quiet(leader);
    const killedAt = Date.now();
    replicas[leader]!.child.kill('SIGKILL');
    await replicas[leader]!.exited;
    const stepAtKill = (await json(`${replicas[survivor]!.url}/api/v1/deployments/bike/rollout`, 'GET')).body.rollout.step as number;

    // The killed leader's lease is still in the store: nobody may take it before it expires, and the survivor does
    // within a sync or so after that.
    const stale = leaseRow(dataDir);
    expect(stale?.holder).toBe(holderOf(leader));
    const takeover = await until(() => obs[survivor]!.find((o) => o.t0 > killedAt && o.leader === 1), LEASE_MS + 5000, 'the survivor to take the lease');
    const takeoverMs = takeover.t1 - killedAt;
    expect(takeover.t1).toBeGreaterThanOrEqual(stale!.expiresAt);
    expect(takeover.t0 - stale!.expiresAt).toBeLessThan(3000);
    expect(takeoverMs).toBeLessThan(LEASE_MS + 3000);
    expect(leaseRow(dataDir)?.holder).toBe(holderOf(survivor));
    expect(holderOf(survivor)).not.toBe(holderOf(leader));
    const done = await until(async () => {
      const s = await json(`${replicas[survivor]!.url}/api/v1/deployments/bike/rollout`, 'GET');
      return s.body.rollout.state === 'running' ? undefined : s.body;
      // 60 s: alone the whole test takes about 28 s, but beside the full suite on 2 cores this wait ran
      // past 30 s twice.
    }, 60_000, 'the survivor to finish the rollout');
    expect(done.rollout.state, JSON.stringify(done.rollout.status)).toBe('promoted');
    expect(done.rollout.status.outcome).toMatch(/every step passed/);
    // Once promoted, the survivor serves v2 alone.
    await sleep(3 * SYNC_MS + 200);
    const promotedAt = Date.now();
    await sleep(500);
    await quiet(survivor);

    // No request was refused or failed on either replica.
    expect(errors).toEqual([]);
    expect(answers.filter((x) => x.status < 200 || x.status >= 300)).toEqual([]);
    const after = answers.filter((x) => x.t0 >= promotedAt);
    expect(after.length).toBeGreaterThan(20);
    expect(after.every((x) => x.version === '2')).toBe(true);
    expect((await json(`${replicas[survivor]!.url}/api/v1/deployments/bike`, 'GET')).body).toMatchObject({ stable: { version: 2 }, candidate: null });

    // Each replica's weight gauge went through the steps in order (the killed one as far as it got).
    for (const r of [0, 1]) {
      const seen = obs[r]!.map((o) => o.weight).filter((w, i, all): w is number => w !== null && w !== all[i - 1]);
      expect(seen, `replica ${r}'s weights`).toEqual(WEIGHTS.slice(0, seen.length));
    }
    expect(obs[survivor]!.some((o) => o.weight === WEIGHTS.at(-1))).toBe(true);

    // Both split traffic alike: during each step, each replica's share of v2 is the step's weight. A request counts
    // for weight w on a replica when that replica's gauge read w both before it was sent and after it was answered
    // (weights only grow, so the router held w throughout). The count of v2 answers among n is Binomial(n, w/100);
    // 4 standard deviations bound it with probability 1 − 6e-5 per check (≈ 5e-4 over the 7–8 checks here), while a
    // replica still routing by the step before (or after) would sit ≥ 10 points off — many sigmas at these n.
    const shares: string[] = [];
    for (const r of [0, 1]) {
      const o = obs[r]!;
      for (const w of WEIGHTS) {
        const firstEnd = o.find((x) => x.weight === w)?.t1;
        const lastStart = o.filter((x) => x.weight === w).at(-1)?.t0;
        if (firstEnd === undefined || lastStart === undefined) continue;
        const inStep = answers.filter((x) => x.replica === r && x.t0 >= firstEnd && x.t1 <= lastStart);
        const n = inStep.length;
        const k = inStep.filter((x) => x.version === '2').length;
        const p = w / 100;
        const sigma = Math.sqrt(n * p * (1 - p));
        shares.push(`replica ${r} at ${w}%: ${k}/${n} = ${((100 * k) / Math.max(n, 1)).toFixed(1)}% (±${((400 * sigma) / Math.max(n, 1)).toFixed(1)})`);
        // A step the killed replica only began is too short to measure; every full step of it is.
        const full = r === survivor || WEIGHTS.indexOf(w) < stepAtKill;
        if (!full && n < 100) continue;
        expect(n, `replica ${r} answers at ${w}%`).toBeGreaterThanOrEqual(100);
        expect(Math.abs(k - n * p), shares.at(-1)).toBeLessThanOrEqual(4 * sigma);
        expect(inStep.every((x) => x.version === '1' || x.version === '2')).toBe(true);
      }
    }
    console.log(`[replicas] ${shares.join('; ')}; takeover ${takeoverMs} ms after the kill; ${answers.length} answers; ${Date.now() - started} ms`);

    // The history: every step once, in order, none skipped, one promotion.
    const events = (await json(`${replicas[survivor]!.url}/api/v1/deployments/bike/history?limit=1000`, 'GET')).body.events as { kind: string; actor: string; at: number; data: Record<string, any> }[];
    const rolloutEvents = events.filter((e) => e.kind.startsWith('rollout-'));
    expect(rolloutEvents.map((e) => e.kind)).toEqual(['rollout-start', ...WEIGHTS.slice(1).map(() => 'rollout-step'), 'rollout-promote']);
    const steps = rolloutEvents.filter((e) => e.kind === 'rollout-step');
    expect(steps.map((e) => e.data.step)).toEqual(WEIGHTS.slice(1).map((_, i) => i + 2));
    expect(steps.map((e) => e.data.to)).toEqual(WEIGHTS.slice(1).map((w) => expect.stringContaining(`${w}%`)));
    expect(steps.every((e) => e.actor === 'rollout controller')).toBe(true);
    expect(events.filter((e) => e.kind === 'rollout-promote')).toHaveLength(1);

    // One controller at a time: every step in the history was taken (logged) by exactly one process, at a time when
    // that process held the lease by its own log; the killed one took none after the kill, the survivor took every
    // step after it and the promotion.
    const stepLogs = [0, 1].flatMap((r) => logLines(replicas[r]!, 'rollout step').map((l) => ({ r, time: l.time as number, step: Number(/^step (\d+) passed/.exec(l.reason)?.[1]) + 1 })));
    expect(stepLogs.map((l) => l.step).sort((x, y) => x - y)).toEqual(steps.map((e) => e.data.step));
    for (const l of stepLogs) {
      const lease = logLines(replicas[l.r]!, 'rollout controller lease taken')
        .map((x) => ({ time: x.time as number, taken: true }))
        .concat(logLines(replicas[l.r]!, 'rollout controller lease lost').map((x) => ({ time: x.time as number, taken: false })))
        .filter((x) => x.time <= l.time)
        .sort((x, y) => x.time - y.time)
        .at(-1);
      expect(lease?.taken, `step ${l.step} by replica ${l.r} at ${l.time}: it held the lease`).toBe(true);
    }
    expect(stepLogs.filter((l) => l.time < killedAt)).toHaveLength(stepAtKill);
    expect(stepLogs.filter((l) => l.time > killedAt).map((l) => l.r)).toEqual(Array(WEIGHTS.length - 1 - stepAtKill).fill(survivor));
    expect(steps.filter((e) => e.at < killedAt)).toHaveLength(stepAtKill);
    expect(logLines(replicas[survivor]!, 'rollout promoted')).toHaveLength(1);
    expect(logLines(replicas[leader]!, 'rollout promoted')).toHaveLength(0);
    passed = true;
  }, 150_000);
});
