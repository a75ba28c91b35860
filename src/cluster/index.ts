/** Running as one of several replicas on a shared store: change-feed sync of in-memory state, and leases for control loops. */
export { ReplicaSync } from './replica-sync.ts';
export type { ChangeHandler, ReplicaSyncOptions } from './replica-sync.ts';
export { LeaderLease } from './leader-lease.ts';
export type { LeaderLeaseOptions } from './leader-lease.ts';
