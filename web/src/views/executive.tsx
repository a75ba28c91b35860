import type { ViewProps } from '../app.tsx';

export function ExecutiveView(_props: ViewProps) {
  return <h1>Executive</h1>;
}
