import { useEffect, useRef, useState } from 'preact/hooks';
import type { ViewProps } from '../app.tsx';
import { ApiError, api, enc, query } from '../api.ts';
import { fmtAgo, fmtNum, fmtPct, fmtTime } from '../format.ts';
import { useApi, useInterval } from '../refresh.ts';
import { href, navigate } from '../router.ts';
import { useCan, useSession } from '../session.ts';
import { Badge, Empty, ErrorNote, Loading, Panel, Stat } from '../components/ui.tsx';
import './labeling.css';

/** `GET /api/v1/review/items` answers at most this many items per page (own claims are looked for in one page). */
const PAGE = 1000;
/** Open items shown in the table below the queue. */
const SHOWN = 10;
/** Open items read per page when looking for the next one to claim: usually the first is free. */
const CLAIM_PAGE = 50;

export interface ReviewItem {
  id: number;
  model: string;
  version: number;
  requestId: string;
  row: number;
  inputs: unknown;
  prediction: unknown;
  reason: 'low_confidence' | 'active_learning';
  confidence: number;
  createdAt: number;
  status: 'open' | 'claimed' | 'labelled';
  claimedBy?: string;
  claimedAt?: number;
  /** When the claim lapses (the server's claimedAt + claim TTL); null when unclaimed or labelled. */
  claimExpiresAt: number | null;
  label?: unknown;
  labelledAt?: number;
  labelledBy?: string;
}

interface ItemPage {
  items: ReviewItem[];
  nextCursor: string | null;
}

interface Policy {
  model: string;
  confidenceThreshold?: number;
  sampleRate?: number;
  output?: string;
  maxQueue: number;
}

interface LabelStats {
  total: number;
  matched: number;
  bySource: Record<string, number>;
}

interface LabelOutcome {
  item: ReviewItem;
  forwarded: boolean;
  forwardError?: string;
}

type Note = { tone: 'ok' | 'warn' | 'bad' | 'info'; text: string };

/** One model's queue from `GET /api/v1/review/queues`. */
interface QueueRow {
  model: string;
  policy: Policy | null;
  open: number;
  claimed: number;
  labelled: number;
  oldestOpenAt: number | null;
}

interface Queues {
  claimTtlMs: number;
  queues: QueueRow[];
}

const ttlText = (ms: number) => `${fmtNum(ms / 60_000)} min`;

function describePolicy(p: Policy): string {
  const parts: string[] = [];
  if (p.confidenceThreshold !== undefined) parts.push(`confidence below ${fmtPct(p.confidenceThreshold, 0)}`);
  if (p.sampleRate) parts.push(`${fmtPct(p.sampleRate, p.sampleRate < 0.01 ? 2 : 1)} active-learning sample`);
  return `${parts.join(' + ')}; at most ${fmtNum(p.maxQueue)} unlabelled`;
}

const REASONS: Record<ReviewItem['reason'], { text: string; tone: 'warn' | 'info' }> = {
  low_confidence: { text: 'low confidence', tone: 'warn' },
  active_learning: { text: 'active-learning sample', tone: 'info' },
};

function ReasonBadge(props: { reason: ReviewItem['reason'] }) {
  const r = REASONS[props.reason] ?? { text: props.reason, tone: 'info' as const };
  return <Badge tone={r.tone}>{r.text}</Badge>;
}

