/**
 * Delivery: deployments (the name callers use, its stable version and the history of every change), with the
 * checks that keep a switch from failing a request: the version is loaded before it gets traffic, and a signature
 * that would break callers is refused naming the difference. Progressive strategies (shadow, canary, A/B) build on it.
 */
export { DeploymentService, STRATEGIES } from './deployments.ts';
export type { DeploymentState, DeployRequest, DeployResult, RollbackRequest, Strategy } from './deployments.ts';
export { signatureDifferences } from './compatibility.ts';
