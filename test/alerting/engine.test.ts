/**
 * The alert state machine with injected time: `for` durations, resolve, group wait / interval, repeat interval,
 * deduplication, silences, inhibition and rollout suppressions. No I/O: every call passes `now`.
 */
import { describe, expect, it } from 'vitest';
import {
  AlertEngine,
  fingerprint,
  type AlertCondition,
  type EngineOptions,
  type MuteContext,
  type Silence,
  type SourceResult,
  type Suppression,
} from '../../src/alerting/index.ts';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const NONE: MuteContext = { silences: [], suppressions: [] };

const OPTS: EngineOptions = {
  groupBy: ['deployment'],
  groupWaitMs: 10 * S,
  groupIntervalMs: 5 * M,
  repeatIntervalMs: 4 * H,
  receivers: [{ name: 'hook' }],
};

function cond(over: Partial<AlertCondition> = {}): AlertCondition {
  return {
    alertname: 'DataDrift',
    labels: { deployment: 'fraud' },
    severity: 'ticket',
    active: true,
    value: 1,
    summary: 'drift',
    description: 'the inputs drifted',
    runbookUrl: 'docs/runbooks/data-drift.md',
    ...over,
  };
}

/** One evaluation whose notifications are delivered at once (as a receiver that always answers 2xx). */
function tick(e: AlertEngine, results: SourceResult[], now: number, mutes: MuteContext) {
  const out = e.evaluate(results, now, mutes);
  for (const n of out.notifications) e.settle(n.id, true);
  return out;
}

const from = (...conditions: AlertCondition[]): SourceResult[] => [{ source: 'test', ok: true, conditions }];

describe('alert states', () => {
  it('stays pending until `for` has elapsed, then fires; a pending alert that stops holding goes back to inactive silently', () => {
    const e = new AlertEngine(OPTS);
    const c = cond({ forMs: 5 * M });
    let out = tick(e, from(c), 0, NONE);
    expect(e.alerts()[0]).toMatchObject({ state: 'pending', status: 'pending', activeAt: 0 });
    expect(out.transitions.map((t) => [t.from, t.to])).toEqual([['inactive', 'pending']]);
    out = tick(e, from(c), 4 * M, NONE);
    expect(e.alerts()[0]!.state).toBe('pending');
    expect(out.transitions).toEqual([]);
    out = tick(e, from(c), 5 * M, NONE);
    expect(e.alerts()[0]).toMatchObject({ state: 'firing', status: 'firing', firingAt: 5 * M, since: 5 * M });
    expect(out.transitions.map((t) => [t.from, t.to])).toEqual([['pending', 'firing']]);

    const e2 = new AlertEngine(OPTS);
    tick(e2, from(c), 0, NONE);
    out = tick(e2, from({ ...c, active: false }), M, NONE);
    expect(e2.alerts()).toEqual([]);
    expect(out.transitions.map((t) => [t.from, t.to])).toEqual([['pending', 'inactive']]);
    expect(out.notifications).toEqual([]);
  });

  it('with for 0 fires in the same evaluation (both steps recorded) and adds alertname and severity to the labels', () => {
    const e = new AlertEngine(OPTS);
    const out = tick(e, from(cond()), 0, NONE);
    expect(out.transitions.map((t) => [t.from, t.to])).toEqual([['inactive', 'pending'], ['pending', 'firing']]);
    const a = e.alerts()[0]!;
    expect(a.labels).toEqual({ deployment: 'fraud', alertname: 'DataDrift', severity: 'ticket' });
    expect(a.fingerprint).toBe(fingerprint({ severity: 'ticket', alertname: 'DataDrift', deployment: 'fraud' }));
    expect(a.annotations).toEqual({ summary: 'drift', description: 'the inputs drifted', runbook_url: 'docs/runbooks/data-drift.md' });
  });

  it('resolves a firing alert when its condition stops holding or its series disappears; a failed source keeps its alerts', () => {
    const e = new AlertEngine(OPTS);
    tick(e, from(cond()), 0, NONE);
    let out = tick(e, [{ source: 'test', ok: false, conditions: [] }], S, NONE);
    expect(e.alerts()).toHaveLength(1);
    expect(out.transitions).toEqual([]);
    out = tick(e, from(), 2 * S, NONE);
    expect(e.alerts()).toEqual([]);
    expect(out.transitions.map((t) => [t.from, t.to])).toEqual([['firing', 'resolved']]);
  });

  it('treats the alerts of a source that is gone as resolved', () => {
    const e = new AlertEngine(OPTS);
    tick(e, from(cond()), 0, NONE);
    const out = tick(e, [], S, NONE);
    expect(out.transitions.map((t) => t.to)).toEqual(['resolved']);
  });

  it('caps the number of tracked alerts and counts the rest', () => {
    const e = new AlertEngine({ ...OPTS, maxAlerts: 2 });
    const out = tick(e, from(...[1, 2, 3].map((i) => cond({ labels: { deployment: `d${i}` } }))), 0, NONE);
    expect(e.alerts()).toHaveLength(2);
    expect(out.dropped).toBe(1);
  });
});

