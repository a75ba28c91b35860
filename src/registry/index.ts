/**
 * Registry: models, immutable versions stored content-addressed by sha256, their signatures
 * (read from the ONNX file) and metadata, and aliases such as `champion` that move atomically.
 */
export { Registry, STABLE_ALIAS, checkModelName, checkAliasName } from './registry.ts';
export type { AliasChangeContext, PushInput, PushResult, RegistryChange, RegistryDeps } from './registry.ts';
export { inspectOnnx, readOnnxMetadataProps } from './onnx-file.ts';
export { validateMetadata, validateFeatures } from './validation.ts';
export { buildModelCard, CARD_TAGS, CARD_WINDOWS, CARD_EVENTS } from './model-card.ts';
export type { CardGap, ModelCard, ModelCardSources } from './model-card.ts';
export { modelCardMarkdown } from './model-card-markdown.ts';
