import { statSync, type Stats } from 'node:fs';
import { ReservedIdentity, type Endpoint, type EndpointCreateRequest, type EndpointManager, type IdentityAllocator, type Ipam, type IpamLease, type Labels, type Logger, type Unsubscribe } from '@cilia/core';
import type { NetlinkHandle } from '@cilia/netlink';
import { LEGACY_GSO_SIZE } from './big-tcp.js';
import type { DatapathEndpoint, EndpointDatapath } from './backend.js';
import type { EndpointPolicy, PolicyTarget } from './policy/realizer.js';
import type { LocalIpCache } from './ipcache.js';
import { agentNetnsName, attachmentKey, hostInterfaceName, leaseOwner, leaseOwnerId } from './naming.js';
import type { NodeInfo } from './node.js';
import { createEndpointNetns, deleteEndpointNetns, plumbEndpoint, resizeEndpointGso, unplumbEndpoint } from './plumbing.js';
import type { EndpointRecord, EndpointStore } from './store.js';
import { EndpointRequestError, validateCreateRequest, validateLabels } from './validate.js';

/**
 * Cilium's reserved `init` identity (5): what an endpoint carries while its labels have no
 * identity yet — always without an identity allocator, and while the allocator cannot reach
 * its store (the manager then retries in the background).
 */
export const PLACEHOLDER_IDENTITY: number = ReservedIdentity.init;

/** The label carrying the pod's namespace, part of every endpoint's identity. */
const NAMESPACE_LABEL = 'k8s:io.kubernetes.pod.namespace';

/** Highest endpoint id (the datapath keeps ids in 16 bits). */
const MAX_ENDPOINT_ID = 0xffff;

/**
 * The request collides with what exists: an attachment (containerId + interfaceName, or
 * namespace/name) that has an endpoint, or a network namespace name that is taken.
 */
export class EndpointConflictError extends Error {
  constructor(
    message: string,
    /** The request field at fault. */
    readonly path: string,
    readonly existing?: Endpoint,
  ) {
    super(message);
    this.name = 'EndpointConflictError';
  }
}

/** What the manager needs from the agent. */
export interface EndpointManagerDeps {
  readonly ipam: Ipam;
  readonly ipcache: LocalIpCache;
  readonly datapath: EndpointDatapath;
  readonly store: EndpointStore;
  readonly logger: Logger;
  /** The agent's own netlink handle. */
  readonly host: () => Promise<NetlinkHandle>;
  /** Node facts, discovered once. */
  readonly node: () => Promise<NodeInfo>;
  /** Allocates endpoints' identities; without one every endpoint carries `init` (5). */
  readonly identity?: IdentityAllocator;
  /** How often endpoints still carrying `init` ask the allocator again. Default 2 s. */
  readonly identityRetryMs?: number;
  /**
   * Writes endpoints' policy before their programs attach; absent without a policy repository.
   * A getter: the policy map exists only once the datapath has enabled policy (at start).
   */
  readonly policy?: () => EndpointPolicy | undefined;
}

interface Live {
  endpoint: Endpoint;
  record: EndpointRecord;
  links: { hostIfindex: number; podIfindex: number };
}

/**
 * The core `EndpointManager`. Every change runs one at a time (a queue), so ids, names and
 * leases never race. An endpoint is reported (and its create call resolves) only once its
 * links, addresses, routes, neighbour entry, endpoints map entry, ipcache entry and programs
 * are all in place; a failure undoes whatever was done.
 */
export class CoreEndpointManager implements EndpointManager {
  readonly #deps: EndpointManagerDeps;
  readonly #log: Logger;
  readonly #live = new Map<number, Live>();
  readonly #listeners = new Set<(event: { type: 'upsert' | 'delete'; endpoint: Endpoint }) => void>();
  readonly #reservedIds = new Set<number>();
  #queue: Promise<unknown> = Promise.resolve();
  #nodeReady = false;
  #retryTimer?: NodeJS.Timeout;
  #retrying = false;
  /** Adopted endpoints whose recorded identity the allocator has not confirmed yet (its store was away). */
  readonly #unconfirmed = new Set<number>();

  constructor(deps: EndpointManagerDeps) {
    this.#deps = deps;
    this.#log = deps.logger;
  }

