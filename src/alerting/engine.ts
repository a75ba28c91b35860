import { fingerprint, labelSetText, matchesAll, type Matcher } from './labels.ts';
import type { AlertCondition, Severity } from './types.ts';
import type { SuppressionRecord } from '../storage/index.ts';

/** Where an alert is in its life: pending (holding, `for` not yet elapsed) or firing. */
export type AlertState = 'pending' | 'firing';
/** What notification sees: a firing alert may be muted by a silence, an inhibiting page or a rollout suppression. */
export type AlertStatus = 'pending' | 'firing' | 'silenced' | 'inhibited' | 'suppressed';
/** A status, or one of the two ends of an alert's life. */
export type AlertPhase = AlertStatus | 'inactive' | 'resolved';

/** A silence: alerts whose labels match every matcher are not notified between startsAt and endsAt. */
export interface Silence {
  id: string;
  matchers: Matcher[];
  startsAt: number;
  endsAt: number;
  createdBy: string;
  comment: string;
  createdAt: number;
  updatedAt: number;
}

/** A rollout window: alerts of the deployment are evaluated and recorded, but not notified, until `until`. */
export type Suppression = SuppressionRecord;

/** The annotations every alert carries (Prometheus' conventional names). */
export interface AlertAnnotations {
  summary: string;
  description: string;
  runbook_url: string;
}

/** One alert the engine tracks (pending or firing). */
export interface Alert {
  fingerprint: string;
  alertname: string;
  /** The condition's labels plus `alertname` and `severity`. */
  labels: Record<string, string>;
  annotations: AlertAnnotations;
  severity: Severity;
  /** Name of the source that reported it. */
  source: string;
  value?: number;
  forMs: number;
  state: AlertState;
  status: AlertStatus;
  /** When the status last changed. */
  since: number;
  /** When the condition started to hold (the pending start). */
  activeAt: number;
  /** When it started firing (Alertmanager's startsAt). */
  firingAt?: number;
  /** Last evaluation that reported it. */
  evaluatedAt: number;
  silencedBy: string[];
  inhibitedBy: string[];
  suppressedBy: string[];
}

/** An alert as a notification carries it. */
export interface NotifiedAlert {
  fingerprint: string;
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: AlertAnnotations;
  startsAt: number;
  /** Set when resolved. */
  endsAt?: number;
  value?: number;
}

/** One message for one receiver about one group. */
export interface Notification {
  id: string;
  receiver: string;
  groupKey: string;
  groupLabels: Record<string, string>;
  status: 'firing' | 'resolved';
  alerts: NotifiedAlert[];
  at: number;
}

/** One change of an alert's phase, for the history. */
export interface Transition {
  at: number;
  fingerprint: string;
  alertname: string;
  labels: Record<string, string>;
  severity: Severity;
  source: string;
  from: AlertPhase;
  to: AlertPhase;
  value?: number;
  /** Silence, suppression or inhibiting alert ids when `to` is a muted status. */
  mutedBy?: string[];
}

/** What one source reported at one evaluation: `ok: false` keeps its alerts as they were (no resolve on error). */
export interface SourceResult {
  source: string;
  ok: boolean;
  conditions: AlertCondition[];
}

/** A receiver as the engine sees it: which severities it takes and whether it hears about resolutions. */
export interface ReceiverRoute {
  name: string;
  severities?: readonly Severity[];
  sendResolved?: boolean;
}

export interface EngineOptions {
  /** Labels alerts are grouped by (Alertmanager `group_by`). Default `['deployment']`. */
  groupBy: readonly string[];
  /** Wait before the first notification of a new group, to gather its alerts. */
  groupWaitMs: number;
  /** Wait between notifications of one group about new alerts or resolutions. */
  groupIntervalMs: number;
  /** Re-send an unchanged firing group after this long. */
  repeatIntervalMs: number;
  receivers: readonly ReceiverRoute[];
  /** Bound on tracked alerts; new ones past it are dropped and counted (label cardinality guard). Default 10,000. */
  maxAlerts?: number;
}

