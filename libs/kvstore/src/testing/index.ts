export { kvStoreConformance, type ConformanceStore, type ConformanceOptions } from './conformance.js';
