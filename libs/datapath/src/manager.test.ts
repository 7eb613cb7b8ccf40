import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Endpoint, Identity, IdentityAllocator, Ipam, IpamLease, Labels, Logger } from '@cilia/core';
import type { NetlinkHandle } from '@cilia/netlink';
import { afterEach, describe, expect, it } from 'vitest';
import type { DatapathEndpoint, EndpointDatapath } from './backend.js';
import { LocalIpCache } from './ipcache.js';
import { CoreEndpointManager } from './manager.js';
import type { EndpointPolicy, PolicyTarget } from './policy/realizer.js';
import { EndpointStore, type EndpointRecord } from './store.js';

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };

class FakeIpam implements Ipam {
  readonly held = new Map<string, IpamLease>();
  lease(ip: string, owner: string): void {
    this.held.set(ip, { ip, owner, family: 'ipv4', pool: '10.0.0.0/24', gateway: '10.0.0.1' });
  }
  async allocateNext(): Promise<IpamLease> {
    throw new Error('not used');
  }
  async allocate(ip: string, owner: string): Promise<IpamLease> {
    if (this.held.has(ip)) throw new Error(`${ip} is leased by ${this.held.get(ip)!.owner}`);
    this.lease(ip, owner);
    return this.held.get(ip)!;
  }
  async release(ip: string): Promise<boolean> {
    return this.held.delete(ip);
  }
  leases(): readonly IpamLease[] {
    return [...this.held.values()];
  }
  pools() {
    return [];
  }
}

class FakeDatapath implements EndpointDatapath {
  readonly attached: number[] = [];
  kept: number[] = [];
  async ensureNode(): Promise<void> {}
  async attachEndpoint(ep: DatapathEndpoint): Promise<void> {
    this.attached.push(ep.id);
  }
  async detachEndpoint(): Promise<void> {}
  async pruneEndpoints(valid: readonly DatapathEndpoint[]): Promise<number> {
    this.kept = valid.map((e) => e.id);
    return 0;
  }
}

function record(id: number, state: Endpoint['state']): EndpointRecord {
  const endpoint: Endpoint = {
    id,
    name: `p${id}`,
    namespace: 'ns',
    labels: {},
    ipv4: `10.0.0.${10 + id}`,
    netns: `/proc/1/ns/net`,
    hostInterface: `lxcfake${id}`,
    hostMac: '02:00:00:00:00:01',
    interfaceName: 'eth0',
    mac: '02:00:00:00:00:02',
    ipv4Gateway: '10.0.0.1',
    identity: 5,
    state,
    policyRevision: 0,
  };
  return { endpoint, createdNetns: false, podIfindex: 2, createdAt: new Date(0).toISOString() };
}

