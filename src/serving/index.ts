/**
 * Serving: the in-memory table of warm model sessions (onnxruntime-node), version/alias
 * resolution without store reads, and the inference request path for OIP v2 and named features.
 */
export { ModelTable } from './model-table.ts';
export type { LoadedVersion, ModelTableOptions } from './model-table.ts';
export { InferenceService } from './inference.ts';
export { requestIdFrom, timeOrderedId } from './request-id.ts';
export type { InferenceExplanation, OipInferResponse, PredictResponse, RequestContext, ReviewFlag, ReviewFlagger } from './inference.ts';
export { OnnxModel } from './runtimes/onnx.ts';
export type { OutputTensor } from './runtimes/onnx.ts';
export { FaultInjector, FAULT_KINDS, LATENCY_STEP_MS, DRIFT_STD_STEP, SCHEMA_EXTRA_FEATURE, faultColumns, faultEffect, faultShare } from './faults.ts';
export type { ArmedFault, FaultCounts, FaultHit, FaultKind } from './faults.ts';
export { Router, assignmentBucket } from './router.ts';
export type { RouteChoice, RoutePolicy } from './router.ts';
export { ShadowRunner } from './shadow.ts';
export { ShadowThread, sameThread, type ShadowExecutor } from './shadow-thread.ts';
export type { ShadowRunnerOptions, ShadowDropReason } from './shadow.ts';
