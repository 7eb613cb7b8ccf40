export { PolicyEngine, type PolicyEngineOptions } from './engine.js';
export type { DirectionTrace, TraceQuery, TraceResult } from './trace.js';
export { ALLOW_LOCALHOST } from './subject-state.js';
