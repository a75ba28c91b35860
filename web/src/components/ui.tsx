import type { ComponentChildren } from 'preact';
import type { ApiError } from '../api.ts';

export function Panel(props: { title: string; id?: string; actions?: ComponentChildren; children: ComponentChildren; wide?: boolean }) {
  const hid = props.id ? `${props.id}-title` : undefined;
  return (
    <section class={props.wide ? 'panel wide' : 'panel'} id={props.id} aria-labelledby={hid}>
      <header class="panel-head">
        <h2 id={hid}>{props.title}</h2>
        {props.actions ? <div class="panel-actions">{props.actions}</div> : null}
      </header>
      {props.children}
    </section>
  );
}

/** One headline figure; `testid` lets the browser tests compare it with the API's number. */
export function Stat(props: { label: string; value: string; hint?: string; tone?: 'ok' | 'warn' | 'bad' | undefined; testid?: string }) {
  return (
    <div class={`stat${props.tone ? ` tone-${props.tone}` : ''}`}>
      <div class="stat-label">{props.label}</div>
      <div class="stat-value" data-testid={props.testid}>
        {props.value}
      </div>
      {props.hint ? <div class="stat-hint">{props.hint}</div> : null}
    </div>
  );
}

export function ErrorNote(props: { error: ApiError | undefined; what?: string }) {
  if (!props.error) return null;
  return (
    <p class="error" role="alert">
      {props.what ? `${props.what}: ` : ''}
      {props.error.message} {props.error.code && props.error.code !== 'NETWORK' ? <code>{props.error.code}</code> : null}
    </p>
  );
}

export function Loading(props: { what?: string }) {
  return (
    <p class="muted" aria-live="polite">
      Loading{props.what ? ` ${props.what}` : ''}…
    </p>
  );
}

export function Empty(props: { children: ComponentChildren }) {
  return <p class="muted empty">{props.children}</p>;
}

export function Badge(props: { tone: 'ok' | 'warn' | 'bad' | 'info' | 'muted'; children: ComponentChildren; title?: string }) {
  return (
    <span class={`badge badge-${props.tone}`} title={props.title}>
      {props.children}
    </span>
  );
}
