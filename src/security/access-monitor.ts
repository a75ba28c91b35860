/**
 * Unusual access (docs/security.md#unusual-access, the seed's F8): per API key, measured against the key's own past —
 *
 * - **spike**: requests in the last minute at least `spikeFactor` × the key's mean per minute over the hour before
 *   (and at least `spikeMinPerMinute`);
 * - **sweep**: distinct inputs in the last 5 minutes at least `sweepFactor` × the key's mean per 5 minutes over the
 *   hour before (and at least `sweepMinDistinct`): many different inputs, the shape of a model-extraction attempt;
 * - **refused burst**: at least `refusedPerMinute` requests refused (401, 403, 429) in the last minute, for a key or,
 *   for requests without a known key, for the address they came from;
 * - **new address**: a key used from an address it was not seen from before (after a learning period from start).
 *
 * Kept in memory per replica, in fixed-size minute rings and a small distinct-count sketch per key, for at most
 * `maxSubjects` keys and addresses (the least recently seen are forgotten past that). `observe` is O(1) and allocates
 * nothing for a subject already tracked.
 */
import type { AlertCondition, AlertSource } from '../alerting/index.ts';

export interface AccessMonitorConfig {
  spikeFactor: number;
  spikeMinPerMinute: number;
  sweepFactor: number;
  sweepMinDistinct: number;
  refusedPerMinute: number;
  /** Addresses seen within this long after start are learned, not alerted on (every address is new at start). */
  learnMs: number;
  /** How long an alert stays active after the pattern was last seen. */
  holdMs: number;
  maxSubjects: number;
  maxAddressesPerKey: number;
}

export const DEFAULT_ACCESS_MONITOR: AccessMonitorConfig = {
  spikeFactor: 5,
  spikeMinPerMinute: 300,
  sweepFactor: 5,
  sweepMinDistinct: 500,
  refusedPerMinute: 20,
  learnMs: 3_600_000,
  holdMs: 600_000,
  maxSubjects: 10_000,
  maxAddressesPerKey: 64,
};

const MINUTE = 60_000;
const SLOTS = 61; // the current minute and the 60 before it
const SKETCH_BITS = 4096; // a linear-counting bitmap: exact enough up to a few thousand distinct inputs per window

interface Subject {
  /** Minute index each slot holds. */
  minute: Int32Array;
  requests: Uint32Array;
  refused: Uint32Array;
  /** Distinct inputs per 5-minute block: one bitmap per block of the last hour plus the current one. */
  blocks: Int32Array;
  /** Made on the first fingerprint: an address that is only refused never needs them. */
  sketches: Uint8Array[] | undefined;
  /** Bits set in each block's bitmap, kept as they are set: the estimate is then O(1). */
  ones: Uint32Array;
  addresses: Set<string> | undefined;
  /** The minute it was first seen: minutes before it are no baseline of zero. */
  firstMinute: number;
  lastSeen: number;
  /** When each pattern was last detected (0: never) and the numbers then. */
  hits: Record<Pattern, { at: number; value: number; detail: string }>;
}

export type Pattern = 'spike' | 'sweep' | 'refused' | 'new-address';

const ALERTS: Record<Pattern, { alertname: string; runbook: string; severity: 'page' | 'ticket' }> = {
  spike: { alertname: 'WardenKeyTrafficSpike', runbook: 'docs/runbooks/security-anomaly.md', severity: 'ticket' },
  sweep: { alertname: 'WardenKeyInputSweep', runbook: 'docs/runbooks/security-anomaly.md', severity: 'page' },
  refused: { alertname: 'WardenRefusedBurst', runbook: 'docs/runbooks/security-anomaly.md', severity: 'ticket' },
  'new-address': { alertname: 'WardenKeyNewAddress', runbook: 'docs/runbooks/security-anomaly.md', severity: 'ticket' },
};

