import type { ViewProps } from '../app.tsx';

export function DebugView(_props: ViewProps) {
  return <h1>Debug</h1>;
}
