export type * from './model.js';
export { parsePolicyDocument, PolicyValidationError } from './parse/index.js';
export type { ParseOptions } from './parse/index.js';
export { PolicyEngine, ALLOW_LOCALHOST } from './engine/index.js';
export type { PolicyEngineOptions, DirectionTrace, TraceQuery, TraceResult } from './engine/index.js';
