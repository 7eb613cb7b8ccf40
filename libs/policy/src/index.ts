export type * from './model.js';
export { parsePolicyDocument, PolicyValidationError } from './parse/index.js';
export type { ParseOptions } from './parse/index.js';
