import type { ViewProps } from '../app.tsx';

export function OnCallView(_props: ViewProps) {
  return <h1>On-call</h1>;
}
