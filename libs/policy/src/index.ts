export type * from './model.js';
export { parsePolicyDocument, PolicyValidationError, ENTITIES } from './parse/index.js';
export type { ParseOptions, L7PortRules } from './parse/index.js';
export { PolicyEngine, ALLOW_LOCALHOST } from './engine/index.js';
export type { PolicyEngineOptions, DirectionTrace, TraceQuery, TraceResult } from './engine/index.js';
export { policyPlugin, policyConfig, type PolicyConfig } from './plugin.js';
export { policyRoutes } from './api.js';
export { PolicyService, POLICY_KINDS, type PolicySelector, type DeletedPolicy, type TraceablePolicyRepository, type PolicyTraceQuery } from './service.js';