describe('CoreEndpointManager.start (adoption after a restart)', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('adopts complete endpoints whose link exists, tears down the rest, releases orphan leases', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cilia-ep-unit-'));
    const store = new EndpointStore(dir);
    store.write(record(1, 'ready')); // link present: adopted
    store.write(record(2, 'ready')); // link gone (pod netns removed while the agent was down)
    store.write(record(3, 'regenerating')); // the agent died while creating it
    const five = record(5, 'ready'); // its address is someone else's now: not adoptable
    store.write({ ...five, endpoint: { ...five.endpoint, ipv4: '10.0.0.50' } });
    writeFileSync(join(store.dir, '4.json'), '{ not json');
    const ipam = new FakeIpam();
    ipam.lease('10.0.0.12', 'endpoint:2');
    ipam.lease('10.0.0.13', 'endpoint:3');
    ipam.lease('10.0.0.19', 'endpoint:9'); // no endpoint at all
    ipam.lease('10.0.0.50', 'someone-else');
    const links = new Set(['lxcfake1', 'lxcfake3', 'lxcfake5']);
    const deleted: string[] = [];
    const host = {
      findLink: async (name: string) => (links.has(name) ? { index: 100 + Number(name.slice(-1)), name } : undefined),
      deleteLink: async (ref: number) => {
        deleted.push(String(ref));
        links.delete(`lxcfake${ref - 100}`);
      },
    } as unknown as NetlinkHandle;
    const datapath = new FakeDatapath();
    const ipcache = new LocalIpCache(silent);
    const manager = new CoreEndpointManager({
      ipam,
      ipcache,
      datapath,
      store,
      logger: silent,
      host: async () => host,
      node: async () => ({ mtu: 1500, hostIPv4: [] }),
    });
    await manager.start();

    expect(manager.list().map((e) => e.id)).toEqual([1]);
    expect(datapath.attached).toEqual([1]);
    expect(datapath.kept).toEqual([1]);
    expect([...links]).toEqual(['lxcfake1']);
    expect(datapath.attached).not.toContain(5);
    expect(readdirSync(store.dir).sort()).toEqual(['1.json', '4.json']);
    // Endpoint 1 had lost its lease: it is leased again; the others' and the orphan's are released.
    expect(ipam.leases().map((l) => [l.ip, l.owner]).sort()).toEqual([
      ['10.0.0.11', 'endpoint:1'],
      ['10.0.0.50', 'someone-else'],
    ]);
    expect(ipcache.lookup('10.0.0.11')).toMatchObject({ prefix: '10.0.0.11/32', identity: 5, source: 'local' });
    expect(manager.findByContainer('nope')).toBeUndefined();
  });

  it('starts empty without touching the datapath when there is no state', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cilia-ep-unit-'));
    const datapath = new FakeDatapath();
    let ensured = false;
    datapath.ensureNode = async () => {
      ensured = true;
    };
    const manager = new CoreEndpointManager({
      ipam: new FakeIpam(),
      ipcache: new LocalIpCache(silent),
      datapath,
      store: new EndpointStore(dir),
      logger: silent,
      host: async () => ({ findLink: async () => undefined }) as unknown as NetlinkHandle,
      node: async () => ({ mtu: 1500, hostIPv4: [] }),
    });
    await manager.start();
    expect(manager.list()).toEqual([]);
    expect(ensured).toBe(false);
  });

  it('adopts an endpoint whose veth cannot be given the GSO size datapath.bigTcp asks for, saying so', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cilia-ep-unit-'));
    const store = new EndpointStore(dir);
    store.write(record(1, 'ready'));
    const ipam = new FakeIpam();
    ipam.lease('10.0.0.11', 'endpoint:1');
    const sizesAsked: unknown[] = [];
    const host = {
      findLink: async (name: string) => ({ index: 101, name, gsoIpv4MaxSize: 65_536 }),
      setLink: async (_: number, change: unknown) => {
        sizesAsked.push(change);
        throw Object.assign(new Error('Operation not supported'), { code: 'EOPNOTSUPP' });
      },
    } as unknown as NetlinkHandle;
    const warnings: Array<[unknown, string]> = [];
    const logger: Logger = { ...silent, warn: ((o: unknown, msg: string) => void warnings.push([o, msg])) as Logger['warn'], child: () => logger };
    const datapath = new FakeDatapath();
    const manager = new CoreEndpointManager({
      ipam,
      ipcache: new LocalIpCache(silent),
      datapath,
      store,
      logger,
      host: async () => host,
      node: async () => ({ mtu: 1500, hostIPv4: [], gsoMaxSize: 196_608 }),
    });
    await manager.start();
    expect(sizesAsked).toEqual([{ gsoIpv4MaxSize: 196_608, groIpv4MaxSize: 196_608 }]);
    expect(manager.list().map((e) => e.id)).toEqual([1]);
    expect(datapath.attached).toEqual([1]);
    expect(warnings).toContainEqual([expect.objectContaining({ endpoint: 1, from: 65_536, to: 196_608 }), 'cannot change the endpoint veth GSO/GRO size; it keeps the old one']);
  });
});

