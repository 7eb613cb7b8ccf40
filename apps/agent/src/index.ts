/** Programmatic entry points of the agent, for tests and embedding. */
export { Agent, AGENT_VERSION, prepareAgent, type PreparedAgent } from './agent.js';
export { renderConfigReference } from './config/reference.js';
export { agentSection, type AgentSection } from './config/agent-section.js';
