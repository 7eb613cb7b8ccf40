/**
 * @cilia/core — Cilia's kernel: service interfaces and their tokens, the plugin API,
 * plugin-set resolution, the lifecycle and config composition. No I/O, no native code.
 */
export { z } from 'zod';
export * from './net.js';
export * from './token.js';
export * from './tokens.js';
export * from './version.js';
export * from './plugin.js';
export * from './resolve.js';
export * from './lifecycle.js';
export * from './host.js';
export * from './config.js';
export * from './secrets.js';
export * from './api.js';
export type * from './services/logger.js';
export type * from './services/config.js';
export type * from './services/lifecycle.js';
export type * from './services/ipam.js';
export * from './services/identity.js';
export type * from './services/ipcache.js';
export type * from './services/policy.js';
export type * from './services/service.js';
export type * from './services/encapsulation.js';
export type * from './services/nodes.js';
export type * from './services/l7proxy.js';
export type * from './services/kvstore.js';
export type * from './services/resources.js';
export type * from './services/endpoint.js';
export * from './services/datapath.js';
export type * from './services/flow.js';
export * from './services/metrics.js';