  /**
   * Adopts the endpoints in the state directory: links and pinned maps stay as they are;
   * programs are replaced atomically, map and ipcache entries rewritten (not flushed), then
   * whatever no endpoint owns any more (half-created endpoints, orphan leases, stale map
   * entries) is removed.
   */
  async start(): Promise<void> {
    const { records, problems } = this.#deps.store.readAll();
    for (const p of problems) {
      // Its id stays taken: a new endpoint must not overwrite a file someone may still recover.
      this.#reservedIds.add(p.id);
      this.#log.warn({ problem: p.message }, 'unreadable endpoint state file ignored');
    }
    if (records.length > 0) await this.#ensureNode();
    const gsoSize = records.length > 0 ? ((await this.#deps.node()).gsoMaxSize ?? LEGACY_GSO_SIZE) : LEGACY_GSO_SIZE;
    const host = await this.#deps.host();
    let storeAway = false;
    for (const record of records) {
      const ep = record.endpoint;
      try {
        const hostLink = await host.findLink(ep.hostInterface);
        if (ep.state !== 'ready' || !hostLink || !ep.ipv4) {
          this.#log.warn({ endpoint: ep.id, state: ep.state, link: !!hostLink }, 'removing an endpoint that was not complete or whose link is gone');
          await this.#teardown(record, undefined);
          continue;
        }
        await this.#ensureLease(ep.ipv4, ep.id);
        // BIG TCP turned on or off since the veth was made (a kernel without the attribute reports
        // none). Failing that only costs throughput: the endpoint is adopted all the same.
        if (hostLink.gsoIpv4MaxSize !== undefined && hostLink.gsoIpv4MaxSize !== gsoSize) {
          const change = { endpoint: ep.id, from: hostLink.gsoIpv4MaxSize, to: gsoSize };
          await resizeEndpointGso(host, { hostIfindex: hostLink.index, netns: ep.netns, interfaceName: ep.interfaceName }, gsoSize).then(
            () => this.#log.info(change, 'endpoint veth GSO/GRO size follows datapath.bigTcp'),
            (err: unknown) => this.#log.warn({ ...change, err }, 'cannot change the endpoint veth GSO/GRO size; it keeps the old one'),
          );
        }
        // Re-acquired, not re-minted: the allocator finds the label set's existing id.
        let identity = storeAway ? PLACEHOLDER_IDENTITY : await this.#allocateIdentity(ep);
        if (identity === PLACEHOLDER_IDENTITY && ep.identity !== PLACEHOLDER_IDENTITY && this.#deps.identity) {
          // The allocator's store is away: keep forwarding with the recorded identity, confirm it later.
          storeAway = true;
          this.#unconfirmed.add(ep.id);
          identity = ep.identity;
        }
        const adopted = identity === ep.identity ? ep : { ...ep, identity };
        const live: Live = { endpoint: adopted, record: { ...record, endpoint: adopted }, links: { hostIfindex: hostLink.index, podIfindex: record.podIfindex ?? 0 } };
        if (adopted !== ep) this.#deps.store.write(live.record);
        // Diffed against the pinned map, never flushed: the endpoint's traffic keeps its policy meanwhile.
        this.#realizePolicy(live);
        await this.#deps.datapath.attachEndpoint(this.#bpfView(live));
        this.#live.set(ep.id, live);
      } catch (err) {
        // One broken endpoint must not keep the agent (and every other endpoint) down.
        this.#log.error({ endpoint: ep.id, err }, 'cannot adopt endpoint; removing it');
        await this.#teardown(record, undefined).catch((undoErr: unknown) => this.#log.error({ endpoint: ep.id, err: undoErr }, 'removing an endpoint that could not be adopted failed'));
      }
    }
    await this.#deps.ipcache.apply({ upserts: [...this.#live.values()].map((l) => this.#ipcacheEntry(l.endpoint)), deletes: [] });
    const policy = this.#deps.policy?.();
    const prunedPolicy = policy ? policy.prune(new Set(this.#live.keys())) : 0;
    if (prunedPolicy > 0) this.#log.info({ endpoints: prunedPolicy }, 'removed policy map state of endpoints that no longer exist');
    if (this.#nodeReady) {
      const pruned = await this.#deps.datapath.pruneEndpoints([...this.#live.values()].map((l) => this.#bpfView(l)));
      const stale = this.#deps.ipcache.pruneMap();
      if (pruned + stale > 0) this.#log.info({ endpoints: pruned, ipcache: stale }, 'removed map entries no endpoint owns');
    }
    for (const lease of this.#deps.ipam.leases()) {
      const id = leaseOwnerId(lease.owner);
      if (id !== undefined && !this.#live.has(id)) {
        await this.#deps.ipam.release(lease.ip);
        this.#log.info({ ip: lease.ip, owner: lease.owner }, 'released a lease no endpoint holds');
      }
    }
    this.#log.info({ adopted: this.#live.size }, 'endpoints adopted');
    if (this.#deps.identity) {
      this.#retryTimer = setInterval(() => {
        if (this.#retrying) return;
        this.#retrying = true;
        this.#retryIdentities()
          .catch((err: unknown) => this.#log.warn({ err }, 'identity retry failed'))
          .finally(() => (this.#retrying = false));
      }, this.#deps.identityRetryMs ?? 2000);
      this.#retryTimer.unref();
    }
  }

  /** Stops the background identity retries. */
  stop(): void {
    clearInterval(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  async create(request: EndpointCreateRequest): Promise<Endpoint> {
    const req = validateCreateRequest(request);
    return this.#serial(() => this.#create(req));
  }

  async updateLabels(id: number, labels: Labels): Promise<Endpoint> {
    const checked = validateLabels(labels, 'labels');
    return this.#serial(async () => {
      const live = this.#live.get(id);
      if (!live) throw new Error(`endpoint ${id} does not exist`);
      const old = live.endpoint.identity;
      const held = !this.#unconfirmed.delete(id);
      const labelled = { ...live.endpoint, labels: checked };
      const identity = await this.#allocateIdentity(labelled);
      await this.#setIdentity(live, { ...labelled, identity }, true);
      if (held) await this.#releaseIdentity(old);
      this.#emit('upsert', live.endpoint);
      return live.endpoint;
    });
  }

  delete(id: number): Promise<boolean> {
    return this.#serial(async () => {
      const live = this.#live.get(id);
      if (!live) return false;
      await this.#teardown(live.record, this.#bpfView(live));
      this.#live.delete(id);
      if (!this.#unconfirmed.delete(id)) await this.#releaseIdentity(live.endpoint.identity);
      this.#emit('delete', { ...live.endpoint, state: 'disconnecting' });
      this.#log.info({ endpoint: id, name: live.endpoint.name, namespace: live.endpoint.namespace }, 'endpoint deleted');
      return true;
    });
  }

  get(id: number): Endpoint | undefined {
    const live = this.#live.get(id);
    return live && this.#current(live);
  }

  findByContainer(containerId: string, interfaceName = 'eth0'): Endpoint | undefined {
    for (const { endpoint } of this.#live.values()) {
      if (endpoint.containerId === containerId && endpoint.interfaceName === interfaceName) return endpoint;
    }
    return undefined;
  }

  list(): readonly Endpoint[] {
    return [...this.#live.values()].map((l) => this.#current(l)).sort((a, b) => a.id - b.id);
  }

  /** The endpoint with the policy revision it has realized by now (deltas arrive between calls). */
  #current(live: Live): Endpoint {
    const revision = this.#deps.policy?.()?.revision(live.endpoint.id);
    if (revision !== undefined && revision !== live.endpoint.policyRevision) live.endpoint = { ...live.endpoint, policyRevision: revision };
    return live.endpoint;
  }

  /** Resolves once the changes queued so far have finished (the agent is stopping). */
  async drain(): Promise<void> {
    await this.#queue;
  }

  subscribe(listener: (event: { type: 'upsert' | 'delete'; endpoint: Endpoint }) => void): Unsubscribe {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async #create(req: ReturnType<typeof validateCreateRequest>): Promise<Endpoint> {
    const key = attachmentKey(req);
    const hostInterface = hostInterfaceName(key);
    for (const { endpoint } of this.#live.values()) {
      if (endpoint.hostInterface === hostInterface) {
        const what = req.containerId ? `container ${req.containerId} interface ${req.interfaceName}` : `${req.namespace}/${req.name}`;
        throw new EndpointConflictError(`${what} already has endpoint ${endpoint.id}`, req.containerId ? 'containerId' : 'name', endpoint);
      }
    }
    if (req.netns) refuseForeignNetns(req.netns);
    await this.#ensureNode();
    const node = await this.#deps.node();
    const host = await this.#deps.host();
    const id = this.#nextId();
    // Before anything reaches the maps: the endpoint's entries carry its real identity from the start.
    const identity = await this.#allocateIdentity({ namespace: req.namespace, labels: req.labels });
    let lease: IpamLease;
    try {
      lease = await this.#deps.ipam.allocateNext(leaseOwner(id), 'ipv4');
    } catch (err) {
      await this.#releaseIdentity(identity);
      throw err;
    }
    const netnsName = req.netns ? undefined : agentNetnsName(req.namespace, req.name);
    let endpoint: Endpoint = {
      id,
      name: req.name,
      namespace: req.namespace,
      labels: req.labels,
      ipv4: lease.ip,
      netns: req.netns ?? `/run/netns/${netnsName}`,
      hostInterface,
      hostMac: '',
      interfaceName: req.interfaceName,
      mac: '',
      ipv4Gateway: lease.gateway,
      ...(req.containerId ? { containerId: req.containerId } : {}),
      identity,
      state: 'regenerating',
      policyRevision: 0,
      ...(req.namedPorts ? { namedPorts: req.namedPorts } : {}),
    };
    let record: EndpointRecord = { endpoint, createdNetns: false, ipv4Pool: lease.pool, createdAt: new Date().toISOString() };
    let bpf: DatapathEndpoint | undefined;
    try {
      // Written first, as not ready: a crash from here on is cleaned up on the next start.
      this.#deps.store.write(record);
      if (netnsName) {
        await createEndpointNetns(netnsName).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
          throw new EndpointConflictError(`network namespace ${netnsName} exists already and is not this agent's (remove it, or pass netns)`, 'name');
        });
        // Recorded only once it is ours: a name that was taken already is never deleted by the undo.
        record = { ...record, createdNetns: true };
        this.#deps.store.write(record);
      }
      const links = await plumbEndpoint(host, {
        netns: endpoint.netns,
        hostInterface,
        interfaceName: req.interfaceName,
        ipv4: lease.ip,
        gateway: lease.gateway,
        mtu: node.mtu,
        ...(node.gsoMaxSize ? { gsoMaxSize: node.gsoMaxSize } : {}),
        loopbackUp: netnsName !== undefined,
      });
      endpoint = { ...endpoint, hostMac: links.hostMac, mac: links.podMac };
      const live: Live = { endpoint, record, links };
      // Before the endpoints map entry and the programs: once other pods' programs can find
      // this one, or its own programs run, its final policy is in the map already.
      endpoint = { ...endpoint, policyRevision: this.#realizePolicy(live) };
      live.endpoint = endpoint;
      bpf = this.#bpfView(live);
      await this.#deps.datapath.attachEndpoint(bpf);
      await this.#deps.ipcache.apply({ upserts: [this.#ipcacheEntry(endpoint)], deletes: [] });
      endpoint = { ...endpoint, state: 'ready' };
      record = { ...record, endpoint, podIfindex: links.podIfindex };
      this.#deps.store.write(record);
      live.endpoint = endpoint;
      live.record = record;
      this.#live.set(id, live);
    } catch (err) {
      this.#log.error({ endpoint: id, err }, 'endpoint creation failed; undoing it');
      await this.#teardown(record, bpf).catch((undoErr: unknown) => this.#log.error({ endpoint: id, err: undoErr }, 'undoing a failed endpoint creation failed'));
      await this.#releaseIdentity(identity);
      throw err;
    }
    this.#log.info({ endpoint: id, name: req.name, namespace: req.namespace, ipv4: lease.ip, hostInterface }, 'endpoint created');
    this.#emit('upsert', endpoint);
    return endpoint;
  }

  /** Removes everything an endpoint may have: map entries, ipcache entry, links, netns, lease, state file. */
  async #teardown(record: EndpointRecord, bpf: DatapathEndpoint | undefined): Promise<void> {
    const ep = record.endpoint;
    const host = await this.#deps.host();
    const errors: unknown[] = [];
    const step = async (fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    if (bpf) await step(() => this.#deps.datapath.detachEndpoint(bpf));
    if (ep.ipv4) await step(() => this.#deps.ipcache.apply({ upserts: [], deletes: [`${ep.ipv4}/32`], deleteSource: 'local' }));
    // By name, not ifindex: the name is ours alone, while a freed ifindex may belong to a new link.
    await step(() => unplumbEndpoint(host, ep.hostInterface));
    // After the link is gone: until then its traffic keeps meeting its policy.
    const policy = this.#deps.policy?.();
    if (policy) await step(() => policy.forget(ep.id));
    if (record.createdNetns) await step(() => deleteEndpointNetns(ep.netns.replace(/^\/run\/netns\//, '')));
    // Only a lease this endpoint holds: after a failed adoption the address may be someone else's.
    const lease = ep.ipv4 ? this.#deps.ipam.leases().find((l) => l.ip === ep.ipv4) : undefined;
    if (lease?.owner === leaseOwner(ep.id)) await step(() => this.#deps.ipam.release(lease.ip));
    await step(() => this.#deps.store.remove(ep.id));
    if (errors.length > 0) throw errors[0];
  }

  /** The identity of an endpoint's labels (its namespace label added); `init` without an allocator. */
  async #allocateIdentity(ep: Pick<Endpoint, 'namespace' | 'labels'>): Promise<number> {
    const allocator = this.#deps.identity;
    if (!allocator) return PLACEHOLDER_IDENTITY;
    try {
      const { identity } = await allocator.allocate({ ...ep.labels, [NAMESPACE_LABEL]: ep.labels[NAMESPACE_LABEL] ?? ep.namespace });
      return identity.id;
    } catch (err) {
      // A label the allocator refuses (it names it in `path`) is the request's fault.
      const { path, reason } = err as { path?: unknown; reason?: unknown };
      if (err instanceof TypeError && typeof path === 'string' && typeof reason === 'string') throw new EndpointRequestError(reason, path);
      throw err;
    }
  }

  async #releaseIdentity(id: number): Promise<void> {
    if (!this.#deps.identity || id === PLACEHOLDER_IDENTITY) return;
    await this.#deps.identity.release(id).catch((err: unknown) => this.#log.warn({ identity: id, err }, 'releasing an identity failed'));
  }

  /**
   * Rewrites an endpoint's state file, policy (for new labels or identity), map entry and
   * ipcache entry with `next`.
   */
  async #setIdentity(live: Live, next: Endpoint, relabelled = false): Promise<void> {
    const changed = next.identity !== live.endpoint.identity;
    live.endpoint = next;
    live.record = { ...live.record, endpoint: next };
    this.#deps.store.write(live.record);
    if ((changed || relabelled) && next.state === 'ready') this.#realizePolicy(live);
    if (!changed || next.state !== 'ready') return;
    await this.#deps.datapath.attachEndpoint(this.#bpfView(live));
    await this.#deps.ipcache.apply({ upserts: [this.#ipcacheEntry(next)], deletes: [] });
    this.#log.info({ endpoint: next.id, identity: next.identity }, 'endpoint identity changed');
  }

  /**
   * Endpoints that got `init` while the allocator's store was away ask again. The asking runs
   * outside the queue (it may wait for the store); only the change of identity is queued.
   */
  async #retryIdentities(): Promise<void> {
    for (const { endpoint } of [...this.#live.values()]) {
      if (endpoint.identity !== PLACEHOLDER_IDENTITY && !this.#unconfirmed.has(endpoint.id)) continue;
      const identity = await this.#allocateIdentity(endpoint);
      if (identity === PLACEHOLDER_IDENTITY) return; // still away: the next round tries again
      await this.#serial(async () => {
        const live = this.#live.get(endpoint.id);
        // Deleted or relabelled meanwhile: this answer is nobody's.
        if (!live || live.endpoint.labels !== endpoint.labels || (live.endpoint.identity !== PLACEHOLDER_IDENTITY && !this.#unconfirmed.has(endpoint.id))) {
          await this.#releaseIdentity(identity);
          return;
        }
        this.#unconfirmed.delete(endpoint.id);
        if (identity === live.endpoint.identity) return;
        await this.#setIdentity(live, { ...live.endpoint, identity });
        this.#emit('upsert', live.endpoint);
      });
    }
  }

  async #ensureNode(): Promise<void> {
    if (this.#nodeReady) return;
    await this.#deps.datapath.ensureNode(await this.#deps.node());
    this.#nodeReady = true;
  }

  async #ensureLease(ip: string, id: number): Promise<void> {
    const lease = this.#deps.ipam.leases().find((l) => l.ip === ip);
    if (lease?.owner === leaseOwner(id)) return;
    if (lease) throw new Error(`its address ${ip} is leased by ${lease.owner}`);
    await this.#deps.ipam.allocate(ip, leaseOwner(id));
    this.#log.warn({ ip, endpoint: id }, 'endpoint had no IPAM lease; leased its address again');
  }

  #nextId(): number {
    for (let id = 1; id <= MAX_ENDPOINT_ID; id++) if (!this.#live.has(id) && !this.#reservedIds.has(id)) return id;
    throw new Error(`no endpoint id left (all ${MAX_ENDPOINT_ID} are in use)`);
  }

  /** Writes the endpoint's policy (when there is a repository); returns the revision realized. */
  #realizePolicy(live: Live): number {
    const policy = this.#deps.policy?.();
    if (!policy) return live.endpoint.policyRevision;
    policy.realize(this.#policyTarget(live.endpoint));
    return policy.revision(live.endpoint.id) ?? live.endpoint.policyRevision;
  }

  /**
   * Rules select an endpoint by its identity's labels (namespace labels added, churny labels
   * filtered), as they select its peers; without them (no allocator, or `init` while the
   * allocator's store is away) by its own labels and namespace.
   */
  #policyTarget(ep: Endpoint): PolicyTarget {
    const identityLabels = ep.identity !== PLACEHOLDER_IDENTITY ? this.#deps.identity?.lookup(ep.identity)?.labels : undefined;
    const labels = identityLabels ?? { ...ep.labels, [NAMESPACE_LABEL]: ep.labels[NAMESPACE_LABEL] ?? ep.namespace };
    return { id: ep.id, name: ep.name, namespace: ep.namespace, identity: ep.identity, labels, ...(ep.namedPorts ? { namedPorts: ep.namedPorts } : {}) };
  }

  #bpfView(live: Live): DatapathEndpoint {
    const ep = live.endpoint;
    return {
      id: ep.id,
      ipv4: ep.ipv4!,
      hostInterface: ep.hostInterface,
      hostIfindex: live.links.hostIfindex,
      hostMac: ep.hostMac,
      podIfindex: live.links.podIfindex,
      podMac: ep.mac,
      identity: ep.identity,
    };
  }

  #ipcacheEntry(ep: Endpoint) {
    return { prefix: `${ep.ipv4}/32`, identity: ep.identity, namespace: ep.namespace, podName: ep.name, source: 'local' as const };
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #emit(type: 'upsert' | 'delete', endpoint: Endpoint): void {
    for (const listener of this.#listeners) {
      try {
        listener({ type, endpoint });
      } catch (err) {
        this.#log.error({ err }, 'endpoint listener failed');
      }
    }
  }
}


/**
 * An endpoint's namespace must be one of its own: the agent's (the node's) and the host's are
 * refused — plumbing an endpoint there would put its address, routes and programs on the node itself.
 */
function refuseForeignNetns(path: string): void {
  const target = statOrUndefined(path);
  if (!target) throw new EndpointRequestError(`no network namespace at ${path}`, 'netns');
  for (const [whose, ns] of [['the agent\'s own', '/proc/self/ns/net'], ['the host\'s', '/proc/1/ns/net']] as const) {
    const taken = statOrUndefined(ns);
    if (taken && taken.dev === target.dev && taken.ino === target.ino) throw new EndpointRequestError(`${path} is ${whose} network namespace; an endpoint needs one of its own`, 'netns');
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