describe('grouping, deduplication and repeat', () => {
  it('waits group_wait before the first notification and groups alerts of one deployment into one', () => {
    const e = new AlertEngine(OPTS);
    let out = tick(e, from(cond()), 0, NONE);
    expect(out.notifications).toEqual([]);
    out = tick(e, from(cond(), cond({ alertname: 'DataQuality' })), 5 * S, NONE);
    expect(out.notifications).toEqual([]);
    out = tick(e, from(cond(), cond({ alertname: 'DataQuality' })), 10 * S, NONE);
    expect(out.notifications).toHaveLength(1);
    const n = out.notifications[0]!;
    expect(n).toMatchObject({ receiver: 'hook', status: 'firing', groupLabels: { deployment: 'fraud' }, groupKey: '{}:{deployment="fraud"}', at: 10 * S });
    expect(n.alerts.map((a) => a.labels.alertname).sort()).toEqual(['DataDrift', 'DataQuality']);
    expect(n.alerts.every((a) => a.status === 'firing' && a.startsAt <= 5 * S)).toBe(true);
  });

  it('keeps deployments in separate groups', () => {
    const e = new AlertEngine(OPTS);
    const out = tick(e, from(cond(), cond({ labels: { deployment: 'churn' } })), 0, NONE);
    expect(out.notifications).toEqual([]);
    const later = tick(e, from(cond(), cond({ labels: { deployment: 'churn' } })), 10 * S, NONE);
    expect(later.notifications.map((n) => n.groupLabels.deployment).sort()).toEqual(['churn', 'fraud']);
  });

  it('does not notify the same firing alert again before the repeat interval (dedupe), then repeats', () => {
    const e = new AlertEngine(OPTS);
    tick(e, from(cond()), 0, NONE);
    expect(tick(e, from(cond()), 10 * S, NONE).notifications).toHaveLength(1);
    let sent = 0;
    // Every 15 s for 4 hours: group interval flushes happen, but nothing changed.
    for (let t = 10 * S + 15 * S; t < 10 * S + 4 * H; t += 15 * S) sent += tick(e, from(cond()), t, NONE).notifications.length;
    expect(sent).toBe(0);
    // The flush at or after 4 h repeats.
    let repeat = 0;
    for (let t = 10 * S + 4 * H; t <= 10 * S + 4 * H + 5 * M; t += 15 * S) repeat += tick(e, from(cond()), t, NONE).notifications.length;
    expect(repeat).toBe(1);
  });

  it('sends a new alert of a notified group at the next group interval, with the whole group', () => {
    const e = new AlertEngine(OPTS);
    tick(e, from(cond()), 0, NONE);
    tick(e, from(cond()), 10 * S, NONE);
    const two = from(cond(), cond({ alertname: 'DataQuality' }));
    expect(tick(e, two, M, NONE).notifications).toEqual([]);
    const out = tick(e, two, 10 * S + 5 * M, NONE);
    expect(out.notifications).toHaveLength(1);
    expect(out.notifications[0]!.alerts).toHaveLength(2);
  });

  it('tells the group about a resolution at its next flush, then forgets the group', () => {
    const e = new AlertEngine(OPTS);
    tick(e, from(cond()), 0, NONE);
    tick(e, from(cond()), 10 * S, NONE);
    expect(tick(e, from(cond({ active: false })), M, NONE).notifications).toEqual([]);
    const out = tick(e, from(), 10 * S + 5 * M, NONE);
    expect(out.notifications).toHaveLength(1);
    const n = out.notifications[0]!;
    expect(n.status).toBe('resolved');
    expect(n.alerts[0]).toMatchObject({ status: 'resolved', endsAt: M, startsAt: 0 });
    expect(e.groupStates()).toHaveLength(1);
    tick(e, from(), 10 * S + 10 * M, NONE);
    expect(e.groupStates()).toEqual([]);
  });

  it('does not tell a receiver with sendResolved false about resolutions', () => {
    const e = new AlertEngine({ ...OPTS, receivers: [{ name: 'hook', sendResolved: false }] });
    tick(e, from(cond()), 0, NONE);
    tick(e, from(cond()), 10 * S, NONE);
    tick(e, from(), M, NONE);
    expect(tick(e, from(), 10 * S + 5 * M, NONE).notifications).toEqual([]);
  });

  it('routes by severity: a page-only receiver never gets tickets', () => {
    const e = new AlertEngine({ ...OPTS, receivers: [{ name: 'pager', severities: ['page'] }, { name: 'tickets', severities: ['ticket'] }] });
    const both = from(cond(), cond({ alertname: 'Down', severity: 'page', labels: { deployment: 'churn' } }));
    tick(e, both, 0, NONE);
    const out = tick(e, both, 10 * S, NONE);
    expect(out.notifications.map((n) => [n.receiver, n.alerts.map((a) => a.labels.severity)])).toEqual(
      expect.arrayContaining([
        ['pager', ['page']],
        ['tickets', ['ticket']],
      ]),
    );
    expect(out.notifications).toHaveLength(2);
  });

  it('re-sends at the next group interval when a delivery failed, and not when it succeeded', () => {
    const e = new AlertEngine(OPTS);
    e.evaluate(from(cond()), 0, NONE);
    const first = e.evaluate(from(cond()), 10 * S, NONE).notifications[0]!;
    // While in flight, the group is not flushed again.
    expect(e.groupStates()[0]!.inFlight).toBe(true);
    e.settle(first.id, false);
    const retry = e.evaluate(from(cond()), 10 * S + 5 * M, NONE).notifications;
    expect(retry).toHaveLength(1);
    e.settle(retry[0]!.id, true);
    expect(e.evaluate(from(cond()), 10 * S + 10 * M, NONE).notifications).toEqual([]);
  });
});

