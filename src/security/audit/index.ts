export { AuditLog, entriesOfNotes, type AuditLogOptions, type LoopAction } from './log.ts';
export { auditRequestId, auditStorageEnabled, currentAudit, noteAudit, openAuditContext, openAuditContexts, runInAuditContext, type AuditContext, type AuditNote } from './context.ts';
export { bodySummary, boundedValue } from './summary.ts';
export { verifyAuditChain, type AuditProblem, type AuditVerification } from './verify.ts';
