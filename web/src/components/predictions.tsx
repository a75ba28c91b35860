/** What the debug and request views share about the prediction log (`GET /api/v1/predictions`). */
import { useState } from 'preact/hooks';
import { enc } from '../api.ts';
import { navigate } from '../router.ts';
import './predictions.css';

export interface PredictionEvent {
  seq: number;
  requestId: string;
  ts: number;
  model: string;
  /** 0 when the request never resolved to a version. */
  version: number;
  /** `shadow`: a candidate's answer to a mirrored copy, never returned to the caller. */
  status: 'ok' | 'error' | 'shadow';
  latencyMs: number;
  inputs: unknown;
  outputs: unknown;
  /** `WARDEN_CODE: message` for failures; a game-day marker on a served request. */
  error?: string;
  keys?: string[];
  traceId?: string;
  route?: 'stable' | 'candidate';
}

/** The log's `error` is `CODE: message`. */
export function parseError(error: string | undefined): { code: string; message: string } {
  if (!error) return { code: 'none', message: '' };
  const m = /^([A-Z][A-Z0-9_]+): ?([\s\S]*)$/.exec(error);
  return m ? { code: m[1]!, message: m[2]! } : { code: 'unknown', message: error };
}

/**
 * The HTTP status callers got (the traffic route's `totals.errors[].status`): a 5xx means Warden failed, a 4xx
 * that it refused the caller's request; unknown without it.
 */
export function errorKind(status: number | undefined): 'failing' | 'refused' | 'unknown' {
  if (status === undefined) return 'unknown';
  return status >= 500 ? 'failing' : status >= 400 ? 'refused' : 'unknown';
}

/** A drift score or threshold: p-values span many decades, so 3 significant digits. */
export function fmtScore(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1000 || a < 0.001 ? v.toExponential(2) : String(Number(v.toPrecision(3)));
}

/** A search box that opens `#/requests/<id>`. */
export function RequestSearch() {
  const [id, setId] = useState('');
  return (
    <form
      class="request-search"
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        const v = id.trim();
        if (v) navigate(`/requests/${enc(v)}`);
      }}
    >
      <label for="request-search">Request id</label>
      <input id="request-search" type="search" value={id} placeholder="x-request-id" autoComplete="off" onInput={(e) => setId((e.target as HTMLInputElement).value)} />
      <button type="submit">Open</button>
    </form>
  );
}
