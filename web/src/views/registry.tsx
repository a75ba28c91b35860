import type { ViewProps } from '../app.tsx';

export function RegistryView(_props: ViewProps) {
  return <h1>Registry</h1>;
}