export function LabelingView({ route }: ViewProps) {
  const queues = useApi<Queues>('/api/v1/review/queues');
  const rows = queues.data?.queues;
  const asked = route.params.get('model') ?? '';
  const withPolicy = rows?.filter((q) => q.policy) ?? [];
  // Models whose policy is gone keep their unlabelled items: they stay selectable so those can be labelled.
  const leftOver = rows?.filter((q) => !q.policy && q.open + q.claimed > 0) ?? [];
  const model = asked || withPolicy[0]?.model || leftOver[0]?.model || '';
  const row = rows?.find((q) => q.model === model);
  const policy = row?.policy ?? null;
  // Only for the empty state's "(n models without one)": the queues route lists models with a policy or items.
  const models = useApi<{ models: { name: string }[] }>(rows && !model ? '/api/v1/models' : null);
  const without = models.data ? models.data.models.filter((m) => !rows?.some((q) => q.model === m.name && q.policy)).length : 0;
  // A model named in the link stays selectable even without a policy: its earlier items may still be queued.
  const options = rows ? [...withPolicy, ...leftOver].map((q) => q.model) : [];
  if (asked && rows && !options.includes(asked)) options.push(asked);

  return (
    <>
      <div class="view-head">
        <h1>Labeling</h1>
        {options.length > 0 ? (
          <label class="row">
            Model
            <select value={model} onChange={(e) => navigate('/labeling', { model: (e.target as HTMLSelectElement).value })} data-testid="labeling-model">
              {options.map((n) => (
                <option key={n} value={n}>
                  {n}
                  {withPolicy.some((q) => q.model === n) ? '' : ' (no policy)'}
                </option>
              ))}
            </select>
          </label>
        ) : null}
        {policy ? (
          <span class="muted" data-testid="labeling-policy">
            Policy: {describePolicy(policy)}
          </span>
        ) : null}
      </div>
      {queues.error ? (
        <Panel title="Review queues" wide>
          <ErrorNote error={queues.error} what="Cannot read the review queues (GET /api/v1/review/queues)" />
        </Panel>
      ) : !queues.data ? (
        <Panel title="Review queues" wide>
          <Loading what="review queues" />
        </Panel>
      ) : !model ? (
        <Panel title="Review queues" wide>
          <Empty>
            No model has a review policy, so nothing is queued for people to label{without ? ` (${fmtNum(without)} models without one)` : ''}. A deployer sets one with{' '}
            <code>warden review policy &lt;model&gt; --confidence 0.7</code> or <code>PUT /api/v1/models/&lt;model&gt;/review-policy</code>; it works for binary
            classifiers (see docs/review.md).
          </Empty>
        </Panel>
      ) : (
        <Queue
          key={model}
          model={model}
          row={row ?? { model, policy: null, open: 0, claimed: 0, labelled: 0, oldestOpenAt: null }}
          ttlMs={queues.data.claimTtlMs}
          reloadQueues={queues.reload}
        />
      )}
    </>
  );
}

function Queue(props: { model: string; row: QueueRow; ttlMs: number; reloadQueues: () => void }) {
  const { model, row, ttlMs } = props;
  const canLabel = useCan('predictor');
  const me = useSession().key?.name;
  const open = useApi<ItemPage>(`/api/v1/review/items${query({ model, status: 'open', limit: SHOWN })}`);
  // Only for "n by you": claims are few (each lapses after the TTL), so one page holds them.
  const claimed = useApi<ItemPage>(me ? `/api/v1/review/items${query({ model, status: 'claimed', limit: PAGE })}` : null);
  const stats = useApi<LabelStats>(`/api/v1/labels/stats${query({ model })}`);
  const reload = () => {
    props.reloadQueues();
    open.reload();
    claimed.reload();
    stats.reload();
  };
  const mine = me ? claimed.data?.items.filter((i) => i.claimedBy === me).length : undefined;
  const ttl = ttlText(ttlMs);

  return (
    <>
      <Panel title={`Queue of ${model}`} id="queue" wide>
        <div class="stats">
          <Stat label="Open" value={fmtNum(row.open)} hint="unlabelled, nobody holds a claim" testid="queue-open" />
          <Stat
            label="Claimed"
            value={fmtNum(row.claimed)}
            hint={mine !== undefined && mine > 0 ? `${fmtNum(mine)} by you; a claim holds ${ttl}` : `a claim holds ${ttl}`}
            testid="queue-claimed"
          />
          <Stat label="Labelled" value={fmtNum(row.labelled)} hint="by reviewers, on the item" testid="queue-labelled" />
          <Stat
            label="Human labels"
            value={stats.data ? fmtNum(stats.data.bySource.human ?? 0) : '—'}
            hint="in the labels store: feed live accuracy"
            testid="human-labels"
          />
          <Stat label="Oldest open" value={row.oldestOpenAt !== null ? fmtAgo(row.oldestOpenAt) : '—'} hint="age of the next item" testid="queue-oldest" />
        </div>
        <ErrorNote error={open.error ?? claimed.error} what="Cannot read the review queue's items" />
        <ErrorNote error={stats.error} what="Cannot read the label counters" />
        {!row.policy ? <p class="muted">This model has no review policy now: no new items are queued; the ones below were queued before.</p> : null}
      </Panel>
      {canLabel ? <Reviewer model={model} ttlMs={ttlMs} onChange={reload} /> : <ReadOnlyNote />}
      <Panel title="Next open items" id="open-items" wide>
        {open.data ? <ItemTable items={open.data.items} total={row.open} /> : open.error ? null : <Loading what="open items" />}
      </Panel>
    </>
  );
}

