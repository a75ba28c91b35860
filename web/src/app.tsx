import type { ComponentType } from 'preact';
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import { ApiError, api, onKeyRefused, setStoredKey, storedKey } from './api.ts';
import { RefreshContext, useInterval } from './refresh.ts';
import { href, useRoute, type Route } from './router.ts';
import { SessionContext, type Session } from './session.ts';
import { ThemeContext, applyTheme, initialTheme, type Theme } from './theme.ts';
import { ErrorNote, Loading } from './components/ui.tsx';
import { ExecutiveView } from './views/executive.tsx';
import { OnCallView } from './views/oncall.tsx';
import { DebugView } from './views/debug.tsx';
import { RequestView } from './views/request.tsx';
import { RegistryView } from './views/registry.tsx';
import { DeliveryView } from './views/delivery.tsx';
import { LabelingView } from './views/labeling.tsx';
import { CardView } from './views/card.tsx';

export interface ViewProps {
  route: Route;
}

interface ViewDef {
  path: string;
  title: string;
  component: ComponentType<ViewProps>;
  /** Shown in the navigation bar. */
  nav: boolean;
}

export const VIEWS: ViewDef[] = [
  { path: '/', title: 'Executive', component: ExecutiveView, nav: true },
  { path: '/oncall', title: 'On-call', component: OnCallView, nav: true },
  { path: '/debug', title: 'Debug', component: DebugView, nav: true },
  { path: '/registry', title: 'Registry', component: RegistryView, nav: true },
  { path: '/delivery', title: 'Delivery', component: DeliveryView, nav: true },
  { path: '/labeling', title: 'Labeling', component: LabelingView, nav: true },
  { path: '/requests', title: 'Request', component: RequestView, nav: false },
  { path: '/card', title: 'Model card', component: CardView, nav: false },
];

function viewFor(path: string): ViewDef | undefined {
  return VIEWS.find((v) => v.path === path) ?? VIEWS.find((v) => v.path !== '/' && path.startsWith(`${v.path}/`));
}

const REFRESH_OPTIONS = [
  { ms: 0, label: 'off' },
  { ms: 10_000, label: '10 s' },
  { ms: 30_000, label: '30 s' },
  { ms: 60_000, label: '1 min' },
];

export function App() {
  const [theme, setTheme] = useState<Theme>(initialTheme);
  const [session, setSession] = useState<Session | null>(null);
  const [checking, setChecking] = useState(true);
  const [signInError, setSignInError] = useState<ApiError | undefined>();
  // A layout effect: the theme must be on <html> before the charts' effects read its colours (children's effects run first).
  useLayoutEffect(() => applyTheme(theme), [theme]);

  const signIn = async (key: string | null) => {
    setChecking(true);
    try {
      const s = await api<Session>('/api/v1/session', key ? { key } : {});
      if (key) setStoredKey(key);
      setSession(s);
      setSignInError(undefined);
    } catch (e) {
      if (key) setStoredKey(null);
      setSession(null);
      // A first visit without a key to a server that needs one is not an error worth showing.
      setSignInError(key || (e instanceof ApiError && e.status !== 401) ? (e as ApiError) : undefined);
    } finally {
      setChecking(false);
    }
  };
  useEffect(() => void signIn(storedKey()), []);
  // A key revoked while signed in: back to the sign-in page with the server's reason, not an error in every panel.
  useEffect(() => {
    onKeyRefused((e) => {
      setStoredKey(null);
      setSession(null);
      setSignInError(new ApiError(e.status, e.code, `your key was refused (${e.message}); sign in with a valid key`));
    });
    return () => onKeyRefused(undefined);
  }, []);
  const signOut = () => {
    setStoredKey(null);
    setSession(null);
    void signIn(null);
  };

  return (
    <ThemeContext.Provider value={theme}>
      {checking && !session ? (
        <main class="signin" id="main">
          <Loading what="session" />
        </main>
      ) : !session ? (
        <SignIn onKey={(k) => void signIn(k)} error={signInError} />
      ) : (
        <SessionContext.Provider value={session}>
          <Shell session={session} theme={theme} setTheme={setTheme} onSignOut={signOut} />
        </SessionContext.Provider>
      )}
    </ThemeContext.Provider>
  );
}

function SignIn(props: { onKey: (key: string) => void; error: ApiError | undefined }) {
  const [key, setKey] = useState('');
  return (
    <main class="signin" id="main">
      <form
        class="signin-box"
        onSubmit={(e) => {
          e.preventDefault();
          if (key.trim()) props.onKey(key.trim());
        }}
      >
        <h1>Warden</h1>
        <p>Sign in with an API key. It is kept in this tab only (session storage) and sent as an authorization header.</p>
        <label for="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autoComplete="off" value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} autoFocus />
        <button type="submit" class="primary">
          Sign in
        </button>
        <ErrorNote error={props.error} what="Sign-in failed" />
        <p class="muted">
          Make a key with <code>warden keys create --name you --role viewer</code>.
        </p>
      </form>
    </main>
  );
}

function Shell(props: { session: Session; theme: Theme; setTheme: (t: Theme) => void; onSignOut: () => void }) {
  const route = useRoute();
  const [tick, setTick] = useState(0);
  const [refreshMs, setRefreshMs] = useState(() => Number(localStorage.getItem('warden.refreshMs') ?? 30_000));
  useInterval(() => setTick((t) => t + 1), refreshMs > 0 ? refreshMs : null);
  const view = viewFor(route.path);
  useEffect(() => {
    document.title = `${view?.title ?? 'Not found'} · Warden`;
  }, [view]);
  const { session } = props;
  return (
    <RefreshContext.Provider value={tick}>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Warden</span>
        <nav aria-label="Views">
          {VIEWS.filter((v) => v.nav).map((v) => (
            <a key={v.path} href={href(v.path)} aria-current={view === v ? 'page' : undefined}>
              {v.title}
            </a>
          ))}
        </nav>
        <div class="top-tools">
          <label>
            <span class="sr-only">Auto-refresh</span>
            <select
              aria-label="Auto-refresh"
              value={String(refreshMs)}
              onChange={(e) => {
                const ms = Number((e.target as HTMLSelectElement).value);
                localStorage.setItem('warden.refreshMs', String(ms));
                setRefreshMs(ms);
              }}
            >
              {REFRESH_OPTIONS.map((o) => (
                <option key={o.ms} value={String(o.ms)}>
                  refresh {o.label}
                </option>
              ))}
            </select>
          </label>
          <button type="button" onClick={() => setTick((t) => t + 1)} title="Reload every panel now">
            Refresh
          </button>
          <button type="button" onClick={() => props.setTheme(props.theme === 'dark' ? 'light' : 'dark')} aria-label={`Switch to ${props.theme === 'dark' ? 'light' : 'dark'} theme`}>
            {props.theme === 'dark' ? 'Light' : 'Dark'}
          </button>
          <span class="who" data-testid="session-role">
            {session.key ? `${session.key.name} · ${session.role}` : session.authRequired ? session.role : 'auth off'}
          </span>
          {session.key ? (
            <button type="button" onClick={props.onSignOut}>
              Sign out
            </button>
          ) : null}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {view ? (
          <view.component route={route} />
        ) : (
          <section class="panel">
            <h1>Not found</h1>
            <p>
              No view at <code>{route.path}</code>. <a href="#/">Go to the executive view</a>.
            </p>
          </section>
        )}
      </main>
    </RefreshContext.Provider>
  );
}
