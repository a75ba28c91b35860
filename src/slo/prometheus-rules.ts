/**
 * Prometheus rules from SLO definitions: recording rules for each SLO's error ratio over every burn-rate window,
 * and the multi-window, multi-burn-rate alerting rules of the Google SRE Workbook (chapter 5, "Alerting on
 * SLOs"), so teams that alert from Prometheus get the same policy as Warden's own SloAlertSource.
 *
 * Only latency and availability can be computed from what /metrics exports (warden_inference_requests_total
 * and the warden_inference_duration_seconds histogram); window SLIs, cost and explanation coverage are evaluated
 * inside Warden and are listed as skipped in the file's header.
 */
import { Document, isMap, isSeq, type Node } from 'yaml';
import { LATENCY_BUCKETS } from '../telemetry/index.ts';
import { burnWindows, type BurnWindow } from './burn-rate.ts';
import { describeSli, periodMs, RUNBOOKS, TRAFFIC_SLI_KINDS, type SloDefinition } from './definition.ts';
import { SLO_ALERTNAME } from './alert-source.ts';

export interface PrometheusRulesOptions {
  /** Scales every window, as `slo.timeScale` does inside Warden (default 1). */
  timeScale?: number;
  /** Prefix of the runbook_url annotations (e.g. https://git.example.com/warden/blob/main/); default: repository-relative paths. */
  runbookBaseUrl?: string;
  /** Name of the program in the header comment. */
  generator?: string;
}

/** Prometheus duration text of `ms` (`3d`, `1h`, `1m10s`, `300ms`): units combine, largest first. */
export function promDuration(ms: number): string {
  let rest = Math.max(1, Math.round(ms));
  let out = '';
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}

/** Name of the recording rule holding an SLO's error ratio over a window. */
export function ratioRuleName(windowMs: number): string {
  return `warden:slo_errors:ratio_rate${promDuration(windowMs)}`;
}

const quote = (s: string) => JSON.stringify(s);

/**
 * A matcher for one histogram bucket bound. prom-client writes `le="1"`; Prometheus 3 normalises classic
 * histogram bounds to floats (`le="1.0"`) at scrape time, so integers match both spellings.
 */
function leMatcher(le: number): string {
  const text = String(le).replace(/\./g, '\\\\.');
  return Number.isInteger(le) ? `le=~"${text}(\\\\.0)?"` : `le=~"${text}"`;
}

/** The bucket bound used for a latency threshold: the largest bucket at or under it (exact when it is a bound). */
export function latencyBucket(thresholdMs: number): number | undefined {
  let best: number | undefined;
  // Compared in ms with a tolerance: a bound in seconds times 1000 may differ from the threshold in its last bits.
  for (const b of LATENCY_BUCKETS) if (b * 1000 <= thresholdMs + 1e-9) best = b;
  return best;
}

/** PromQL of an SLO's error ratio (bad / valid events) over a window. */
function errorRatioExpr(slo: SloDefinition, windowMs: number, le: number | undefined): string {
  const w = promDuration(windowMs);
  const model = `model=${quote(slo.deployment)}${slo.version !== undefined ? `,version=${quote(String(slo.version))}` : ''}`;
  if (slo.sli.kind === 'availability') {
    // Client errors (4xx) are the caller's: they are neither good nor bad events (docs/slo.md).
    return [
      `(sum(rate(warden_inference_requests_total{${model},outcome="server_error"}[${w}])) or vector(0))`,
      `/`,
      `sum(rate(warden_inference_requests_total{${model},outcome=~"ok|server_error"}[${w}]))`,
    ].join('\n');
  }
  // Latency: successful requests slower than the threshold, over successful requests.
  return [
    `1 - (`,
    `  sum(rate(warden_inference_duration_seconds_bucket{${model},outcome="ok",${leMatcher(le!)}}[${w}]))`,
    `  /`,
    `  sum(rate(warden_inference_duration_seconds_count{${model},outcome="ok"}[${w}]))`,
    `)`,
  ].join('\n');
}

function alertRule(slo: SloDefinition, w: BurnWindow, opts: PrometheusRulesOptions) {
  const sel = `{deployment=${quote(slo.deployment)},slo=${quote(slo.name)}}`;
  const threshold = `(${w.factor} * (1 - ${slo.objective}))`;
  const runbook = `${opts.runbookBaseUrl ?? ''}${RUNBOOKS[slo.sli.kind]}`;
  return {
    alert: SLO_ALERTNAME,
    expr: [`${ratioRuleName(w.longMs)}${sel} > ${threshold}`, 'and', `${ratioRuleName(w.shortMs)}${sel} > ${threshold}`].join('\n'),
    // deployment and slo also come from the expression; static copies keep every rule distinct for promtool's lint.
    labels: { severity: w.severity, deployment: slo.deployment, slo: slo.name, window: w.name, sli: slo.sli.kind },
    annotations: {
      summary: `${slo.deployment}: SLO ${slo.name} is burning its error budget (${w.severity}: above ${w.factor}x over ${w.name})`,
      description:
        `${describeSli(slo.sli)}; objective ${slo.objective} over ${slo.period}. ` +
        `Error ratio over ${promDuration(w.longMs)} is {{ $value | humanizePercentage }}, above ${w.factor}x the budget of ${+(1 - slo.objective).toPrecision(6)}.`,
      runbook_url: runbook,
    },
  };
}