describe('silences, inhibition and suppression', () => {
  const silence = (over: Partial<Silence> = {}): Silence => ({
    id: 's1',
    matchers: [{ name: 'deployment', value: 'fraud', isRegex: false, isEqual: true }],
    startsAt: 0,
    endsAt: H,
    createdBy: 'ana',
    comment: 'known',
    createdAt: 0,
    updatedAt: 0,
    ...over,
  });

  it('mutes a firing alert matched by an active silence; it notifies once the silence ends', () => {
    const e = new AlertEngine(OPTS);
    const mutes = { silences: [silence()], suppressions: [] };
    let out = tick(e, from(cond()), 0, mutes);
    expect(e.alerts()[0]).toMatchObject({ state: 'firing', status: 'silenced', silencedBy: ['s1'] });
    expect(out.transitions.at(-1)).toMatchObject({ from: 'pending', to: 'silenced', mutedBy: ['s1'] });
    for (let t = 15 * S; t < H; t += 15 * S) expect(tick(e, from(cond()), t, mutes).notifications).toEqual([]);
    out = tick(e, from(cond()), H, mutes);
    expect(out.transitions.map((t) => [t.from, t.to])).toEqual([['silenced', 'firing']]);
    expect(tick(e, from(cond()), H + 10 * S, mutes).notifications).toHaveLength(1);
  });

  it('a silence matches with regex and negative matchers, only between its start and end', () => {
    const e = new AlertEngine(OPTS);
    const s = silence({ matchers: [{ name: 'alertname', value: 'Data.*', isRegex: true, isEqual: true }, { name: 'deployment', value: 'churn', isRegex: false, isEqual: false }], startsAt: M, endsAt: 2 * M });
    const mutes = { silences: [s], suppressions: [] };
    tick(e, from(cond(), cond({ labels: { deployment: 'churn' } })), 0, mutes);
    expect(e.alerts().map((a) => a.status)).toEqual(['firing', 'firing']);
    tick(e, from(cond(), cond({ labels: { deployment: 'churn' } })), M, mutes);
    expect(Object.fromEntries(e.alerts().map((a) => [a.labels.deployment, a.status]))).toEqual({ fraud: 'silenced', churn: 'firing' });
    tick(e, from(cond(), cond({ labels: { deployment: 'churn' } })), 2 * M, mutes);
    expect(e.alerts().map((a) => a.status)).toEqual(['firing', 'firing']);
  });

  it('a firing page inhibits tickets of the same deployment and inhibit group only', () => {
    const e = new AlertEngine(OPTS);
    const page = cond({ alertname: 'SLOErrorBudgetBurn', severity: 'page', labels: { deployment: 'fraud', slo: 'availability' } });
    const ticket = cond({ alertname: 'SLOErrorBudgetBurn', severity: 'ticket', labels: { deployment: 'fraud', slo: 'availability' } });
    const otherDeployment = cond({ alertname: 'SLOErrorBudgetBurn', severity: 'ticket', labels: { deployment: 'churn', slo: 'availability' } });
    const otherGroup = cond({ alertname: 'DataDrift', severity: 'ticket' });
    tick(e, from(page, ticket, otherDeployment, otherGroup), 0, NONE);
    const status = () => Object.fromEntries(e.alerts().map((a) => [`${a.alertname}/${a.severity}/${a.labels.deployment}`, a.status]));
    expect(status()).toEqual({
      'SLOErrorBudgetBurn/page/fraud': 'firing',
      'SLOErrorBudgetBurn/ticket/fraud': 'inhibited',
      'SLOErrorBudgetBurn/ticket/churn': 'firing',
      'DataDrift/ticket/fraud': 'firing',
    });
    const inhibited = e.alerts().find((a) => a.status === 'inhibited')!;
    expect(inhibited.inhibitedBy).toEqual([e.alerts().find((a) => a.severity === 'page')!.fingerprint]);
    // The page resolves: the ticket fires again.
    tick(e, from({ ...page, active: false }, ticket, otherDeployment, otherGroup), M, NONE);
    expect(status()['SLOErrorBudgetBurn/ticket/fraud']).toBe('firing');
  });

  it('a pending page does not inhibit; the inhibit_group label joins different alertnames', () => {
    const e = new AlertEngine(OPTS);
    const page = cond({ alertname: 'LivePerformance', severity: 'page', forMs: 5 * M, labels: { deployment: 'fraud', inhibit_group: 'perf' } });
    const ticket = cond({ alertname: 'ConceptDrift', labels: { deployment: 'fraud', inhibit_group: 'perf' } });
    tick(e, from(page, ticket), 0, NONE);
    expect(e.alerts().find((a) => a.alertname === 'ConceptDrift')!.status).toBe('firing');
    tick(e, from(page, ticket), 5 * M, NONE);
    expect(e.alerts().find((a) => a.alertname === 'ConceptDrift')!.status).toBe('inhibited');
  });

  it('records but does not notify alerts of a deployment in a rollout window; other deployments still notify', () => {
    const e = new AlertEngine(OPTS);
    const sup: Suppression = { id: 'r1', deployment: 'fraud', startsAt: 0, until: 10 * M, reason: 'canary 2', createdBy: 'rollouts', createdAt: 0 };
    const mutes = { silences: [], suppressions: [sup] };
    const both = from(cond(), cond({ labels: { deployment: 'churn' } }));
    const out = tick(e, both, 0, mutes);
    expect(out.transitions.filter((t) => t.to === 'suppressed')).toHaveLength(1);
    expect(e.alerts().find((a) => a.labels.deployment === 'fraud')).toMatchObject({ status: 'suppressed', suppressedBy: ['r1'] });
    const n = tick(e, both, 10 * S, mutes).notifications;
    expect(n.map((x) => x.groupLabels.deployment)).toEqual(['churn']);
    for (let t = 25 * S; t < 10 * M; t += 15 * S) expect(tick(e, both, t, mutes).notifications.filter((x) => x.groupLabels.deployment === 'fraud')).toEqual([]);
    tick(e, both, 10 * M, mutes);
    expect(e.alerts().find((a) => a.labels.deployment === 'fraud')!.status).toBe('firing');
    expect(tick(e, both, 10 * M + 10 * S, mutes).notifications.map((x) => x.groupLabels.deployment)).toEqual(['fraud']);
  });
});
