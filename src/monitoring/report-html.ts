import type { OfflineReport } from './offline.ts';

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '–';
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-3 ? x.toExponential(2) : Number(x.toPrecision(3)).toString();
}

/** Side-by-side bars of reference and current shares per bin, as inline SVG (no script, no raw rows). */
function histogramSvg(labels: string[], ref: number[], cur: number[]): string {
  const nr = ref.reduce((a, b) => a + b, 0) || 1;
  const nc = cur.reduce((a, b) => a + b, 0) || 1;
  const shares = labels.map((_, i) => [ref[i]! / nr, cur[i]! / nc] as const);
  const max = Math.max(1e-9, ...shares.flat());
  const w = 320;
  const h = 90;
  const bw = w / Math.max(1, labels.length);
  const bars = shares
    .map(([r, c], i) => {
      const x = i * bw;
      const rh = (r / max) * (h - 4);
      const ch = (c / max) * (h - 4);
      const title = `${esc(labels[i])}: reference ${(100 * r).toFixed(1)}%, current ${(100 * c).toFixed(1)}%`;
      return `<g><title>${title}</title><rect x="${(x + 1).toFixed(1)}" y="${(h - rh).toFixed(1)}" width="${Math.max(1, bw / 2 - 1).toFixed(1)}" height="${rh.toFixed(1)}" class="r"/><rect x="${(x + bw / 2).toFixed(1)}" y="${(h - ch).toFixed(1)}" width="${Math.max(1, bw / 2 - 1).toFixed(1)}" height="${ch.toFixed(1)}" class="c"/></g>`;
    })
    .join('');
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="histogram">${bars}</svg>`;
}

function vectorSection(r: OfflineReport): string {
  const parts: string[] = [];
  if (r.embeddings?.length) {
    parts.push(
      `<h2>Embedding drift</h2><table><tr><th>embedding</th><th>dim</th><th>domain classifier AUC</th><th>MMD² (p)</th><th>drifted components</th><th>mean cosine distance</th><th>verdict</th></tr>${r.embeddings
        .map(
          (e) =>
            `<tr><td>${esc(e.name)}</td><td>${e.dim}</td><td>${fmt(e.domainClassifierAuc)}</td><td>${fmt(e.mmd2)} (${fmt(e.mmdPValue)})</td><td>${fmt(100 * e.driftedComponentsShare)}%</td><td>${fmt(e.meanCosineDistance)}</td><td>${e.drift ? '<span class="bad">drift</span>' : '<span class="ok">no drift</span>'}</td></tr>`,
        )
        .join('')}</table>`,
    );
  }
  if (r.multivariate) {
    const m = r.multivariate;
    parts.push(
      `<h2>Multivariate drift</h2><p>PCA reconstruction error over ${m.columns.length} columns: <b class="${m.alert ? 'bad' : 'ok'}">${fmt(m.error)}</b> (reference band ${fmt(m.lower)} – ${fmt(m.upper)}).</p>`,
    );
  }
  return parts.join('\n');
}

/** A self-contained HTML drift report: summary, per-column verdicts with histograms, data quality. */
export function driftReportHtml(r: OfflineReport, title = 'Warden drift report'): string {
  const rows = r.drift.columns
    .map((c, i) => {
      const h = r.histograms[i]!;
      const verdict = c.skipped ? `<span class="skip">skipped: ${esc(c.skipped)}</span>` : c.drift ? '<span class="bad">drift</span>' : '<span class="ok">no drift</span>';
      const rule = c.scoreKind === 'p_value' ? `p &lt; ${fmt(c.threshold)}` : `≥ ${fmt(c.threshold)}`;
      return `<tr><td><b>${esc(c.column)}</b><br><small>${esc(c.kind)}${c.role === 'prediction' ? ', prediction' : ''}</small></td><td>${esc(c.test)}</td><td>${fmt(c.score)}<br><small>stat ${fmt(c.statistic)}; drift if ${rule}</small></td><td>${verdict}</td><td>${histogramSvg(h.labels, h.reference, h.current)}</td></tr>`;
    })
    .join('\n');
  const failed = r.quality.checks.filter((q) => q.failed);
  const quality = failed.length
    ? `<table><tr><th>column</th><th>check</th><th>value</th><th>threshold</th></tr>${failed
        .map((q) => `<tr><td>${esc(q.column)}</td><td>${esc(q.metric)}</td><td class="bad">${fmt(q.value)}</td><td>${fmt(q.threshold)}</td></tr>`)
        .join('')}</table>`
    : '<p class="ok">All data-quality checks passed.</p>';
  const drifted = r.drift.columns.filter((c) => c.drift).length;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1b1f24}
h1{font-size:1.4rem}table{border-collapse:collapse;margin:1rem 0}
td,th{border-bottom:1px solid #d8dee4;padding:.4rem .6rem;text-align:left;vertical-align:middle}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}.skip{color:#6e7781}
rect.r{fill:#8c959f}rect.c{fill:#0969da}small{color:#57606a}
.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 1em}
</style></head><body>
<h1>${esc(title)}</h1>
<p>Reference ${r.reference.rows.toLocaleString('en-US')} rows · current ${r.current.rows.toLocaleString('en-US')} rows · generated ${esc(r.generatedAt)}</p>
<p><b class="${r.drift.datasetDrift ? 'bad' : 'ok'}">${r.drift.datasetDrift ? 'Dataset drift' : 'No dataset drift'}</b>:
${drifted} of ${r.drift.columns.length} columns drifted (${(100 * r.drift.driftShare).toFixed(0)}% of features; threshold ${(100 * r.drift.datasetDriftShare).toFixed(0)}%).</p>
<p class="legend"><span style="background:#8c959f"></span>reference <span style="background:#0969da"></span>current</p>
<table><tr><th>column</th><th>test</th><th>score</th><th>verdict</th><th>distribution (share per bin)</th></tr>
${rows}
</table>
${vectorSection(r)}
<h2>Data quality (current)</h2>
${quality}
</body></html>
`;
}
