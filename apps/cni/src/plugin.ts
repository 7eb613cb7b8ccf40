import type { Endpoint } from '@cilia/core';
import { AgentClient, AgentHttpError } from './agent-client.js';
import { invalid, parseNetworkConfig, peekVersion, type NetworkConfig } from './config.js';
import { parseEnvironment, type CniEnvironment } from './environment.js';
import { CniError, ErrorCode, toErrorJson } from './errors.js';
import { inspectAttachment } from './kernel-check.js';
import { PendingDeletes } from './pending-deletes.js';
import { compareWithPrevResult, endpointResult, type CniResult } from './result.js';
import { assertVersionFor, isSupportedVersion, LATEST_VERSION, SUPPORTED_VERSIONS } from './versions.js';

/** Debug logging (stderr, only when `CILIA_CNI_DEBUG` is set). */
export interface CniLogger {
  debug(fields: Record<string, unknown>, message: string): void;
}

/** What one invocation gets from the runtime. */
export interface PluginInput {
  readonly env: NodeJS.ProcessEnv;
  /** The network config (empty for a bare VERSION). */
  readonly stdin: string;
  readonly log?: CniLogger;
}

/** What the invocation hands back: stdout text and the exit code. */
export interface PluginOutcome {
  readonly stdout: string;
  readonly exitCode: number;
}

const silent: CniLogger = { debug: () => undefined };

/** Runs one CNI invocation: never throws; failures are the specification's error JSON and exit code 1. */
export async function runPlugin(input: PluginInput): Promise<PluginOutcome> {
  const log = input.log ?? silent;
  const requested = peekVersion(input.stdin);
  const outVersion = requested !== undefined && isSupportedVersion(requested) ? requested : LATEST_VERSION;
  try {
    const env = parseEnvironment(input.env);
    log.debug({ command: env.command, containerId: env.containerId, ifName: env.ifName, netns: env.netns }, 'invoked');
    if (env.command === 'VERSION') {
      return ok({ cniVersion: outVersion, supportedVersions: [...SUPPORTED_VERSIONS] });
    }
    const config = parseNetworkConfig(input.stdin);
    assertVersionFor(env.command, config.cniVersion);
    const agent = new AgentClient(config.socket, config.timeoutMs);
    const pending = config.pendingDeleteDir ? new PendingDeletes(config.pendingDeleteDir) : PendingDeletes.forSocket(config.socket);
    const ctx: Context = { env, config, agent, pending, log };
    switch (env.command) {
      case 'ADD':
        return ok(await add(ctx));
      case 'DEL':
        await del(ctx);
        return done();
      case 'CHECK':
        await check(ctx);
        return done();
      case 'STATUS':
        await status(ctx);
        return done();
      case 'GC':
        await gc(ctx);
        return done();
    }
  } catch (err) {
    const json = toErrorJson(err, outVersion);
    log.debug({ code: json.code, details: json.details }, json.msg);
    return { stdout: `${JSON.stringify(json)}\n`, exitCode: 1 };
  }
}

interface Context {
  readonly env: CniEnvironment;
  readonly config: NetworkConfig;
  readonly agent: AgentClient;
  readonly pending: PendingDeletes;
  readonly log: CniLogger;
}

async function add({ env, config, agent, pending, log }: Context): Promise<CniResult> {
  const containerId = env.containerId!;
  const ifName = env.ifName!;
  const netns = env.netns!;
  await replayDeferredDeletes(agent, pending, log);
  let endpoint: Endpoint;
  try {
    // Create first (the common case costs one round trip); 409 means the attachment exists.
    endpoint = await agent.createEndpoint({
      name: env.args['K8S_POD_NAME'] || nameFromContainerId(containerId),
      namespace: env.args['K8S_POD_NAMESPACE'] || 'default',
      labels: config.labels,
      netns,
      interfaceName: ifName,
      containerId,
    });
    log.debug({ id: endpoint.id, ipv4: endpoint.ipv4 }, 'endpoint created');
  } catch (err) {
    if (!(err instanceof AgentHttpError && err.status === 409)) throw fromAgent(err, 'ADD');
    const existing = await agent.findAttachment(containerId, ifName).catch((e: unknown) => {
      throw fromAgent(e, 'ADD');
    });
    if (!existing) throw fromAgent(err, 'ADD');
    if (existing.netns !== netns) {
      throw new CniError(
        ErrorCode.AttachmentConflict,
        `container ${containerId} interface ${ifName} is already attached as endpoint ${existing.id} in netns ${existing.netns}, not ${netns}; DEL it first`,
      );
    }
    log.debug({ id: existing.id }, 'attachment exists; returning its result');
    endpoint = existing;
  }
  return endpointResult(endpoint, {
    cniVersion: config.cniVersion,
    netns,
    dns: config.dns,
    ...(config.prevResult ? { prevResult: config.prevResult } : {}),
  });
}

