/**
 * @cilia/api-client — the agent's API: the request and response types of every route on the
 * agent's socket (shared by the routes that answer them and every client), and
 * {@link AgentClient}, a typed client over the unix socket.
 */
export { AgentClient, DEFAULT_SOCKET, type AgentClientOptions, type HttpMethod, type RequestOptions } from './client.js';
export { AgentApiError, AgentClientError, AgentResponseError, AgentTimeoutError, AgentUnreachableError, isApiError } from './errors.js';
export { PolicyWaitTimeoutError, waitForPolicyRevision, type PolicyWaitOptions, type PolicyWaitProgress } from './wait.js';
export type * from './types.js';
export type * from './flows.js';
