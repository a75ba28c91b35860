/**
 * Security: API keys with roles (viewer < predictor < deployer < admin), optionally scoped to models and expiring,
 * stored hashed and checked from memory on the request path; rate limits per key and deployment, in memory.
 */
export { createApiKey, hashApiKey, roleAllows, isRole, KeyRing, ROLES, rotateApiKey, parseExpiry, publicKey, sameHash, parseDuration, MAX_OVERLAP_MS } from './api-keys.ts';
export type { CreatedKey, KeyEntry, KeyOptions, KeyRingOptions } from './api-keys.ts';
export { RateLimiter, checkLimit } from './rate-limits.ts';
export type { EffectiveLimit, LimitScope, LimitSetting, RateLimitsConfig } from './rate-limits.ts';
export { QuotaCounter, checkQuota } from './quotas.ts';
export type { QuotaRefusal, QuotaScope, QuotaSetting, QuotasConfig } from './quotas.ts';
export { AuditLog, auditRequestId, auditStorageEnabled, bodySummary, boundedValue, currentAudit, entriesOfNotes, noteAudit, openAuditContext, openAuditContexts, runInAuditContext, verifyAuditChain } from './audit/index.ts';
export type { AuditContext, AuditLogOptions, AuditNote, AuditProblem, AuditVerification, LoopAction } from './audit/index.ts';
export { Privacy, REDACTED, scrubValues } from './privacy.ts';
export type { PrivacyConfig, PrivacyRuleConfig } from './privacy.ts';
export { AccessMonitor, DEFAULT_ACCESS_MONITOR, inputFingerprint } from './access-monitor.ts';
export type { AccessMonitorConfig, Pattern as AccessPattern } from './access-monitor.ts';
