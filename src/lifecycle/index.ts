/**
 * Model lifecycle: retraining triggers decide when a deployment needs a new model, a trainer (built in, or an
 * external command) produces it, and validation gates it before it is registered as a new version; the human
 * review queue collects predictions for people to label; game days inject bounded faults into live traffic to
 * rehearse incidents. This module is the only entry point other folders
 * import from.
 */
export * from './trainer/index.ts';
export { seedDemo, DEMO_MODELS } from './demo.ts';
export * from './review/index.ts';
export * from './gameday/index.ts';
export * from './dataset/index.ts';
export * from './retrain/index.ts';
