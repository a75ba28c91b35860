// Times the API calls the dashboard's executive view makes, against a seeded data directory (seed one with
// `npm run bench:dashboard-seed -- --data-dir DIR`): the deployments, SLOs and alerts, then per deployment its
// traffic (7 and 30 days, hourly; and the last 24 h by minute, as the on-call view reads it), its windows summary
// (7 days, 30 days and the whole year) and each SLO's status. Starts `warden serve --demo` on the directory as a
// child process; each call is timed cold (first) and warm (median of --reps), then the whole first view's calls
// at once, as the view issues them. Prints figures; it is not a timed test.
//   npm run bench:dashboard-api -- --data-dir DIR [--reps 5]
import { parseArgs } from 'node:util';
import { startChild } from '../serving/child.ts';

const { values } = parseArgs({ options: { 'data-dir': { type: 'string' }, reps: { type: 'string', default: '5' } } });
const dataDir = values['data-dir'];
if (!dataDir) {
  process.stderr.write('usage: npm run bench:dashboard-api -- --data-dir DIR [--reps N]\n');
  process.exit(2);
}
const reps = Number(values.reps);
const DAY = 86_400_000;

const started = performance.now();
const { child, url } = await startChild(process.execPath, ['bin/warden.js', 'serve', '--demo', '--port', '0', '--data-dir', dataDir], { WARDEN_LOG_LEVEL: 'info' });
const startMs = performance.now() - started;

async function get(p: string): Promise<{ ms: number; bytes: number; body: unknown }> {
  const t = performance.now();
  const res = await fetch(`${url}${p}`);
  const text = await res.text();
  const ms = performance.now() - t;
  if (!res.ok) throw new Error(`GET ${p} → ${res.status}: ${text.slice(0, 300)}`);
  return { ms, bytes: text.length, body: JSON.parse(text) as unknown };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const now = Date.now();
  const deployments = ((await get('/api/v1/deployments')).body as { deployments: { name: string; stable: { version: number } | null }[] }).deployments;
  const slos = ((await get('/api/v1/slos')).body as { slos: { name: string }[] }).slos;
  const calls: { what: string; path: string }[] = [
    { what: 'list deployments', path: '/api/v1/deployments' },
    { what: 'SLOs', path: '/api/v1/slos' },
    { what: 'alerts', path: '/api/v1/alerts' },
  ];
  for (const d of deployments) {
    const v = d.stable?.version ?? 1;
    calls.push(
      { what: `${d.name} traffic 7 d (hour)`, path: `/api/v1/deployments/${d.name}/traffic?since=${now - 7 * DAY}&until=${now}&step=hour` },
      { what: `${d.name} traffic 30 d (hour)`, path: `/api/v1/deployments/${d.name}/traffic?since=${now - 30 * DAY}&until=${now}&step=hour` },
      { what: `${d.name} traffic 24 h (minute)`, path: `/api/v1/deployments/${d.name}/traffic?since=${now - DAY}&until=${now}&step=minute` },
      { what: `${d.name} windows summary 7 d`, path: `/api/v1/models/${d.name}/versions/${v}/monitoring/windows?summary=true&since=${now - 7 * DAY}&limit=10000` },
      { what: `${d.name} windows summary 30 d`, path: `/api/v1/models/${d.name}/versions/${v}/monitoring/windows?summary=true&since=${now - 30 * DAY}&limit=10000` },
      { what: `${d.name} windows summary 365 d`, path: `/api/v1/models/${d.name}/versions/${v}/monitoring/windows?summary=true&since=${now - 366 * DAY}&limit=10000` },
      { what: `${d.name} version record`, path: `/api/v1/models/${d.name}/versions/${v}` },
    );
  }
  for (const s of slos) calls.push({ what: `SLO ${s.name} status`, path: `/api/v1/slos/${s.name}/status` });

  console.log(`server: warden serve --demo on ${dataDir}, up in ${(startMs / 1000).toFixed(1)} s`);
  console.log('call                                   cold ms  warm ms (median)   answer');
  for (const c of calls) {
    const cold = await get(c.path);
    const warm: number[] = [];
    for (let i = 0; i < reps; i++) warm.push((await get(c.path)).ms);
    const b = cold.body as { points?: unknown[]; windows?: unknown[] };
    const what = b.points ? `${b.points.length} points` : b.windows ? `${b.windows.length} windows` : '';
    console.log(`${c.what.padEnd(38)} ${cold.ms.toFixed(1).padStart(7)}  ${median(warm).toFixed(1).padStart(7)}            ${(cold.bytes / 1024).toFixed(0).padStart(5)} KiB ${what}`);
  }
  // The executive view's first paint needs the deployments, SLOs and alerts, then each card's calls at once.
  const firstView: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await Promise.all([get('/api/v1/deployments'), get('/api/v1/slos'), get('/api/v1/alerts')]);
    await Promise.all(
      deployments.flatMap((d) => {
        const v = d.stable?.version ?? 1;
        return [
          get(`/api/v1/deployments/${d.name}/traffic?since=${now - 7 * DAY}&until=${now}&step=hour`),
          get(`/api/v1/models/${d.name}/versions/${v}/monitoring/windows?summary=true&since=${now - 7 * DAY}&limit=10000`),
          get(`/api/v1/models/${d.name}/versions/${v}`),
          ...slos.map((s) => get(`/api/v1/slos/${s.name}/status`)),
        ];
      }),
    );
    firstView.push(performance.now() - t);
  }
  console.log(`executive view, all calls of the first paint (7 d, as issued by the view): median ${median(firstView).toFixed(0)} ms, max ${Math.max(...firstView).toFixed(0)} ms over ${reps} runs`);
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}
