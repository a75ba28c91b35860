/** Training sets from production traffic: labelled predictions exported as CSV or Parquet, recorded as lineage. */
export { DatasetExport } from './export.ts';
export type { DatasetExportDeps, DatasetProgress, DatasetRequest } from './export.ts';
export { DatasetLayout } from './columns.ts';
