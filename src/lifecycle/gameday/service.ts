import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { WardenError } from '../../errors.ts';
import { FAULT_KINDS, faultColumns, faultEffect, type FaultCounts, type FaultInjector, type FaultKind } from '../../serving/index.ts';
import type { ModelSignature } from '../../storage/index.ts';

/** Longest game day: a forgotten one must not break a deployment for more than an hour. */
export const MAX_GAMEDAY_MS = 3_600_000;
/** Shortest game day (tests run a few seconds). */
export const MIN_GAMEDAY_MS = 100;
/** Largest intensity: 2 s of added latency, all requests failed, +20 std of drift. */
export const MAX_INTENSITY = 10;
/** Game days kept in memory for `GET`; the oldest finished ones are forgotten first. */
export const GAMEDAY_HISTORY = 100;

export type GameDayState = 'running' | 'completed' | 'stopped';

/** One game day, as the API returns it. */
export interface GameDayRecord {
  id: string;
  deployment: string;
  fault: FaultKind;
  intensity: number;
  /** Column targeted by `nulls`, `schema` or `drift`, when one was named. */
  feature?: string;
  /** What the fault does, in words. */
  effect: string;
  durationMs: number;
  /** Epoch ms. */
  startedAt: number;
  endsAt: number;
  /** Epoch ms when it stopped (early, or at `endsAt`); null while running. */
  endedAt: number | null;
  state: GameDayState;
  /** Requests and rows the fault touched so far. */
  injected: FaultCounts;
  /** API key id of whoever started it, when auth is on. */
  startedBy?: string;
}

export interface GameDayServiceDeps {
  faults: FaultInjector;
  /** Signature of the deployment's default version; throws WARDEN_MODEL_NOT_FOUND for an unknown deployment. */
  signatureOf(deployment: string): Promise<ModelSignature>;
  logger?: Logger;
  now?: () => number;
}

const startSchema = z
  .object({
    deployment: z.string().min(1).max(256),
    fault: z.enum(FAULT_KINDS),
    durationMs: z.number().int().min(MIN_GAMEDAY_MS).max(MAX_GAMEDAY_MS),
    intensity: z.number().gt(0).max(MAX_INTENSITY).default(1),
    feature: z.string().min(1).max(256).optional(),
  })
  .strict();