async function del({ env, agent, pending, log }: Context): Promise<void> {
  const attachment = { containerId: env.containerId!, ifName: env.ifName! };
  try {
    await replayDeferredDeletes(agent, pending, log);
    const deleted = await agent.deleteAttachment(attachment.containerId, attachment.ifName);
    await pending.remove(attachment);
    log.debug({ deleted }, deleted ? 'endpoint deleted' : 'no endpoint for this attachment (already deleted)');
  } catch (err) {
    const unavailable =
      (err instanceof CniError && err.code === ErrorCode.AgentUnreachable) || (err instanceof AgentHttpError && err.status === 503);
    if (!unavailable) throw fromAgent(err, 'DEL');
    // The specification asks DEL to succeed when it cannot clean up; a later invocation that
    // reaches the agent carries the delete out (see README.md, "DEL while the agent is down").
    try {
      await pending.add(attachment);
    } catch (writeErr) {
      throw new CniError(
        ErrorCode.AgentUnreachable,
        `${(err as Error).message}; and the delete could not be deferred to ${pending.dir}: ${(writeErr as Error).message}`,
      );
    }
    log.debug({ dir: pending.dir, reason: (err as Error).message }, 'agent unavailable: DEL deferred');
  }
}

async function check({ env, config, agent }: Context): Promise<void> {
  if (!config.prevResult) throw invalid('prevResult', 'is required for CHECK');
  const containerId = env.containerId!;
  const ifName = env.ifName!;
  const endpoint = await agent.findAttachment(containerId, ifName).catch((e: unknown) => {
    throw fromAgent(e, 'CHECK');
  });
  if (!endpoint) {
    throw new CniError(ErrorCode.CheckFailed, `CHECK failed: the agent has no endpoint for container ${containerId} interface ${ifName}`);
  }
  const problems = compareWithPrevResult(endpoint, config.prevResult, { ifName, netns: env.netns! });
  if (problems.length === 0) problems.push(...(await inspectAttachment(endpoint, { netns: env.netns!, ifName })));
  if (endpoint.state === 'not-ready' || endpoint.state === 'disconnecting') {
    problems.unshift(`endpoint ${endpoint.id} is ${endpoint.state}`);
  }
  if (problems.length > 0) {
    throw new CniError(ErrorCode.CheckFailed, `CHECK failed: ${problems[0]}`, problems.join('\n'));
  }
}

async function status({ agent, pending, log }: Context): Promise<void> {
  let health;
  try {
    health = await agent.status();
  } catch (err) {
    throw new CniError(ErrorCode.PluginNotAvailable, (err as Error).message);
  }
  if (health.health === 'degraded') {
    throw new CniError(
      ErrorCode.PluginNotAvailableLimitedConnectivity,
      `the agent at ${agent.socket} is degraded: ${health.problems.join('; ') || 'no details'}`,
    );
  }
  if (health.health !== 'ok') {
    throw new CniError(ErrorCode.PluginNotAvailable, `the agent at ${agent.socket} is not ready (health: ${health.health})`);
  }
  // A healthy agent without the endpoints API (no datapath plugin) cannot serve ADD either.
  try {
    await agent.findAttachment('cilia-cni-status-probe', 'eth0');
  } catch (err) {
    const reason = err instanceof AgentHttpError ? `${err.route} answers HTTP ${err.status}` : (err as Error).message;
    throw new CniError(ErrorCode.PluginNotAvailable, `the agent at ${agent.socket} does not serve the endpoints API: ${reason}`);
  }
  // Runtimes poll STATUS, so this is where deferred DELs are most often carried out.
  await replayDeferredDeletes(agent, pending, log);
}

