import type { ViewProps } from '../app.tsx';

export function LabelingView(_props: ViewProps) {
  return <h1>Labeling</h1>;
}
