import './deployments.css';
import { useApi } from '../refresh.ts';

/** `GET /api/v1/deployments` → one of `deployments` (src/rollouts/deployments.ts DeploymentState). */
export interface Deployment {
  name: string;
  stable: { version: number; since: number | null; pinned: boolean } | null;
  candidate: { version: number; rollout: number; state: 'running' | 'paused'; weight: number; mirror: number; step: number; steps: number } | null;
  strategy: string;
  versions: number[];
  lastChange: DeploymentEvent | null;
}

/** `GET /api/v1/deployments/{name}/history` → one of `events`. */
export interface DeploymentEvent {
  id: number;
  deployment: string;
  at: number;
  kind: string;
  fromVersion: number | null;
  toVersion: number | null;
  strategy: string | null;
  actor: string;
  reason: string | null;
  data: Record<string, unknown> | null;
}

export function useDeployments() {
  return useApi<{ deployments: Deployment[] }>('/api/v1/deployments');
}

/** A labelled select of deployments; `onChange` gets the chosen name. */
export function DeploymentSelect(props: { id: string; deployments: Deployment[]; value: string; onChange: (name: string) => void }) {
  return (
    <span class="inline-field">
      <label for={props.id}>Deployment</label>
      <select id={props.id} value={props.value} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}>
        {props.deployments.length === 0 ? <option value="">none</option> : null}
        {props.deployments.map((d) => (
          <option key={d.name} value={d.name}>
            {d.name}
          </option>
        ))}
      </select>
    </span>
  );
}

/** The route's params as a plain object, to change one and navigate. */
export function paramsOf(p: URLSearchParams): Record<string, string> {
  return Object.fromEntries(p.entries());
}
