import { useContext, useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { ThemeContext } from '../theme.ts';

export interface Series {
  label: string;
  values: (number | null)[];
  /** CSS variable name of the colour, e.g. `--c1`. */
  color?: string;
  /** Value formatting in the legend. */
  fmt?: (v: number) => string;
  scale?: string;
  dash?: number[];
  /** Draw a dot at every value: a value between two empty buckets has no line to show it otherwise. */
  points?: boolean;
}

export interface Marker {
  ts: number;
  label: string;
  kind?: string;
}

/**
 * A time series chart (uPlot): `ts` in epoch ms, one line per series, optional vertical markers (deploys, rollout
 * steps) on the same time axis. The canvas has a text alternative: `summary` is read by screen readers.
 */
export function TimeChart(props: { ts: number[]; series: Series[]; height?: number; summary: string; markers?: Marker[]; yLabel?: string; testid?: string }) {
  const el = useRef<HTMLDivElement>(null);
  const theme = useContext(ThemeContext);
  useEffect(() => {
    const root = el.current;
    if (!root) return;
    const css = getComputedStyle(root);
    const color = (v: string | undefined, i: number) => css.getPropertyValue(v ?? `--c${(i % 6) + 1}`).trim() || '#888';
    const axis = css.getPropertyValue('--fg-muted').trim();
    const grid = css.getPropertyValue('--grid').trim();
    const markers = props.markers ?? [];
    const markColor = css.getPropertyValue('--mark').trim();
    const opts: uPlot.Options = {
      width: Math.max(200, root.clientWidth),
      height: props.height ?? 180,
      legend: { show: true },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 60, ...(props.yLabel ? { label: props.yLabel } : {}) },
      ],
      series: [
        { value: (_u, v) => (v === null ? '—' : new Date(v * 1000).toISOString().slice(0, 16).replace('T', ' ')) },
        ...props.series.map((s, i) => ({
          label: s.label,
          stroke: color(s.color, i),
          width: 1.5,
          spanGaps: false,
          ...(s.scale ? { scale: s.scale } : {}),
          ...(s.dash ? { dash: s.dash } : {}),
          ...(s.points ? { points: { show: true, size: 5 } } : {}),
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '—' : s.fmt ? s.fmt(v) : String(Math.round(v * 1000) / 1000)),
        })),
      ],
      hooks: {
        draw: [
          (u) => {
            if (markers.length === 0) return;
            const ctx = u.ctx;
            ctx.save();
            ctx.strokeStyle = markColor;
            ctx.fillStyle = markColor;
            ctx.lineWidth = 1.5 * devicePixelRatio;
            ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
            ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
            for (const m of markers) {
              const x = u.valToPos(m.ts / 1000, 'x', true);
              if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
              ctx.beginPath();
              ctx.moveTo(x, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + u.bbox.height);
              ctx.stroke();
              ctx.fillText(m.label, x + 3 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
            }
            ctx.restore();
          },
        ],
      },
    };
    const data: uPlot.AlignedData = [props.ts.map((t) => t / 1000), ...props.series.map((s) => s.values)];
    const plot = new uPlot(opts, data, root);
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(200, root.clientWidth), height: props.height ?? 180 }));
    ro.observe(root);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [props.ts, props.series, props.markers, theme, props.height]);
  return (
    <figure class="chart" data-testid={props.testid}>
      <div ref={el} role="img" aria-label={props.summary} />
      <figcaption class="sr-only">{props.summary}</figcaption>
    </figure>
  );
}

/**
 * Reference against current histogram as paired horizontal bars in plain HTML (no canvas): bins are categories,
 * so bars read better than a line, and every value is text a test and a screen reader can read.
 */
export function HistogramBars(props: { labels: string[]; reference: number[]; current: number[]; caption: string }) {
  const norm = (xs: number[]) => {
    const total = xs.reduce((a, b) => a + b, 0);
    return xs.map((x) => (total > 0 ? x / total : 0));
  };
  const r = norm(props.reference);
  const c = norm(props.current);
  const max = Math.max(1e-9, ...r, ...c);
  return (
    <table class="hist">
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">bin</th>
          <th scope="col">reference</th>
          <th scope="col">current</th>
        </tr>
      </thead>
      <tbody>
        {props.labels.map((l, i) => (
          <tr key={l}>
            <th scope="row">{l}</th>
            <td>
              <meter class="bar ref" min={0} max={max} value={r[i] ?? 0} aria-label={`reference ${l}`} />
              <span class="num">{((r[i] ?? 0) * 100).toFixed(1)} %</span>
            </td>
            <td>
              <meter class="bar cur" min={0} max={max} value={c[i] ?? 0} aria-label={`current ${l}`} />
              <span class="num">{((c[i] ?? 0) * 100).toFixed(1)} %</span>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
