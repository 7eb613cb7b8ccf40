import { mkdirSync, rmSync } from 'node:fs';
import { BpfMap, codec, ensureBpffs } from '@cilia/bpf';
import type { Labels, Logger, PolicyDelta, PolicyEnforcement, PolicyEntry, PolicyKey, PolicyRepository, PolicySubject } from '@cilia/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PolicyEndpointValue, PolicyMapKey, PolicyMapValue, type PolicyEndpointRecord, type PolicyMapKeyValue, type PolicyMapValueValue } from '../maps/policy.js';
import { PolicyMap } from './map.js';
import { PolicyRealizer, type PolicyTarget } from './realizer.js';

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };

type Entries = ReadonlyArray<readonly [PolicyKey, PolicyEntry]>;
interface Resolution {
  readonly enforcement: PolicyEnforcement;
  readonly entries: Entries;
}

const keyId = (k: PolicyKey) => `${k.direction}/${k.identity}/${k.protocol}/${k.port}/${k.endPort}`;

/**
 * A repository whose policy is a function of the subject's labels, replaced by `setPolicy`
 * (one revision); each watcher gets the difference for its subject — empty when unaffected —
 * as the real repository promises.
 */
class FakeRepository implements PolicyRepository {
  readonly enforcementMode = 'default' as const;
  #revision = 0;
  #policy: (labels: Labels) => Resolution;
  readonly watchers = new Set<{ subject: PolicySubject; last: Resolution; listener: (d: PolicyDelta) => void }>();

