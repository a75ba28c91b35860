/**
 * Quality: checks that requests fit the model's signature before the model runs (names, datatypes,
 * shapes, element types, NaN/inf, allowed ranges). Later: window-level data-quality metrics.
 */
export { decodeTensor, decodeInstances } from './tensor-input.ts';
export type { DecodedTensor, InstancePrefill, TensorData } from './tensor-input.ts';