async function gc({ config, agent, pending, log }: Context): Promise<void> {
  if (!config.validAttachments) throw invalid('cni.dev/valid-attachments', 'is required for GC');
  try {
    await replayDeferredDeletes(agent, pending, log);
    const deleted = await agent.gc(config.validAttachments.map((a) => ({ containerId: a.containerId, interfaceName: a.ifName })));
    log.debug({ deleted }, 'garbage collected');
  } catch (err) {
    throw fromAgent(err, 'GC');
  }
}

// A failed replay is left for the next invocation; it must not fail this one.
async function replayDeferredDeletes(agent: AgentClient, pending: PendingDeletes, log: CniLogger): Promise<void> {
  try {
    const replayed = await pending.flush(agent);
    if (replayed.length > 0) log.debug({ replayed }, 'deferred DELs carried out');
  } catch (err) {
    log.debug({ reason: (err as Error).message }, 'deferred DELs not carried out yet');
  }
}

// Where each field of the create request came from, so the runtime hears which input was wrong.
const FIELD_SOURCES: Record<string, { code: typeof ErrorCode.InvalidEnvironment | typeof ErrorCode.InvalidNetworkConfig; name: string }> = {
  netns: { code: ErrorCode.InvalidEnvironment, name: 'CNI_NETNS' },
  interfaceName: { code: ErrorCode.InvalidEnvironment, name: 'CNI_IFNAME' },
  containerId: { code: ErrorCode.InvalidEnvironment, name: 'CNI_CONTAINERID' },
  name: { code: ErrorCode.InvalidEnvironment, name: 'CNI_ARGS K8S_POD_NAME (or CNI_CONTAINERID)' },
  namespace: { code: ErrorCode.InvalidEnvironment, name: 'CNI_ARGS K8S_POD_NAMESPACE' },
  labels: { code: ErrorCode.InvalidNetworkConfig, name: 'labels' },
};

/** Maps an agent failure to the CNI error the runtime should see. */
function fromAgent(err: unknown, op: string): unknown {
  if (!(err instanceof AgentHttpError)) return err;
  const message = err.body?.error ?? `HTTP ${err.status}`;
  if (err.status === 400 && err.body?.path) {
    const source = FIELD_SOURCES[err.body.path.split(/[.[]/)[0]!];
    if (source) {
      const prefix = source.code === ErrorCode.InvalidEnvironment ? 'invalid environment' : 'invalid network config';
      return new CniError(source.code, `${prefix}: ${source.name} rejected by the agent: ${message} (field ${err.body.path})`);
    }
  }
  if (err.status === 507 || (err.status === 503 && /exhaust/i.test(message))) {
    return new CniError(ErrorCode.AddressesExhausted, `${op} failed: the agent has no pod address left: ${message}`);
  }
  if (err.status === 503) return new CniError(ErrorCode.TryAgainLater, `${op} failed: the agent cannot serve it now, try again later: ${message}`);
  if (err.status === 404 && /^no such API route/.test(message)) {
    return new CniError(ErrorCode.AgentError, `${op} failed: the agent does not serve ${err.route} (is its datapath plugin loaded?)`);
  }
  return new CniError(ErrorCode.AgentError, `${op} failed: the agent answered ${err.message}`);
}

// Endpoint names are DNS-style; a container id may also hold "_" and start or end with "." or "-".
function nameFromContainerId(containerId: string): string {
  return containerId.replace(/[^A-Za-z0-9.-]/g, '-').replace(/^[.-]+|[.-]+$/g, '').slice(0, 253) || 'container';
}

function ok(body: unknown): PluginOutcome {
  return { stdout: `${JSON.stringify(body)}\n`, exitCode: 0 };
}

function done(): PluginOutcome {
  return { stdout: '', exitCode: 0 };
}
