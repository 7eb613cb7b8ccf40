/**
 * @cilia/lb — the load balancer's logic, free of any datapath: the service model with
 * Kubernetes' Service and EndpointSlice semantics, backend selection rules, Maglev, and (with
 * the maps) the writers that program them.
 */
export * from './model.js';
export * from './maglev.js';
export * from './kubernetes.js';
export * from './maps.js';
export * from './balancer.js';
export * from './controller.js';
