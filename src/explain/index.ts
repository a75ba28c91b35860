/** Explanations of predictions: exact interventional TreeSHAP for ONNX tree ensembles, KernelSHAP for other models. */
export { readTreeEnsemble, readTreeModel, TreeEnsemble } from './tree-ensemble.ts';
export type { Tree, TreeModel } from './tree-ensemble.ts';
export { treeShap } from './tree-shap.ts';
export type { Explanation } from './tree-shap.ts';
export { kernelShap, chooseCoalitions, DEFAULT_KERNEL_BUDGET, MAX_KERNEL_BUDGET } from './kernel-shap.ts';
export type { BatchModel, KernelExplanation, KernelOptions } from './kernel-shap.ts';
export { ExplainService, DEFAULT_BACKGROUND_ROWS, MAX_BACKGROUND_ROWS, MAX_EXPLAINED_ROWS, MAX_KERNEL_FEATURES, MIN_KERNEL_BUDGET } from './service.ts';
export type { ExplainMethod, ExplainOptions, ExplainResult, ExplainServiceDeps, ModelRunner, RowExplanation } from './service.ts';