/** What export did with each SLO: rules written, or why not. */
export interface ExportNote {
  slo: string;
  exported: boolean;
  note?: string;
}

/**
 * Prometheus rule file (YAML text) for the SLOs: one group per exportable SLO with its recording rules
 * (`warden:slo_errors:ratio_rate<window>{deployment, slo}`) and four `SLOErrorBudgetBurn` alerts (page 1h/5m,
 * page 6h/30m, ticket 1d/2h, ticket 3d/6h — windows scaled by period/30d and the time scale). Other SLOs are
 * named in the header with the reason they are skipped.
 */
export function prometheusRules(slos: readonly SloDefinition[], opts: PrometheusRulesOptions = {}): { text: string; notes: ExportNote[] } {
  const notes: ExportNote[] = [];
  const groups: { name: string; rules: unknown[] }[] = [];
  const groupComments: (string | undefined)[] = [];
  for (const slo of slos) {
    if (!TRAFFIC_SLI_KINDS.includes(slo.sli.kind)) {
      const why =
        slo.sli.kind === 'cost'
          ? 'cost is computed inside Warden from process CPU time and slo.costPerCpuHour'
          : slo.sli.kind === 'explanation_coverage'
            ? 'explanation_coverage counts requests whose explanation failed as bad, and /metrics does not tell those 400s from other client errors (docs/explainability.md#coverage has the PromQL of the explained share of successful requests)'
            : slo.sli.kind === 'feature_freshness'
              ? 'feature_freshness is sampled inside Warden from each replica\'s online cache (warden_feature_staleness_seconds shows the staleness itself)'
              : `${slo.sli.kind} is computed inside Warden from evaluated monitoring windows`;
      notes.push({ slo: slo.name, exported: false, note: `${why}; not expressible from exported metrics — Warden's own ${SLO_ALERTNAME} alerts cover it` });
      continue;
    }
    let le: number | undefined;
    let comment: string | undefined;
    if (slo.sli.kind === 'latency') {
      le = latencyBucket(slo.sli.thresholdMs);
      if (le === undefined) {
        notes.push({ slo: slo.name, exported: false, note: `threshold ${slo.sli.thresholdMs} ms is below the smallest latency bucket (${LATENCY_BUCKETS[0]! * 1000} ms)` });
        continue;
      }
      if (Math.abs(le * 1000 - slo.sli.thresholdMs) > 1e-9) {
        comment = ` threshold ${slo.sli.thresholdMs} ms is not a bucket bound of warden_inference_duration_seconds: the rules use le=${le} (${le * 1000} ms), so they count requests between ${le * 1000} and ${slo.sli.thresholdMs} ms as slow (stricter than Warden's own SLI)`;
      }
    }
    const windows = burnWindows(periodMs(slo), { timeScale: opts.timeScale ?? 1 });
    const durations = [...new Set(windows.flatMap((w) => [w.shortMs, w.longMs]))].sort((a, b) => a - b);
    // A fresh labels object per rule: a shared one would be written as a YAML anchor and aliases.
    const rules: unknown[] = durations.map((ms) => ({ record: ratioRuleName(ms), expr: errorRatioExpr(slo, ms, le), labels: { deployment: slo.deployment, slo: slo.name } }));
    for (const w of windows) rules.push(alertRule(slo, w, opts));
    groups.push({ name: `warden-slo:${slo.name}`, rules });
    groupComments.push(
      ` ${slo.name}: ${slo.deployment}, ${slo.sli.kind}, objective ${slo.objective} over ${slo.period}${comment ? `\n${comment}` : ''}`,
    );
    notes.push({ slo: slo.name, exported: true, ...(comment ? { note: comment.trim() } : {}) });
  }

  const doc = new Document({ groups });
  const header = [
    ` Generated by ${opts.generator ?? 'warden slo export --format prometheus'} from ${slos.length} SLO definition(s); regenerate rather than edit.`,
    ' Recording rules: each SLO\'s error ratio (bad / valid events) over its burn-rate windows.',
    ` Alerting rules: ${SLO_ALERTNAME}, multi-window multi-burn-rate (Google SRE Workbook, ch. 5): page when both windows`,
    ' exceed 14.4x (1h/5m) or 6x (6h/30m) the error budget rate; ticket at 3x (1d/2h) or 1x (3d/6h). Windows are those',
    ' of a 30-day SLO scaled by period / 30d. Route pages and tickets with the `severity` label; inhibit an SLO\'s tickets',
    ' while its page fires with an Alertmanager inhibit rule equal on [alertname, deployment, slo].',
    ...(opts.timeScale !== undefined && opts.timeScale !== 1 ? [` Time scale ${opts.timeScale}: every window is ${opts.timeScale}x its real length (tests and game days only).`] : []),
  ];
  const skipped = notes.filter((n) => !n.exported);
  if (skipped.length) {
    header.push(' Skipped (only latency and availability SLIs can be computed from exported metrics):');
    for (const n of skipped) header.push(`   - ${n.slo}: ${n.note}`);
  }
  doc.commentBefore = header.join('\n');
  const seq = doc.get('groups', true);
  if (isSeq(seq)) {
    seq.items.forEach((item, i) => {
      if (isMap(item) && groupComments[i]) (item as Node).commentBefore = groupComments[i]!;
    });
  }
  return { text: doc.toString({ lineWidth: 0 }), notes };
}