  constructor(policy: (labels: Labels) => Resolution) {
    this.#policy = policy;
  }
  setPolicy(policy: (labels: Labels) => Resolution): void {
    this.#policy = policy;
    this.#revision++;
    for (const w of [...this.watchers]) {
      const next = policy(w.subject.labels);
      const before = new Map(w.last.entries.map((e) => [keyId(e[0]), e]));
      const after = new Map(next.entries.map((e) => [keyId(e[0]), e]));
      const upserts = [...after].filter(([id, e]) => JSON.stringify(before.get(id)) !== JSON.stringify(e)).map(([, e]) => e);
      const deletes = [...before].filter(([id]) => !after.has(id)).map(([, e]) => e[0]);
      const changed = JSON.stringify(next.enforcement) !== JSON.stringify(w.last.enforcement);
      w.last = next;
      w.listener({ revision: this.#revision, upserts, deletes, ...(changed ? { enforcement: next.enforcement } : {}) });
    }
  }
  resolve(subject: PolicySubject) {
    return { revision: this.#revision, ...this.#policy(subject.labels) };
  }
  watch(subject: PolicySubject, listener: (d: PolicyDelta) => void) {
    const w = { subject, last: this.#policy(subject.labels), listener };
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }
  revision() {
    return this.#revision;
  }
  async import(): Promise<number> {
    throw new Error('not used');
  }
  async delete(): Promise<number> {
    throw new Error('not used');
  }
  rules() {
    return [];
  }
}

const allow = (identity: number, port: number, protocol = 6, direction: 'ingress' | 'egress' = 'ingress'): readonly [PolicyKey, PolicyEntry] => [
  { identity, direction, protocol, port, endPort: port },
  { verdict: 'allow', proxyPort: 0, derivedFrom: ['test'] },
];
const enforced = { ingress: true, egress: false };
const open = { ingress: false, egress: false };

/** Ingress to `app=web` from identity 300 on TCP ports `ports`; nothing for others. */
const webPolicy = (ports: number[]) => (labels: Labels): Resolution =>
  labels['k8s:app'] === 'web' ? { enforcement: enforced, entries: ports.map((p) => allow(300, p)) } : { enforcement: open, entries: [] };

const target = (id: number, app: string): PolicyTarget => ({ id, name: `${app}-${id}`, namespace: 'x', identity: 1000 + id, labels: { 'k8s:app': app, 'k8s:io.kubernetes.pod.namespace': 'x' } });

const pinRoot = `/sys/fs/bpf/cilia-test-realizer-${process.pid}`;

/** The policy maps as the datapath pins them (created here, so the test needs no object file). */
function openMaps(): { policy: BpfMap<PolicyMapKeyValue, PolicyMapValueValue>; endpoints: BpfMap<number, PolicyEndpointRecord>; close(): void } {
  const open = <K, V>(name: string, spec: Parameters<typeof BpfMap.create>[0], codecs: { key: never; value: never }) => {
    try {
      return BpfMap.openPinned<K, V>(`${pinRoot}/${name}`, codecs);
    } catch {
      const m = BpfMap.create<K, V>(spec, codecs);
      m.pin(`${pinRoot}/${name}`);
      return m;
    }
  };
  const policy = open<PolicyMapKeyValue, PolicyMapValueValue>('cilia_policy', { type: 'lpm_trie', name: 'cilia_policy', keySize: 16, valueSize: 8, maxEntries: 4096, flags: 1 }, { key: PolicyMapKey as never, value: PolicyMapValue as never });
  const endpoints = open<number, PolicyEndpointRecord>('cilia_policy_endpoints', { type: 'hash', name: 'cilia_policy_ep', keySize: 4, valueSize: 8, maxEntries: 1024 }, { key: codec.u32 as never, value: PolicyEndpointValue as never });
  return { policy, endpoints, close: () => [policy, endpoints].forEach((m) => m.close()) };
}

describe('PolicyRealizer (a real PolicyMap on pinned maps, a fake repository)', () => {
  const opened: { close(): void }[] = [];
  const realizers: PolicyRealizer[] = [];

  beforeAll(() => {
    ensureBpffs('/sys/fs/bpf');
    mkdirSync(pinRoot, { recursive: true });
  });
  afterEach(() => {
    realizers.splice(0).forEach((r) => r.close());
    opened.splice(0).forEach((m) => m.close());
    rmSync(pinRoot, { recursive: true, force: true });
    mkdirSync(pinRoot, { recursive: true });
  });
  afterAll(() => rmSync(pinRoot, { recursive: true, force: true }));

  function setup(repo: FakeRepository, maxEntriesPerEndpoint?: number) {
    const maps = openMaps();
    opened.push(maps);
    const map = new PolicyMap({ policy: maps.policy, endpoints: maps.endpoints, logger: silent, ...(maxEntriesPerEndpoint ? { maxEntriesPerEndpoint } : {}) });
    const realizer = new PolicyRealizer({ repository: repo, map, logger: silent });
    realizers.push(realizer);
    return { realizer, map, maps };
  }

  it('writes the resolved state and enforcement, then follows deltas, tracking the realized revision', () => {
    const repo = new FakeRepository(webPolicy([80]));
    const { realizer, maps } = setup(repo);
    realizer.realize(target(1, 'web'));
    realizer.realize(target(2, 'db'));
    expect(realizer.revision(1)).toBe(0);
    expect(maps.endpoints.lookup(1)).toMatchObject({ ingress: 1, egress: 0 });
    expect(maps.endpoints.lookup(2)).toMatchObject({ ingress: 0, egress: 0 });
    expect(realizer.describe(1)).toEqual({
      revision: 0,
      enforcement: { ingress: 'enforce', egress: 'allow-all' },
      entries: [{ identity: 300, direction: 'ingress', protocol: 6, port: 80, endPort: 80, verdict: 'allow', proxyPort: 0 }],
    });

    repo.setPolicy(webPolicy([80, 443]));
    expect(realizer.describe(1)?.entries.map((e) => e.port)).toEqual([80, 443]);
    // Every revision reaches every endpoint, affected or not.
    expect([realizer.revision(1), realizer.revision(2)]).toEqual([1, 1]);
    expect(maps.endpoints.lookup(1)?.revision).toBe(1);

    repo.setPolicy(() => ({ enforcement: open, entries: [] }));
    expect(realizer.describe(1)).toMatchObject({ revision: 2, enforcement: { ingress: 'allow-all', egress: 'allow-all' }, entries: [] });
    expect([...maps.policy.keys()]).toEqual([]);
  });

  it('on new labels: stops the old watch, resolves again and writes only the difference', () => {
    const repo = new FakeRepository(webPolicy([80]));
    const { realizer } = setup(repo);
    realizer.realize(target(1, 'db'));
    expect(realizer.describe(1)?.entries).toEqual([]);
    const outcome = realizer.realize(target(1, 'web'));
    expect(outcome).toEqual({ failClosed: false, written: 1, deleted: 0 });
    expect(repo.watchers.size).toBe(1);
    expect([...repo.watchers][0]!.subject.labels['k8s:app']).toBe('web');
    repo.setPolicy(webPolicy([81]));
    expect(realizer.describe(1)?.entries.map((e) => e.port)).toEqual([81]);
  });

  it('forgets an endpoint: no more watch, nothing left in either map', () => {
    const repo = new FakeRepository(webPolicy([80]));
    const { realizer, maps } = setup(repo);
    realizer.realize(target(1, 'web'));
    realizer.forget(1);
    expect(repo.watchers.size).toBe(0);
    expect(realizer.revision(1)).toBeUndefined();
    expect(realizer.describe(1)).toBeUndefined();
    expect([...maps.policy.keys()]).toEqual([]);
    expect(maps.endpoints.lookup(1)).toBeUndefined();
  });

  it('after a restart adopts the pinned state: the same policy writes nothing, gone endpoints are pruned', () => {
    const repo = new FakeRepository(webPolicy([80, 443]));
    const first = setup(repo);
    first.realizer.realize(target(1, 'web'));
    first.realizer.realize(target(2, 'web'));
    first.realizer.close();
    first.maps.close();

    const second = setup(repo); // the maps reopened from their pins, a new writer adopting them
    expect(second.realizer.realize(target(1, 'web'))).toEqual({ failClosed: false, written: 0, deleted: 0 });
    expect(second.realizer.prune(new Set([1]))).toBe(1);
    expect(second.maps.endpoints.lookup(2)).toBeUndefined();
    expect([...second.maps.policy.keys()].map((k) => k.endpointId)).toEqual([1, 1]);
    expect(second.realizer.describe(1)?.entries.map((e) => e.port)).toEqual([80, 443]);
  });

  it('names an endpoint that fails closed (over its quota) and clears it once its policy fits again', () => {
    const repo = new FakeRepository(webPolicy([80]));
    const { realizer, maps } = setup(repo, 4);
    realizer.realize(target(7, 'web'));
    expect(realizer.problems()).toEqual([]);
    repo.setPolicy(webPolicy([80, 81, 82, 83, 84, 85]));
    expect(realizer.problems()).toEqual([
      'endpoint 7 (x/web-7): 6 policy map entries exceed the per-endpoint quota of 4 (maxEntriesPerEndpoint); its traffic is dropped (fail closed)',
    ]);
    expect(maps.endpoints.lookup(7)).toMatchObject({ ingress: 2, egress: 2 });
    expect(realizer.describe(7)).toMatchObject({ revision: 1, enforcement: { ingress: 'deny-all', egress: 'deny-all' }, failClosed: expect.stringContaining('quota of 4') });
    repo.setPolicy(webPolicy([80, 81]));
    expect(realizer.problems()).toEqual([]);
    expect(realizer.describe(7)).toMatchObject({ revision: 2, enforcement: { ingress: 'enforce', egress: 'allow-all' } });
    expect(realizer.describe(7)?.failClosed).toBeUndefined();
  });

  it('writes the full state again when applying a delta throws', () => {
    const repo = new FakeRepository(webPolicy([80]));
    const { map } = setup(repo);
    let failures = 1;
    const flaky = Object.assign(Object.create(map) as PolicyMap, {
      apply: (id: number, delta: PolicyDelta) => {
        if (failures-- > 0) throw new Error('injected');
        return map.apply(id, delta);
      },
      sync: map.sync.bind(map),
      dump: map.dump.bind(map),
      remove: map.remove.bind(map),
      endpoints: map.endpoints.bind(map),
      failClosed: map.failClosed.bind(map),
    });
    const realizer = new PolicyRealizer({ repository: repo, map: flaky, logger: silent });
    realizers.push(realizer);
    realizer.realize(target(1, 'web'));
    repo.setPolicy(webPolicy([8080]));
    expect(realizer.revision(1)).toBe(1);
    expect(realizer.describe(1)?.entries.map((e) => e.port)).toEqual([8080]);
    expect(repo.watchers.size).toBe(1);
  });
});
