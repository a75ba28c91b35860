import type { PredictionRoute } from '../storage/index.ts';

/**
 * How a deployment's requests are split while a rollout runs. Set by rollouts/ on every replica from the store, so
 * every replica routes by the same policy; the request path only reads it.
 */
export interface RoutePolicy {
  rolloutId: number;
  strategy: 'shadow' | 'canary' | 'ab';
  stable: number;
  candidate: number;
  /** Share of requests the candidate answers, in [0, 100]. */
  weight: number;
  /** Share of the requests the stable version answers that are also mirrored to the candidate, in [0, 100]. */
  mirror: number;
  /** A/B: requests are assigned by a hash of this salt and the caller's key, so a key keeps its arm. */
  salt?: string;
  /** A/B: what a request without a key gets: refused (400, the default) or the stable version, unrouted. */
  unkeyed?: 'reject' | 'stable';
}

/** Which version answers a request and how it was chosen. */
export interface RouteChoice {
  version: number;
  /** Undefined when no rollout chose it (a cost cap routed the request to its cheaper version). */
  route: PredictionRoute | undefined;
}

/** Buckets of the assignment hash: weights resolve to 0.01 %. */
const BUCKETS = 10_000;

/**
 * 32-bit FNV-1a of salt and key: a stable, well-mixed bucket for sticky assignment. Not a security boundary (a
 * caller choosing keys can choose its arm); it needs only to be the same on every replica and every restart.
 */
export function assignmentBucket(salt: string, key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < salt.length; i++) h = Math.imul(h ^ salt.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0x1f, 0x01000193);
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  // A final avalanche (murmur3's fmix32): FNV's low bits alone are poorly mixed for short, similar keys.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % BUCKETS;
}

const STABLE: PredictionRoute = 'stable';
const CANDIDATE: PredictionRoute = 'candidate';

/**
 * The routing table: deployment name → policy. A request that names no version asks `pick`; one that names a
 * version (or an alias) is served as asked and carries no route. Costs one Map lookup and one random draw.
 */
export class Router {
  private readonly policies = new Map<string, RoutePolicy>();
  /** Choices handed out, one per side, reused: the request path allocates nothing to route. */
  private readonly choices = new Map<string, { stable: RouteChoice; candidate: RouteChoice }>();

  set(deployment: string, policy: RoutePolicy | undefined): void {
    if (!policy) {
      this.policies.delete(deployment);
      this.choices.delete(deployment);
      return;
    }
    this.policies.set(deployment, policy);
    this.choices.set(deployment, { stable: { version: policy.stable, route: STABLE }, candidate: { version: policy.candidate, route: CANDIDATE } });
  }

  get(deployment: string): RoutePolicy | undefined {
    return this.policies.get(deployment);
  }

  deployments(): string[] {
    return [...this.policies.keys()];
  }

  /**
   * The version that answers a request without a version, or undefined when no rollout routes the deployment.
   * `key` is the caller's assignment key (A/B); canary and shadow draw at random.
   */
  pick(deployment: string, key?: string): RouteChoice | undefined {
    const policy = this.policies.get(deployment);
    if (policy === undefined) return undefined;
    const c = this.choices.get(deployment)!;
    if (policy.weight <= 0) return c.stable;
    if (policy.weight >= 100) return c.candidate;
    if (policy.salt !== undefined && key !== undefined) return assignmentBucket(policy.salt, key) < policy.weight * (BUCKETS / 100) ? c.candidate : c.stable;
    return Math.random() * 100 < policy.weight ? c.candidate : c.stable;
  }

  /** Whether a request the stable version answered is also mirrored to the candidate. */
  mirror(deployment: string): boolean {
    const policy = this.policies.get(deployment);
    return policy !== undefined && policy.mirror > 0 && (policy.mirror >= 100 || Math.random() * 100 < policy.mirror);
  }
}
