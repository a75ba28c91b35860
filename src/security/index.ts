/**
 * Security: API keys with roles (viewer < predictor < deployer < admin), stored hashed and
 * checked from memory on the request path.
 */
export { createApiKey, hashApiKey, roleAllows, isRole, KeyRing, ROLES } from './api-keys.ts';
export type { CreatedKey } from './api-keys.ts';
export { AuditLog, auditRequestId, bodySummary, boundedValue, currentAudit, entriesOfNotes, noteAudit, runInAuditContext, verifyAuditChain } from './audit/index.ts';
export type { AuditContext, AuditLogOptions, AuditNote, AuditProblem, AuditVerification, LoopAction } from './audit/index.ts';
export { Privacy, REDACTED, scrubValues } from './privacy.ts';
export type { PrivacyConfig, PrivacyRuleConfig } from './privacy.ts';
export { AccessMonitor, DEFAULT_ACCESS_MONITOR, inputFingerprint } from './access-monitor.ts';
export type { AccessMonitorConfig, Pattern as AccessPattern } from './access-monitor.ts';
