/**
 * Security: API keys with roles (viewer < predictor < deployer < admin), optionally scoped to models and expiring,
 * stored hashed and checked from memory on the request path; rate limits per key and deployment, in memory.
 */
export { createApiKey, hashApiKey, roleAllows, isRole, KeyRing, ROLES, rotateApiKey, parseExpiry, publicKey, sameHash, parseDuration, MAX_OVERLAP_MS } from './api-keys.ts';
export type { CreatedKey, KeyEntry, KeyOptions, KeyRingOptions } from './api-keys.ts';
export { RateLimiter, checkLimit } from './rate-limits.ts';
export type { EffectiveLimit, LimitScope, LimitSetting, RateLimitsConfig } from './rate-limits.ts';
