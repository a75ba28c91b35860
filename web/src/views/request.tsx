import type { ViewProps } from '../app.tsx';

export function RequestView(_props: ViewProps) {
  return <h1>Request</h1>;
}
