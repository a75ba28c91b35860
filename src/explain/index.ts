/** Explanations of predictions: exact interventional TreeSHAP for ONNX tree ensembles. */
export { readTreeEnsemble, TreeEnsemble } from './tree-ensemble.ts';
export type { Tree } from './tree-ensemble.ts';
export { treeShap } from './tree-shap.ts';
export type { Explanation } from './tree-shap.ts';