/** A stand-in allocator (logic test only): a fixed id per label set, `away` answers init. */
class FakeIdentities implements IdentityAllocator {
  away = false;
  readonly ids = new Map<string, number>();
  readonly refs = new Map<number, number>();
  readonly asked: Labels[] = [];
  async allocate(labels: Labels) {
    this.asked.push(labels);
    if (this.away) return { identity: { id: 5, labels: { 'reserved:init': '' }, scope: 'reserved' as const }, isNew: false };
    const key = JSON.stringify(Object.entries(labels).sort());
    const id = this.ids.get(key) ?? 300 + this.ids.size;
    this.ids.set(key, id);
    this.refs.set(id, (this.refs.get(id) ?? 0) + 1);
    return { identity: { id, labels, scope: 'cluster' as const }, isNew: false };
  }
  async release(id: number) {
    const n = (this.refs.get(id) ?? 0) - 1;
    this.refs.set(id, n);
    return n === 0;
  }
  async allocateCidr(): Promise<Identity> {
    throw new Error('not used');
  }
  lookup() {
    return undefined;
  }
  lookupByLabels() {
    return undefined;
  }
  list() {
    return [];
  }
  watch() {
    return () => undefined;
  }
}

describe('CoreEndpointManager with an identity allocator', () => {
  let dir: string;
  let manager: CoreEndpointManager | undefined;
  afterEach(() => {
    manager?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function setup(identity: FakeIdentities, records: EndpointRecord[]) {
    dir = mkdtempSync(join(tmpdir(), 'cilia-ep-unit-'));
    const store = new EndpointStore(dir);
    for (const r of records) store.write(r);
    const ipam = new FakeIpam();
    for (const r of records) ipam.lease(r.endpoint.ipv4!, `endpoint:${r.endpoint.id}`);
    const datapath = new FakeDatapath();
    const written: [number, number][] = [];
    datapath.attachEndpoint = async (ep) => {
      written.push([ep.id, ep.identity]);
    };
    const ipcache = new LocalIpCache(silent);
    const host = { findLink: async (name: string) => ({ index: 100 + Number(name.slice(-1)), name }) } as unknown as NetlinkHandle;
    manager = new CoreEndpointManager({ ipam, ipcache, datapath, store, logger: silent, host: async () => host, node: async () => ({ mtu: 1500, hostIPv4: [] }), identity, identityRetryMs: 20 });
    return { manager, written, ipcache, store };
  }
  const labelled = (id: number, labels: Labels, identity = 5): EndpointRecord => {
    const r = record(id, 'ready');
    return { ...r, endpoint: { ...r.endpoint, labels, identity } };
  };

  it('adopts endpoints with their labels’ identity (namespace label added), in the map and the ipcache; updateLabels and delete move the references', async () => {
    const ids = new FakeIdentities();
    const { manager, written, ipcache } = setup(ids, [labelled(1, { 'k8s:app': 'a' }), labelled(2, { 'k8s:app': 'a' }), labelled(3, { 'k8s:app': 'b' })]);
    await manager.start();
    expect(ids.asked[0]).toEqual({ 'k8s:app': 'a', 'k8s:io.kubernetes.pod.namespace': 'ns' });
    const byId = Object.fromEntries(manager.list().map((e) => [e.id, e.identity]));
    expect(byId[1]).toBe(byId[2]);
    expect(byId[3]).not.toBe(byId[1]);
    expect(byId[1]).toBeGreaterThanOrEqual(300);
    expect(written).toEqual([
      [1, byId[1]],
      [2, byId[2]],
      [3, byId[3]],
    ]);
    expect(ipcache.lookup('10.0.0.13')?.identity).toBe(byId[3]);
    const updated = await manager.updateLabels(3, { 'k8s:app': 'a' });
    expect(updated.identity).toBe(byId[1]);
    expect(ipcache.lookup('10.0.0.13')?.identity).toBe(byId[1]);
    expect(written.at(-1)).toEqual([3, byId[1]]);
    expect(ids.refs.get(byId[3]!)).toBe(0);
    expect(ids.refs.get(byId[1]!)).toBe(3);
  });

  it('keeps the recorded identity while the store is away and confirms it once it is back', async () => {
    const ids = new FakeIdentities();
    ids.away = true;
    const { manager, ipcache } = setup(ids, [labelled(1, { 'k8s:app': 'a' }, 777)]);
    await manager.start();
    expect(manager.get(1)?.identity).toBe(777);
    expect(ipcache.lookup('10.0.0.11')?.identity).toBe(777);
    ids.away = false;
    await expect.poll(() => manager.get(1)?.identity, { timeout: 2000 }).toBe(300);
    expect(ipcache.lookup('10.0.0.11')?.identity).toBe(300);
  });

  it('moves an endpoint that got init (store away) to its real identity in the background', async () => {
    const ids = new FakeIdentities();
    ids.away = true;
    const { manager, ipcache, written } = setup(ids, [labelled(1, { 'k8s:app': 'a' }, 5)]);
    await manager.start();
    expect(manager.get(1)?.identity).toBe(5);
    const seen: number[] = [];
    manager.subscribe((e) => seen.push(e.endpoint.identity));
    await new Promise((r) => setTimeout(r, 100));
    expect(manager.get(1)?.identity).toBe(5); // still away: still init, nothing broke
    ids.away = false;
    await expect.poll(() => manager.get(1)?.identity, { timeout: 2000 }).toBe(300);
    expect(ipcache.lookup('10.0.0.11')?.identity).toBe(300);
    expect(written.at(-1)).toEqual([1, 300]);
    expect(seen).toEqual([300]);
    expect(ids.refs.get(300)).toBe(1);
  });
});

/** Records what the manager asks of policy, in order with the datapath's attachments. */
class FakePolicy implements EndpointPolicy {
  readonly revisions = new Map<number, number>();
  current = 3;
  constructor(readonly log: string[]) {}
  realize(t: PolicyTarget): void {
    this.log.push(`realize ${t.id} ${t.identity} ${t.labels['k8s:app']}`);
    this.revisions.set(t.id, this.current);
  }
  forget(id: number): void {
    this.log.push(`forget ${id}`);
    this.revisions.delete(id);
  }
  prune(valid: ReadonlySet<number>): number {
    this.log.push(`prune keeping ${[...valid].join(',')}`);
    return 0;
  }
  revision(id: number): number | undefined {
    return this.revisions.get(id);
  }
}

describe('CoreEndpointManager with policy', () => {
  let dir: string;
  let manager: CoreEndpointManager | undefined;
  afterEach(() => {
    manager?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes policy before programs attach (adoption, new identity), prunes the rest, forgets on delete, and reports the realized revision', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cilia-ep-unit-'));
    const store = new EndpointStore(dir);
    const one = record(1, 'ready');
    store.write({ ...one, endpoint: { ...one.endpoint, labels: { 'k8s:app': 'a' }, namedPorts: { http: { port: 80, protocol: 'TCP' } } } });
    const ipam = new FakeIpam();
    ipam.lease('10.0.0.11', 'endpoint:1');
    const log: string[] = [];
    const datapath = new FakeDatapath();
    datapath.attachEndpoint = async (ep) => {
      log.push(`attach ${ep.id} ${ep.identity}`);
    };
    const ids = new FakeIdentities();
    ids.lookup = ((id: number) => ({ id, labels: { 'k8s:app': `identity-${id}` }, scope: 'cluster' })) as never;
    const policy = new FakePolicy(log);
    const targets: PolicyTarget[] = [];
    const realize = policy.realize.bind(policy);
    policy.realize = (t) => {
      targets.push(t);
      realize(t);
    };
    const host = { findLink: async (name: string) => ({ index: 100 + Number(name.slice(-1)), name }), deleteLink: async () => undefined } as unknown as NetlinkHandle;
    manager = new CoreEndpointManager({ ipam, ipcache: new LocalIpCache(silent), datapath, store, logger: silent, host: async () => host, node: async () => ({ mtu: 1500, hostIPv4: [] }), identity: ids, policy: () => policy });
    await manager.start();
    expect(log).toEqual(['realize 1 300 identity-300', 'attach 1 300', 'prune keeping 1']);
    // Selected by its identity's labels, with its named ports.
    expect(targets[0]).toMatchObject({ id: 1, name: 'p1', namespace: 'ns', identity: 300, namedPorts: { http: { port: 80, protocol: 'TCP' } } });
    expect(manager.get(1)?.policyRevision).toBe(3);
    policy.revisions.set(1, 4); // a delta realized since
    expect(manager.list()[0]?.policyRevision).toBe(4);
    expect(manager.get(1)?.policyRevision).toBe(4);

    log.length = 0;
    await manager.updateLabels(1, { 'k8s:app': 'b' });
    expect(log).toEqual(['realize 1 301 identity-301', 'attach 1 301']);
    log.length = 0;
    await manager.delete(1);
    expect(log).toEqual(['forget 1']);
  });
});
