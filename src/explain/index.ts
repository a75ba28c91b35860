/** Explanations of predictions: exact interventional TreeSHAP for ONNX tree ensembles. */
export { readTreeEnsemble, readTreeModel, TreeEnsemble } from './tree-ensemble.ts';
export type { Tree, TreeModel } from './tree-ensemble.ts';
export { treeShap } from './tree-shap.ts';
export type { Explanation } from './tree-shap.ts';
export { ExplainService, DEFAULT_BACKGROUND_ROWS, MAX_BACKGROUND_ROWS, MAX_EXPLAINED_ROWS } from './service.ts';
export type { ExplainResult, RowExplanation } from './service.ts';
