/**
 * Human review queue: per-model policies send low-confidence predictions, plus an active-learning sample
 * (uncertain and diverse rows), to a queue where people claim and label them; the labels flow into the
 * labels store as `human` labels and so into live performance. The request path only flags rows (an
 * in-memory check); items are written from the prediction log's batches. See docs/review.md.
 */
export { ReviewService, CLAIM_TTL_MS, checkLabelValue, checkReviewer } from './service.ts';
export type { LabelOutcome, ReviewFlag, ReviewItem, ReviewItemFilter, ReviewQueue, ReviewServiceDeps } from './service.ts';
export { DEFAULT_MAX_QUEUE, parseReviewPolicy, probabilityTensor, confidenceOf } from './policy.ts';
export type { ReviewPolicyInput } from './policy.ts';
export { ActiveLearningSampler, hashUnit, DIVERSITY_RADIUS, RECENT_PICKS } from './sampler.ts';
export type { SampleRequest, SampleResult } from './sampler.ts';