/** FNV-1a over at most the first 512 characters and the length: a cheap fingerprint of a request body. */
export function inputFingerprint(text: string): number {
  let h = 0x811c9dc5 ^ text.length;
  const n = Math.min(text.length, 512);
  for (let i = 0; i < n; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class AccessMonitor {
  private readonly subjects = new Map<string, Subject>();
  private readonly started: number;
  readonly config: AccessMonitorConfig;

  constructor(config: Partial<AccessMonitorConfig> = {}, private readonly now: () => number = Date.now) {
    this.config = { ...DEFAULT_ACCESS_MONITOR, ...config };
    this.started = now();
  }

  /** A request by a key (`key:ID`) or, without a known key, from an address (`address:IP`). */
  observe(subject: string, address: string | undefined, refused: boolean, fingerprint?: number): void {
    const now = this.now();
    const s = this.subject(subject, now);
    const m = Math.floor(now / MINUTE);
    const slot = m % SLOTS;
    if (s.minute[slot] !== m) {
      s.minute[slot] = m;
      s.requests[slot] = 0;
      s.refused[slot] = 0;
    }
    s.requests[slot]!++;
    if (refused) {
      s.refused[slot]!++;
      if (s.refused[slot]! >= this.config.refusedPerMinute) this.hit(s, 'refused', now, s.refused[slot]!, `${s.refused[slot]} requests refused in the last minute`);
      return;
    }
    if (address !== undefined && subject.startsWith('key:')) this.address(s, address, now);
    const c = this.config;
    const current = s.requests[slot]! - s.refused[slot]!;
    // The sums behind a verdict are taken only past a threshold, and then every 16th step: O(1) below it.
    if (current >= c.spikeMinPerMinute && (current - c.spikeMinPerMinute) % 16 === 0) this.checkSpike(s, now, m, slot, current);
    if (fingerprint !== undefined) {
      const b = Math.floor(now / (5 * MINUTE));
      const bs = b % s.blocks.length;
      s.sketches ??= Array.from({ length: 13 }, () => new Uint8Array(SKETCH_BITS / 8));
      if (s.blocks[bs] !== b) {
        s.blocks[bs] = b;
        s.sketches[bs]!.fill(0);
        s.ones[bs] = 0;
      }
      const bit = fingerprint % SKETCH_BITS;
      const sketch = s.sketches[bs]!;
      if ((sketch[bit >> 3]! & (1 << (bit & 7))) === 0) {
        sketch[bit >> 3]! |= 1 << (bit & 7);
        const ones = ++s.ones[bs]!;
        if (ones % 16 === 0 && estimate(ones) >= c.sweepMinDistinct) this.checkSweep(s, now, b, bs);
      }
    }
  }

  private subject(id: string, now: number): Subject {
    let s = this.subjects.get(id);
    if (s) {
      s.lastSeen = now;
      // Most recently seen last: the first in the map is the one to forget.
      this.subjects.delete(id);
      this.subjects.set(id, s);
      return s;
    }
    if (this.subjects.size >= this.config.maxSubjects) this.subjects.delete(this.subjects.keys().next().value!);
    s = {
      minute: new Int32Array(SLOTS).fill(-1),
      requests: new Uint32Array(SLOTS),
      refused: new Uint32Array(SLOTS),
      blocks: new Int32Array(13).fill(-1),
      sketches: undefined,
      ones: new Uint32Array(13),
      addresses: undefined,
      firstMinute: Math.floor(now / MINUTE),
      lastSeen: now,
      hits: { spike: { at: 0, value: 0, detail: '' }, sweep: { at: 0, value: 0, detail: '' }, refused: { at: 0, value: 0, detail: '' }, 'new-address': { at: 0, value: 0, detail: '' } },
    };
    this.subjects.set(id, s);
    return s;
  }

  private address(s: Subject, address: string, now: number): void {
    s.addresses ??= new Set();
    if (s.addresses.has(address)) return;
    const learning = now - this.started < this.config.learnMs || s.addresses.size === 0;
    if (s.addresses.size < this.config.maxAddressesPerKey) s.addresses.add(address);
    if (!learning) this.hit(s, 'new-address', now, s.addresses.size, `first use from ${address} (known: ${[...s.addresses].filter((a) => a !== address).slice(0, 5).join(', ')})`);
  }

  private checkSpike(s: Subject, now: number, m: number, slot: number, current: number): void {
    let past = 0;
    for (let i = 1; i < SLOTS; i++) {
      const sl = (slot - i + SLOTS) % SLOTS;
      if (s.minute[sl] === m - i) past += s.requests[sl]! - s.refused[sl]!;
    }
    const baseline = past / Math.max(Math.min(SLOTS - 1, m - s.firstMinute), 1);
    if (current >= this.config.spikeFactor * Math.max(baseline, 1)) {
      this.hit(s, 'spike', now, current, `${current} requests in the last minute against a mean of ${baseline.toFixed(1)} a minute over the hour before`);
    }
  }

  private checkSweep(s: Subject, now: number, b: number, bs: number): void {
    const distinct = estimate(s.ones[bs]!);
    const n = s.blocks.length;
    let sum = 0;
    for (let i = 1; i < n; i++) {
      const j = (bs - i + n) % n;
      if (s.blocks[j] === b - i) sum += estimate(s.ones[j]!);
    }
    const blocks = Math.min(n - 1, b - Math.floor((s.firstMinute * MINUTE) / (5 * MINUTE)));
    const base = sum / Math.max(blocks, 1);
    if (distinct >= this.config.sweepFactor * Math.max(base, 1)) {
      this.hit(s, 'sweep', now, distinct, `about ${Math.round(distinct)} distinct inputs in the last 5 minutes against a mean of ${base.toFixed(0)} per 5 minutes over the hour before`);
    }
  }

  private hit(s: Subject, p: Pattern, now: number, value: number, detail: string): void {
    s.hits[p] = { at: now, value, detail };
  }

  /** What is active now per subject and pattern (a pattern stays active for holdMs after it was last seen). */
  active(now = this.now()): { subject: string; pattern: Pattern; at: number; value: number; detail: string }[] {
    const out: { subject: string; pattern: Pattern; at: number; value: number; detail: string }[] = [];
    for (const [subject, s] of this.subjects) {
      for (const p of Object.keys(s.hits) as Pattern[]) {
        const h = s.hits[p];
        if (h.at > 0 && now - h.at <= this.config.holdMs) out.push({ subject, pattern: p, ...h });
      }
    }
    return out;
  }

  alertSource(): AlertSource {
    return {
      name: 'access',
      evaluate: async (now: number): Promise<AlertCondition[]> =>
        this.active(now).map((a) => {
          const def = ALERTS[a.pattern];
          const [kind, id] = [a.subject.slice(0, a.subject.indexOf(':')), a.subject.slice(a.subject.indexOf(':') + 1)];
          const labels: Record<string, string> = kind === 'key' ? { key: id } : { address: id };
          return {
            alertname: def.alertname,
            labels,
            severity: def.severity,
            active: true,
            value: a.value,
            summary: `${kind === 'key' ? `API key ${id}` : `requests from ${id}`}: ${a.pattern === 'new-address' ? 'used from a new address' : a.pattern === 'refused' ? 'a burst of refused requests' : a.pattern === 'sweep' ? 'many distinct inputs (model extraction?)' : 'a traffic spike'}`,
            description: a.detail,
            runbookUrl: def.runbook,
          };
        }),
    };
  }
}

/** Linear counting over the bitmap: n ≈ −m ln(zero bits / m). */
function estimate(ones: number): number {
  const zeros = SKETCH_BITS - ones;
  return zeros === 0 ? SKETCH_BITS * Math.log(SKETCH_BITS) : -SKETCH_BITS * Math.log(zeros / SKETCH_BITS);
}