/** The mutes in force at an evaluation. */
export interface MuteContext {
  silences: readonly Silence[];
  suppressions: readonly Suppression[];
}

export interface EvaluationOutcome {
  transitions: Transition[];
  notifications: Notification[];
  /** Alerts not tracked because maxAlerts was reached. */
  dropped: number;
}

interface Group {
  receiver: ReceiverRoute;
  groupKey: string;
  groupLabels: Record<string, string>;
  nextFlushAt: number;
  lastNotifiedAt: number | undefined;
  notifiedFiring: Set<string>;
  resolved: Map<string, NotifiedAlert>;
  inFlight: { id: string; notifiedFiring: Set<string>; lastNotifiedAt: number | undefined; resolved: Map<string, NotifiedAlert> } | undefined;
}

/** The group an alert belongs to for grouping and inhibition: the rule's inhibit group, or the alertname. */
export const inhibitGroupOf = (labels: Readonly<Record<string, string>>) => labels.inhibit_group ?? labels.alertname ?? '';

/** True when the silence is in force at `now` (start inclusive, end exclusive). */
export const silenceActive = (s: Silence, now: number) => s.startsAt <= now && now < s.endsAt;
/** True when the suppression is in force at `now`. */
export const suppressionActive = (s: Suppression, now: number) => s.startsAt <= now && now < s.until;

/**
 * The alerting state machine, Prometheus' rule states and Alertmanager's dispatcher in one pure object: every
 * method takes `now`, does no I/O and returns what changed; the service around it reads sources, stores the
 * history and delivers the notifications (STYLE.md "Pure decisions, injected time").
 *
 * Per alert fingerprint: inactive → pending (active, `for` not elapsed) → firing → resolved; a pending alert whose
 * condition stops holding goes back to inactive without notice. Firing alerts are muted by silences (matchers),
 * by a firing page of the same deployment and inhibit group (tickets only), and by rollout suppressions of their
 * deployment. Unmuted firing alerts go, per receiver, into groups by `groupBy`: a new group waits `groupWaitMs`,
 * then is flushed every `groupIntervalMs`; a flush notifies when it has a firing alert not yet notified, a
 * resolution to tell, or `repeatIntervalMs` has passed since the last notification (Alertmanager's dedup stage).
 */
export class AlertEngine {
  private readonly active = new Map<string, Alert>();
  private readonly groups = new Map<string, Group>();
  private seq = 0;

  constructor(private readonly opts: EngineOptions) {}

  /** Alerts now pending or firing, oldest first. */
  alerts(): Alert[] {
    return [...this.active.values()].sort((a, b) => a.activeAt - b.activeAt || a.fingerprint.localeCompare(b.fingerprint));
  }

