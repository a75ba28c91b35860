import type { ViewProps } from '../app.tsx';

export function DeliveryView(_props: ViewProps) {
  return <h1>Delivery</h1>;
}