/** Parses `POST /api/v1/gamedays`; 400 naming the first bad field. */
export function parseGameDayRequest(body: unknown): z.infer<typeof startSchema> {
  const r = startSchema.safeParse(body);
  if (r.success) {
    if (r.data.feature !== undefined && (r.data.fault === 'latency' || r.data.fault === 'errors')) {
      throw new WardenError('WARDEN_BAD_REQUEST', `"feature" applies to the drift, nulls and schema faults, not ${r.data.fault}`);
    }
    return r.data;
  }
  const issue = r.error.issues[0]!;
  const where = issue.path.join('.') || 'body';
  const msg = issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.join(', ')}` : `${where}: ${issue.message}`;
  throw new WardenError(
    'WARDEN_BAD_REQUEST',
    `${msg}; send {"deployment", "fault": ${FAULT_KINDS.join('|')}, "durationMs": ${MIN_GAMEDAY_MS}-${MAX_GAMEDAY_MS}, "intensity": (0, ${MAX_INTENSITY}], "feature"}`,
  );
}

interface Entry {
  record: GameDayRecord;
  timer?: NodeJS.Timeout;
}

/**
 * Runs game days: arms a bounded fault on one deployment's request path (serving's FaultInjector), one at a
 * time per deployment, disarms it when its time is up or when stopped, and keeps the last
 * {@link GAMEDAY_HISTORY} in memory. A game day runs on the replica that started it. It suppresses nothing:
 * alerts fire, and are meant to, exactly as they would for a real fault.
 */
export class GameDayService {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(private readonly deps: GameDayServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  private running(deployment: string): Entry | undefined {
    for (const e of this.entries.values()) if (e.record.deployment === deployment && this.refresh(e).record.state === 'running') return e;
    return undefined;
  }

  /** Starts a game day; 409 WARDEN_GAMEDAY_RUNNING while the deployment has one. */
  async start(body: unknown, startedBy?: string): Promise<GameDayRecord> {
    const req = parseGameDayRequest(body);
    const conflict = () => {
      const other = this.running(req.deployment);
      if (other) {
        throw new WardenError(
          'WARDEN_GAMEDAY_RUNNING',
          `game day ${other.record.id} (${other.record.fault}) is running on ${req.deployment} until ${new Date(other.record.endsAt).toISOString()}; stop it with DELETE /api/v1/gamedays/${other.record.id} or wait`,
          { id: other.record.id },
        );
      }
    };
    conflict();
    const signature = await this.deps.signatureOf(req.deployment);
    if (req.feature !== undefined) {
      const columns = faultColumns(signature);
      if (!columns.includes(req.feature)) {
        throw new WardenError('WARDEN_BAD_REQUEST', `feature ${JSON.stringify(req.feature.slice(0, 64))} is not an input column of ${req.deployment}; its columns are ${columns.slice(0, 40).join(', ')}`);
      }
    }
    // Checked again after the await: two concurrent starts must not both arm.
    conflict();
    const startedAt = this.now();
    const record: GameDayRecord = {
      id: `gd-${randomUUID().slice(0, 13).replace('-', '')}`,
      deployment: req.deployment,
      fault: req.fault,
      intensity: req.intensity,
      ...(req.feature !== undefined ? { feature: req.feature } : {}),
      effect: faultEffect(req.fault, req.intensity, req.feature),
      durationMs: req.durationMs,
      startedAt,
      endsAt: startedAt + req.durationMs,
      endedAt: null,
      state: 'running',
      injected: { requests: 0, rows: 0 },
      ...(startedBy !== undefined ? { startedBy } : {}),
    };
    this.deps.faults.arm({
      id: record.id,
      deployment: record.deployment,
      kind: record.fault,
      intensity: record.intensity,
      ...(record.feature !== undefined ? { feature: record.feature } : {}),
      endsAt: record.endsAt,
    });
    const entry: Entry = { record };
    entry.timer = setTimeout(() => this.finish(entry, 'completed'), req.durationMs);
    entry.timer.unref();
    this.entries.set(record.id, entry);
    this.forgetOld();
    this.deps.logger?.warn({ gameday: record.id, deployment: record.deployment, fault: record.fault, intensity: record.intensity, durationMs: record.durationMs }, `game day started: ${record.effect}`);
    return this.snapshot(entry);
  }

  /** One game day; 404 when unknown (or forgotten). */
  get(id: string): GameDayRecord {
    const e = this.entries.get(id);
    if (!e) throw new WardenError('WARDEN_NOT_FOUND', `no game day ${JSON.stringify(id.slice(0, 64))} on this replica (the last ${GAMEDAY_HISTORY} are kept in memory)`);
    return this.snapshot(this.refresh(e));
  }

  /** Game days kept in memory, newest first, optionally of one deployment. */
  list(filter: { deployment?: string } = {}): GameDayRecord[] {
    return [...this.entries.values()]
      .filter((e) => filter.deployment === undefined || e.record.deployment === filter.deployment)
      .map((e) => this.snapshot(this.refresh(e)))
      .reverse();
  }

  /** Stops a running game day early; a finished one is returned as it is. */
  stop(id: string): GameDayRecord {
    const e = this.entries.get(id);
    if (!e) return this.get(id);
    if (this.refresh(e).record.state === 'running') this.finish(e, 'stopped');
    return this.snapshot(e);
  }

  /** Stops every running game day (server shutdown). */
  close(): void {
    for (const e of this.entries.values()) if (e.record.state === 'running') this.finish(e, 'stopped');
  }

  /** Marks a game day whose time is up as completed, even if its timer has not fired yet. */
  private refresh(e: Entry): Entry {
    if (e.record.state === 'running' && this.now() >= e.record.endsAt) this.finish(e, 'completed');
    return e;
  }

  private finish(e: Entry, state: Exclude<GameDayState, 'running'>): void {
    if (e.record.state !== 'running') return;
    clearTimeout(e.timer);
    const counts = this.deps.faults.counts(e.record.deployment, e.record.id);
    this.deps.faults.disarm(e.record.deployment, e.record.id);
    if (counts) e.record.injected = counts;
    e.record.state = state;
    e.record.endedAt = state === 'completed' ? e.record.endsAt : Math.min(this.now(), e.record.endsAt);
    this.deps.logger?.warn({ gameday: e.record.id, deployment: e.record.deployment, state, injected: e.record.injected }, `game day ${state}`);
  }

  private snapshot(e: Entry): GameDayRecord {
    const r = e.record;
    const live = r.state === 'running' ? this.deps.faults.counts(r.deployment, r.id) : undefined;
    return { ...r, injected: { ...(live ?? r.injected) } };
  }

  private forgetOld(): void {
    for (const [id, e] of this.entries) {
      if (this.entries.size <= GAMEDAY_HISTORY) return;
      if (e.record.state !== 'running') this.entries.delete(id);
    }
  }
}