  /** One evaluation: fold the sources' conditions into alert states, apply mutes, flush due groups. */
  evaluate(results: readonly SourceResult[], now: number, mutes: MuteContext): EvaluationOutcome {
    const transitions: Transition[] = [];
    const resolved: NotifiedAlert[] = [];
    let dropped = 0;
    const maxAlerts = this.opts.maxAlerts ?? 10_000;
    const failed = new Set(results.filter((r) => !r.ok).map((r) => r.source));
    const seen = new Set<string>();

    const record = (a: Alert, from: AlertPhase, to: AlertPhase, mutedBy?: string[]) =>
      transitions.push({
        at: now,
        fingerprint: a.fingerprint,
        alertname: a.alertname,
        labels: a.labels,
        severity: a.severity,
        source: a.source,
        from,
        to,
        ...(a.value !== undefined ? { value: a.value } : {}),
        ...(mutedBy && mutedBy.length ? { mutedBy } : {}),
      });

    const end = (a: Alert) => {
      this.active.delete(a.fingerprint);
      if (a.state === 'pending') {
        record(a, a.status, 'inactive');
        return;
      }
      record(a, a.status, 'resolved');
      resolved.push({ ...snapshot(a), status: 'resolved', endsAt: now });
    };

    for (const r of results) {
      if (!r.ok) continue;
      for (const c of r.conditions) {
        const labels: Record<string, string> = { ...c.labels, alertname: c.alertname, severity: c.severity };
        const fp = fingerprint(labels);
        seen.add(fp);
        const existing = this.active.get(fp);
        if (!c.active) {
          if (existing) end(existing);
          continue;
        }
        const annotations = { summary: c.summary, description: c.description, runbook_url: c.runbookUrl };
        const forMs = Math.max(0, c.forMs ?? 0);
        if (existing) {
          existing.annotations = annotations;
          existing.forMs = forMs;
          existing.evaluatedAt = now;
          existing.source = r.source;
          if (c.value !== undefined) existing.value = c.value;
          else delete existing.value;
          continue;
        }
        if (this.active.size >= maxAlerts) {
          dropped++;
          continue;
        }
        const a: Alert = {
          fingerprint: fp,
          alertname: c.alertname,
          labels,
          annotations,
          severity: c.severity,
          source: r.source,
          ...(c.value !== undefined ? { value: c.value } : {}),
          forMs,
          state: 'pending',
          status: 'pending',
          since: now,
          activeAt: now,
          evaluatedAt: now,
          silencedBy: [],
          inhibitedBy: [],
          suppressedBy: [],
        };
        this.active.set(fp, a);
        // With `for: 0` the alert also fires in this evaluation: both steps are recorded, at the same time.
        record(a, 'inactive', 'pending');
      }
    }
    // Alerts of sources that answered without them (or of sources that are gone) no longer hold.
    for (const a of [...this.active.values()]) {
      if (!seen.has(a.fingerprint) && !failed.has(a.source)) end(a);
    }
    // Pending → firing once `for` has elapsed.
    for (const a of this.active.values()) {
      if (a.state === 'pending' && now - a.activeAt >= a.forMs) {
        a.state = 'firing';
        a.firingAt = now;
      }
    }
    this.applyMutes(now, mutes, record);
    const notifications = this.dispatch(now, resolved);
    return { transitions, notifications, dropped };
  }

  private applyMutes(now: number, mutes: MuteContext, record: (a: Alert, from: AlertPhase, to: AlertPhase, mutedBy?: string[]) => void): void {
    const silences = mutes.silences.filter((s) => silenceActive(s, now));
    const suppressions = mutes.suppressions.filter((s) => suppressionActive(s, now));
    const pages = [...this.active.values()].filter((a) => a.state === 'firing' && a.severity === 'page');
    for (const a of this.active.values()) {
      a.silencedBy = silences.filter((s) => matchesAll(s.matchers, a.labels)).map((s) => s.id);
      a.suppressedBy = suppressions.filter((s) => s.deployment === (a.labels.deployment ?? '')).map((s) => s.id);
      const group = inhibitGroupOf(a.labels);
      a.inhibitedBy =
        a.severity === 'ticket'
          ? pages.filter((p) => (p.labels.deployment ?? '') === (a.labels.deployment ?? '') && inhibitGroupOf(p.labels) === group).map((p) => p.fingerprint)
          : [];
      const next: AlertStatus =
        a.state === 'pending'
          ? 'pending'
          : a.silencedBy.length
            ? 'silenced'
            : a.inhibitedBy.length
              ? 'inhibited'
              : a.suppressedBy.length
                ? 'suppressed'
                : 'firing';
      if (next !== a.status) {
        const mutedBy = next === 'silenced' ? a.silencedBy : next === 'inhibited' ? a.inhibitedBy : next === 'suppressed' ? a.suppressedBy : undefined;
        record(a, a.status, next, mutedBy);
        a.status = next;
        a.since = now;
      }
    }
  }