function ReadOnlyNote() {
  const s = useSession();
  return (
    <Panel title="Review" id="review" wide>
      <p data-testid="labeling-readonly">
        Your key{s.key ? ` (${s.key.name})` : ''} has the <strong>{s.role}</strong> role: you can read the queue, but claiming and labelling items need a predictor
        key. Sign out and sign in with one to review.
      </p>
    </Panel>
  );
}

function ItemTable(props: { items: ReviewItem[]; total: number }) {
  if (props.items.length === 0) return <Empty>No open items: every queued prediction is labelled or claimed. New low-confidence predictions appear here as they are served.</Empty>;
  return (
    <table data-testid="open-items">
      <caption>
        Oldest first; {fmtNum(props.items.length)} of {fmtNum(Math.max(props.total, props.items.length))} shown
      </caption>
      <thead>
        <tr>
          <th scope="col">Item</th>
          <th scope="col">Reason</th>
          <th scope="col" class="num">
            Confidence
          </th>
          <th scope="col">Version</th>
          <th scope="col">Request</th>
          <th scope="col">Queued</th>
        </tr>
      </thead>
      <tbody>
        {props.items.map((i) => (
          <tr key={i.id}>
            <td>#{i.id}</td>
            <td>
              <ReasonBadge reason={i.reason} />
            </td>
            <td class="num">{fmtPct(i.confidence)}</td>
            <td>v{i.version}</td>
            <td>
              <a href={href(`/requests/${enc(i.requestId)}`)}>{i.requestId}</a> row {i.row}
            </td>
            <td title={fmtTime(i.createdAt)}>{fmtAgo(i.createdAt)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The probability of y = 1 the item was queued for: the policy's output, else its only numeric output. */
function probabilityOf(item: ReviewItem): { name: string; p: number } | undefined {
  if (item.prediction === null || typeof item.prediction !== 'object') return undefined;
  for (const [name, raw] of Object.entries(item.prediction as Record<string, unknown>)) {
    const v = Array.isArray(raw) && raw.length === 1 ? raw[0] : raw;
    if (typeof v === 'number' && v >= 0 && v <= 1) return { name, p: v };
  }
  return undefined;
}

function fmtValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  if (Array.isArray(v)) return v.map(fmtValue).join(', ');
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function isTyping(t: EventTarget | null): boolean {
  const el = t as HTMLElement | null;
  if (!el || !el.tagName) return false;
  return el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName);
}

function mmss(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** A value typed in the field: a number or true/false when it reads as one, else the text. */
function parseValue(raw: string): number | boolean | string {
  const t = raw.trim();
  if (t === 'true' || t === 'false') return t === 'true';
  if (t !== '' && Number.isFinite(Number(t))) return Number(t);
  return t;
}

type Phase = 'idle' | 'claiming' | 'reviewing' | 'saving' | 'empty';

function Reviewer(props: { model: string; ttlMs: number; onChange: () => void }) {
  const { model } = props;
  const session = useSession();
  const [typedName, setTypedName] = useState(() => localStorage.getItem('warden.reviewer') ?? '');
  // With keys the reviewer is the key's name (what the audit trail should say); with auth off, a name typed here.
  const reviewer = session.key?.name ?? typedName.trim();
  const [phase, setPhase] = useState<Phase>('idle');
  const [item, setItem] = useState<ReviewItem | undefined>();
  const [notes, setNotes] = useState<Note[]>([]);
  const [error, setError] = useState<ApiError | undefined>();
  const [retry, setRetry] = useState<{ item: ReviewItem; value: unknown } | undefined>();
  const [done, setDone] = useState(0);
  const [now, setNow] = useState(Date.now());
  const [typed, setTyped] = useState('');
  const skipped = useRef(new Set<number>());
  const busy = useRef(false);
  useInterval(() => setNow(Date.now()), item ? 1000 : null);

  const note = (n: Note) => setNotes((ns) => [n, ...ns].slice(0, 4));

  /** Claims the oldest item this reviewer may take: its own live claims first (a reload), then open ones, minus skipped. */
  const claimNext = async () => {
    if (busy.current) return;
    if (!reviewer) {
      note({ tone: 'bad', text: 'Type your reviewer name first: labels record who gave them.' });
      return;
    }
    busy.current = true;
    setPhase('claiming');
    setError(undefined);
    setRetry(undefined);
    try {
      /** Claims `c`; false when someone else got it first (409): it is then left to them. */
      const tryClaim = async (c: ReviewItem): Promise<boolean> => {
        try {
          const claimed = await api<ReviewItem>(`/api/v1/review/items/${c.id}/claim`, { method: 'POST', body: { reviewer } });
          setItem(claimed);
          setNow(Date.now());
          setTyped('');
          setPhase('reviewing');
          props.onChange();
          return true;
        } catch (e) {
          if (!(e instanceof ApiError) || e.status !== 409) throw e;
          skipped.current.add(c.id);
          note({ tone: 'warn', text: `Item #${c.id} was taken by someone else (${e.message}); moved to the next.` });
          return false;
        }
      };
      const mine = await api<ItemPage>(`/api/v1/review/items${query({ model, status: 'claimed', limit: PAGE })}`);
      for (const c of mine.items) if (c.claimedBy === reviewer && !skipped.current.has(c.id) && (await tryClaim(c))) return;
      // Open items page by page (skipped items whose claim lapsed come back as open: they are passed over).
      let after: string | undefined;
      for (let page = 0; page < 20; page++) {
        const open = await api<ItemPage>(`/api/v1/review/items${query({ model, status: 'open', limit: CLAIM_PAGE, after })}`);
        for (const c of open.items) if (!skipped.current.has(c.id) && (await tryClaim(c))) return;
        if (open.items.length < CLAIM_PAGE || !open.nextCursor) break;
        after = open.nextCursor;
      }
      setItem(undefined);
      setPhase('empty');
      props.onChange();
    } catch (e) {
      setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e)));
      setPhase(item ? 'reviewing' : 'idle');
    } finally {
      busy.current = false;
    }
  };

  const submit = async (target: ReviewItem, value: unknown) => {
    if (busy.current) return;
    busy.current = true;
    setPhase('saving');
    setError(undefined);
    let next = false;
    try {
      const out = await api<LabelOutcome>(`/api/v1/review/items/${target.id}/label`, { method: 'POST', body: { value, reviewer } });
      if (out.forwarded) {
        setDone((d) => d + 1);
        setRetry(undefined);
        note({ tone: 'ok', text: `Labelled #${target.id} as ${fmtValue(value)}; it is in the labels store as a human label.` });
        next = true;
      } else {
        // The label is kept on the item; sending the same value again retries the forward (docs/review.md).
        setRetry({ item: target, value });
        note({ tone: 'bad', text: `Labelled #${target.id} as ${fmtValue(value)}, but it did not reach the labels store: ${out.forwardError ?? 'unknown error'}. Press "Retry forwarding".` });
        setPhase('reviewing');
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        skipped.current.add(target.id);
        note({ tone: 'warn', text: `Item #${target.id} could not be labelled: ${e.message}. Moved to the next.` });
        next = true;
      } else {
        setError(e instanceof ApiError ? e : new ApiError(0, 'CLIENT', String(e)));
        setPhase('reviewing');
      }
    } finally {
      busy.current = false;
    }
    if (next) await claimNext();
  };

  const skip = async () => {
    if (!item || busy.current) return;
    // Skipping keeps the claim (it lapses after the claim TTL): the item is not handed straight back to someone else.
    skipped.current.add(item.id);
    note({ tone: 'info', text: `Skipped #${item.id}; it stays claimed by you until its claim expires.` });
    await claimNext();
  };

  const prob = item ? probabilityOf(item) : undefined;
  const binary = prob !== undefined;

  const onKey = useRef<(e: KeyboardEvent) => void>(() => {});
  onKey.current = (e: KeyboardEvent) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) return;
    const k = e.key.toLowerCase();
    if (phase === 'reviewing' && item) {
      if (binary && (k === '1' || k === 'y')) void submit(item, 1);
      else if (binary && (k === '0' || k === 'n')) void submit(item, 0);
      else if (k === 's') void skip();
      else return;
      e.preventDefault();
    } else if ((phase === 'idle' || phase === 'empty') && k === 'c') {
      e.preventDefault();
      void claimNext();
    }
  };
  useEffect(() => {
    const h = (e: KeyboardEvent) => onKey.current(e);
    document.addEventListener('keydown', h);
    return () => document.removeEventListener('keydown', h);
  }, []);

  const expiresAt = item?.claimExpiresAt ?? undefined;
  const left = expiresAt !== undefined ? expiresAt - now : undefined;
  const working = phase === 'claiming' || phase === 'saving';

  return (
    <Panel
      title="Review"
      id="review"
      wide
      actions={
        <span class="muted" data-testid="labelled-this-session">
          {fmtNum(done)} labelled in this session
        </span>
      }
    >
      {!session.key ? (
        <p class="row">
          <label for="reviewer-name">Reviewer name</label>
          <input
            id="reviewer-name"
            value={typedName}
            maxLength={128}
            autoComplete="off"
            onInput={(e) => {
              const v = (e.target as HTMLInputElement).value;
              setTypedName(v);
              localStorage.setItem('warden.reviewer', v);
            }}
          />
          <span class="muted">Auth is off, so no key names you: labels record this name.</span>
        </p>
      ) : null}
      <div class="lab-notes" aria-live="polite" data-testid="lab-notes">
        {notes.map((n, i) => (
          <p key={`${i}-${n.text}`} class={`lab-note lab-note-${n.tone}`}>
            {n.text}
          </p>
        ))}
      </div>
      <ErrorNote error={error} what="The review call failed" />
      {!item || phase === 'empty' ? (
        <div class="lab-start">
          {phase === 'empty' ? (
            <p data-testid="lab-empty">
              {skipped.current.size > 0
                ? `Nothing left to claim in ${model}'s queue apart from the ${fmtNum(skipped.current.size)} items you skipped or others hold.`
                : `Nothing to claim in ${model}'s queue: every item is labelled or claimed by someone else. New low-confidence predictions are queued as they are served.`}
            </p>
          ) : (
            <p>Claim the oldest open item; after each label the next one is claimed for you.</p>
          )}
          <div class="row">
            <button type="button" class="primary" onClick={() => void claimNext()} disabled={working || !reviewer} data-testid="claim-next">
              {phase === 'claiming' ? 'Claiming…' : phase === 'empty' ? 'Check again' : 'Claim next item'} <kbd>c</kbd>
            </button>
            {phase === 'empty' && skipped.current.size > 0 ? (
              <button
                type="button"
                onClick={() => {
                  skipped.current.clear();
                  void claimNext();
                }}
              >
                Include skipped items
              </button>
            ) : null}
          </div>
        </div>
      ) : (
        <ItemCard
          item={item}
          prob={prob}
          left={left}
          ttlMs={props.ttlMs}
          working={working}
          binary={binary}
          typed={typed}
          setTyped={setTyped}
          retry={retry?.item.id === item.id ? () => void submit(retry.item, retry.value) : undefined}
          onLabel={(v) => void submit(item, v)}
          onSkip={() => void skip()}
          onRenew={() => {
            skipped.current.delete(item.id);
            void (async () => {
              try {
                setItem(await api<ReviewItem>(`/api/v1/review/items/${item.id}/claim`, { method: 'POST', body: { reviewer } }));
                setNow(Date.now());
              } catch (e) {
                if (e instanceof ApiError && e.status === 409) {
                  note({ tone: 'warn', text: `Item #${item.id} is no longer yours: ${e.message}. Moved to the next.` });
                  skipped.current.add(item.id);
                  void claimNext();
                } else setError(e as ApiError);
              }
            })();
          }}
        />
      )}
    </Panel>
  );
}

function ItemCard(props: {
  item: ReviewItem;
  prob: { name: string; p: number } | undefined;
  left: number | undefined;
  ttlMs: number;
  working: boolean;
  binary: boolean;
  typed: string;
  setTyped: (v: string) => void;
  retry: (() => void) | undefined;
  onLabel: (v: unknown) => void;
  onSkip: () => void;
  onRenew: () => void;
}) {
  const { item, prob, left } = props;
  const inputs = item.inputs !== null && typeof item.inputs === 'object' && !Array.isArray(item.inputs) ? Object.entries(item.inputs as Record<string, unknown>) : undefined;
  const outputs = item.prediction !== null && typeof item.prediction === 'object' ? Object.entries(item.prediction as Record<string, unknown>) : [];
  const expired = left !== undefined && left <= 0;
  const predicted = prob ? (prob.p >= 0.5 ? 1 : 0) : undefined;
  const first = useRef<HTMLButtonElement>(null);
  // Focus follows the new item so Tab starts from its buttons; the keys work wherever focus is (outside fields).
  useEffect(() => first.current?.focus(), [item.id]);

  return (
    <div class="lab-item" data-testid="current-item" data-item-id={item.id}>
      <div class="lab-item-head">
        <h3>
          Item <span data-testid="current-item-id">#{item.id}</span>
        </h3>
        <ReasonBadge reason={item.reason} />
        <span class="muted">
          {item.model} v{item.version} · request <a href={href(`/requests/${enc(item.requestId)}`)}>{item.requestId}</a> row {item.row} · queued {fmtAgo(item.createdAt)}
        </span>
        <span class={`lab-expiry${expired ? ' lab-expiry-bad' : left !== undefined && left < 60_000 ? ' lab-expiry-warn' : ''}`} data-testid="claim-expiry" role="timer">
          {left === undefined ? 'claim time unknown' : expired ? 'Your claim expired: label it now if nobody else claimed it, or renew' : `Your claim expires in ${mmss(left)}`}
        </span>
        <button type="button" onClick={props.onRenew} disabled={props.working} data-testid="renew-claim">
          Renew claim
        </button>
      </div>
      <div class="lab-item-body">
        <div>
          <h4>Inputs</h4>
          {inputs ? (
            <table class="lab-inputs" data-testid="item-inputs">
              <thead>
                <tr>
                  <th scope="col">Feature</th>
                  <th scope="col" class="num">
                    Value
                  </th>
                </tr>
              </thead>
              <tbody>
                {inputs.map(([k, v]) => (
                  <tr key={k}>
                    <th scope="row">{k}</th>
                    <td class="num">{fmtValue(v)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <pre>{JSON.stringify(item.inputs, null, 2)}</pre>
          )}
        </div>
        <div>
          <h4>What the model said</h4>
          <dl class="lab-pred">
            {outputs.map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd data-testid={`item-output-${k}`}>{fmtValue(v)}</dd>
              </div>
            ))}
            {prob ? (
              <div>
                <dt>predicted class</dt>
                <dd data-testid="item-predicted">
                  {predicted} (P(y = 1) = {fmtPct(prob.p)})
                </dd>
              </div>
            ) : null}
            <div>
              <dt>confidence</dt>
              <dd data-testid="item-confidence">{fmtPct(item.confidence)}</dd>
            </div>
          </dl>
          <h4>Your label</h4>
          {props.retry ? (
            <p>
              <button type="button" class="primary" onClick={props.retry} disabled={props.working}>
                Retry forwarding
              </button>
            </p>
          ) : null}
          {props.binary ? (
            <div class="lab-keys">
              <button type="button" class="primary lab-label" ref={first} onClick={() => props.onLabel(1)} disabled={props.working} data-testid="label-1">
                <kbd>1</kbd> or <kbd>y</kbd> — label 1 (positive)
              </button>
              <button type="button" class="primary lab-label" onClick={() => props.onLabel(0)} disabled={props.working} data-testid="label-0">
                <kbd>0</kbd> or <kbd>n</kbd> — label 0 (negative)
              </button>
              <button type="button" onClick={props.onSkip} disabled={props.working} data-testid="skip">
                <kbd>s</kbd> skip
              </button>
            </div>
          ) : (
            <form
              class="row"
              onSubmit={(e) => {
                e.preventDefault();
                if (props.typed.trim()) props.onLabel(parseValue(props.typed));
              }}
            >
              <label for="label-value">Label value</label>
              <input id="label-value" value={props.typed} onInput={(e) => props.setTyped((e.target as HTMLInputElement).value)} autoComplete="off" />
              <button type="submit" class="primary" disabled={props.working || !props.typed.trim()} data-testid="label-submit">
                Label <kbd>Enter</kbd>
              </button>
              <button type="button" ref={first} onClick={props.onSkip} disabled={props.working} data-testid="skip">
                <kbd>s</kbd> skip
              </button>
            </form>
          )}
          <p class="muted lab-help">
            Keys work anywhere on the page except while typing in a field. Skipping keeps your claim until it expires ({ttlText(props.ttlMs)}), so the
            item is not handed straight to someone else.
          </p>
        </div>
      </div>
    </div>
  );
}