  private dispatch(now: number, resolved: readonly NotifiedAlert[]): Notification[] {
    const o = this.opts;
    const current = new Map<string, NotifiedAlert[]>();
    for (const r of o.receivers) {
      // Resolutions go to the groups that were told the alert fired.
      if (r.sendResolved !== false) {
        for (const g of this.groups.values()) {
          if (g.receiver.name !== r.name) continue;
          for (const x of resolved) if (g.notifiedFiring.has(x.fingerprint)) g.resolved.set(x.fingerprint, x);
        }
      }
      for (const a of this.active.values()) {
        if (a.status !== 'firing' || (r.severities && !r.severities.includes(a.severity))) continue;
        const groupLabels: Record<string, string> = {};
        for (const l of o.groupBy) if (a.labels[l] !== undefined) groupLabels[l] = a.labels[l]!;
        const groupKey = `{}:${labelSetText(groupLabels)}`;
        const key = `${r.name}\u0000${groupKey}`;
        let g = this.groups.get(key);
        if (!g) {
          g = { receiver: r, groupKey, groupLabels, nextFlushAt: now + o.groupWaitMs, lastNotifiedAt: undefined, notifiedFiring: new Set(), resolved: new Map(), inFlight: undefined };
          this.groups.set(key, g);
        }
        let list = current.get(key);
        if (!list) current.set(key, (list = []));
        list.push(snapshot(a));
      }
    }
    const out: Notification[] = [];
    for (const [key, g] of this.groups) {
      if (now < g.nextFlushAt || g.inFlight) continue;
      const firing = current.get(key) ?? [];
      if (firing.length === 0 && g.resolved.size === 0) {
        this.groups.delete(key);
        continue;
      }
      g.nextFlushAt = now + o.groupIntervalMs;
      const news = firing.some((a) => !g.notifiedFiring.has(a.fingerprint));
      const repeat = firing.length > 0 && (g.lastNotifiedAt === undefined || now - g.lastNotifiedAt >= o.repeatIntervalMs);
      if (!news && g.resolved.size === 0 && !repeat) continue;
      const n: Notification = {
        id: `n${++this.seq}`,
        receiver: g.receiver.name,
        groupKey: g.groupKey,
        groupLabels: g.groupLabels,
        status: firing.length ? 'firing' : 'resolved',
        alerts: [...firing, ...g.resolved.values()],
        at: now,
      };
      g.inFlight = { id: n.id, notifiedFiring: g.notifiedFiring, lastNotifiedAt: g.lastNotifiedAt, resolved: g.resolved };
      g.notifiedFiring = new Set(firing.map((a) => a.fingerprint));
      g.lastNotifiedAt = now;
      g.resolved = new Map();
      out.push(n);
    }
    return out;
  }

  /**
   * The delivery result of a notification. A failure restores the group's previous dedup state, so the next
   * group interval sends again what did not arrive.
   */
  settle(notificationId: string, ok: boolean): void {
    for (const g of this.groups.values()) {
      if (g.inFlight?.id !== notificationId) continue;
      if (!ok) {
        g.notifiedFiring = g.inFlight.notifiedFiring;
        g.lastNotifiedAt = g.inFlight.lastNotifiedAt;
        for (const [fp, x] of g.inFlight.resolved) if (!g.resolved.has(fp)) g.resolved.set(fp, x);
      }
      g.inFlight = undefined;
      return;
    }
  }

  /** Groups with their next flush time, for the API and tests. */
  groupStates(): { receiver: string; groupKey: string; nextFlushAt: number; lastNotifiedAt?: number; notified: string[]; inFlight: boolean }[] {
    return [...this.groups.values()].map((g) => ({
      receiver: g.receiver.name,
      groupKey: g.groupKey,
      nextFlushAt: g.nextFlushAt,
      ...(g.lastNotifiedAt !== undefined ? { lastNotifiedAt: g.lastNotifiedAt } : {}),
      notified: [...g.notifiedFiring],
      inFlight: g.inFlight !== undefined,
    }));
  }
}

function snapshot(a: Alert): NotifiedAlert {
  return {
    fingerprint: a.fingerprint,
    status: 'firing',
    labels: a.labels,
    annotations: a.annotations,
    startsAt: a.firingAt ?? a.activeAt,
    ...(a.value !== undefined ? { value: a.value } : {}),
  };
}
