import type { IpCacheDelta, PolicyEntry } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import type { PolicyRule } from '../model.js';
import { PolicyEngine } from './engine.js';
import { FakeIdentities } from './fake-identities.js';
import { policyKeyString } from './ports.js';
import { Accumulator, endpoints, peerRule, rule, sel, silentLogger, tcp, toMap } from './test-rules.js';

const NS = 'k8s:io.kubernetes.pod.namespace';
const podLabels = (app: string, ns = 'x', extra: Record<string, string> = {}) => ({ 'k8s:app': app, [NS]: ns, ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [`k8s:${k}`, v])) });

function setup(options: { enforcement?: 'default' | 'always' | 'never'; allowLocalhost?: boolean } = {}) {
  const identities = new FakeIdentities();
  const ipcacheBatches: IpCacheDelta[] = [];
  const ipcache = {
    apply: async (d: IpCacheDelta) => void ipcacheBatches.push(d),
    lookup: () => undefined,
    list: () => [],
    subscribe: () => () => {},
  };
  const engine = new PolicyEngine({ identities, ipcache, enforcement: options.enforcement ?? 'default', allowLocalhost: options.allowLocalhost ?? true, logger: silentLogger() });
  return { identities, engine, ipcacheBatches };
}

const key = (identity: number, direction: 'ingress' | 'egress', protocol = 0, port = 0, endPort = port) => policyKeyString({ identity, direction, protocol, port, endPort });
const allow = (...derivedFrom: string[]): PolicyEntry => ({ verdict: 'allow', proxyPort: 0, derivedFrom });
const deny = (...derivedFrom: string[]): PolicyEntry => ({ verdict: 'deny', proxyPort: 0, derivedFrom });

describe('PolicyEngine resolution', () => {
  it('resolves an ingress allow into one entry per peer identity and port, plus allow-localhost', async () => {
    const { identities, engine } = setup();
    const a = identities.add(podLabels('a'));
    const b = identities.add(podLabels('b'));
    const b2 = identities.add(podLabels('b', 'x', { tier: 'web' }));
    const r = rule('allow-b', sel({ app: 'a' }), { ingress: [peerRule([endpoints({ app: 'b' })], [tcp(80), tcp(8000, 8080)])] });
    expect(await engine.importRules([r])).toBe(1);
    const { entries, enforcement, revision } = engine.resolve({ endpointId: 1, identity: a.id, labels: a.labels });
    expect(revision).toBe(1);
    expect(enforcement).toEqual({ ingress: true, egress: false });
    expect(toMap(entries)).toEqual(
      new Map([
        [key(1, 'ingress'), allow('allow-localhost')],
        [key(b.id, 'ingress', 6, 80), allow(r.id)],
        [key(b.id, 'ingress', 6, 8000, 8080), allow(r.id)],
        [key(b2.id, 'ingress', 6, 80), allow(r.id)],
        [key(b2.id, 'ingress', 6, 8000, 8080), allow(r.id)],
      ]),
    );
    // A subject no rule selects: nothing enforced, no entries.
    expect(engine.resolve({ endpointId: 2, identity: b.id, labels: b.labels })).toEqual({ revision: 1, enforcement: { ingress: false, egress: false }, entries: [] });
  });

  it('lets deny beat allow on the same key and names only the deny rules', async () => {
    const { identities, engine } = setup({ allowLocalhost: false });
    const a = identities.add(podLabels('a'));
    const b = identities.add(podLabels('b'));
    const allowAll = rule('allow-all', sel({ app: 'a' }), { ingress: [peerRule('all')] });
    const allowB = rule('allow-b', sel({ app: 'a' }), { ingress: [peerRule([endpoints({ app: 'b' })], [tcp(80)])] });
    const denyB = rule('deny-b', sel({ app: 'a' }), { ingressDeny: [peerRule([endpoints({ app: 'b' })], [tcp(80)])] });
    await engine.importRules([allowAll, allowB, denyB]);
    const state = toMap(engine.resolve({ endpointId: 1, identity: a.id, labels: a.labels }).entries);
    expect(state).toEqual(new Map([[key(0, 'ingress'), allow(allowAll.id)], [key(b.id, 'ingress', 6, 80), deny(denyB.id)]]));
  });

  it('delivers one delta per revision to every watcher, empty for those a change does not touch', async () => {
    const { identities, engine } = setup();
    const a = identities.add(podLabels('a'));
    const b = identities.add(podLabels('b'));
    const wa = new Accumulator(engine, { endpointId: 1, identity: a.id, labels: a.labels });
    const wb = new Accumulator(engine, { endpointId: 2, identity: b.id, labels: b.labels });
    await engine.importRules([rule('to-a', sel({ app: 'a' }), { ingress: [peerRule([endpoints({ app: 'b' })])] })]);
    await engine.importRules([rule('to-a-2', sel({ app: 'a' }), { ingress: [peerRule([endpoints({ app: 'c' })])] })]);
    expect(wa.deltas.map((d) => d.revision)).toEqual([1, 2]);
    expect(wb.deltas.map((d) => d.revision)).toEqual([1, 2]);
    expect(wb.deltas.every((d) => d.upserts.length === 0 && d.deletes.length === 0 && d.enforcement === undefined)).toBe(true);
    expect(wa.deltas[0]!.enforcement).toEqual({ ingress: true, egress: false });
    expect(wa.deltas[0]!.upserts.map(([k]) => policyKeyString(k)).sort()).toEqual([key(1, 'ingress'), key(b.id, 'ingress')].sort());
    // The second rule selects an app no identity has yet: nothing to write, revision still delivered.
    expect(wa.deltas[1]!.upserts).toEqual([]);
    wa.unwatch();
    wb.unwatch();
  });

  it('updates only the affected entries when an identity appears or goes away', async () => {
    const { identities, engine } = setup();
    const a = identities.add(podLabels('a'));
    const d = identities.add(podLabels('d'));
    await engine.importRules([rule('from-b', sel({ app: 'a' }), { ingress: [peerRule([endpoints({ app: 'b' })], [tcp(80)])] })]);
    const wa = new Accumulator(engine, { endpointId: 1, identity: a.id, labels: a.labels });
    const wd = new Accumulator(engine, { endpointId: 2, identity: d.id, labels: d.labels });
    const b = identities.add(podLabels('b', 'x', { v: '2' }));
    expect(wa.deltas).toHaveLength(1);
    expect(wa.deltas[0]).toEqual({ revision: 1, upserts: [[{ identity: b.id, direction: 'ingress', protocol: 6, port: 80, endPort: 80 }, allow('CiliumNetworkPolicy/x/from-b')]], deletes: [] });
    expect(wd.deltas).toHaveLength(0);
    identities.remove(b.id);
    expect(wa.deltas[1]).toEqual({ revision: 1, upserts: [], deletes: [{ identity: b.id, direction: 'ingress', protocol: 6, port: 80, endPort: 80 }] });
    expect(wa.state).toEqual(toMap(engine.resolve(wa.subject).entries));
  });

  it('maps entities: all to identity 0, world to 2 and the CIDR identities, cluster to reserved and cluster ones', async () => {
    const { identities, engine } = setup({ allowLocalhost: false });
    const a = identities.add(podLabels('a'));
    const b = identities.add(podLabels('b'));
    await engine.importRules([
      rule('world', sel({ app: 'a' }), { egress: [peerRule([{ kind: 'entity', entity: 'world' }], [tcp(443)])], ingress: [peerRule([{ kind: 'entity', entity: 'cluster' }], [tcp(80)])] }),
      rule('cidr', sel({ app: 'b' }), { egress: [peerRule([{ kind: 'cidr', cidr: '192.0.2.0/24', except: [] }])] }),
      rule('all', sel({ app: 'b' }), { ingress: [peerRule([{ kind: 'entity', entity: 'all' }], [tcp(22)])] }),
    ]);
    const cidrId = identities.lookupByLabels({ 'cidr:192.0.2.0/24': '', 'reserved:world': '' })!.id;
    const egress = [...toMap(engine.resolve({ endpointId: 1, identity: a.id, labels: a.labels }).entries).keys()].filter((k) => k.includes('/e/'));
    expect(egress.sort()).toEqual([key(2, 'egress', 6, 443), key(cidrId, 'egress', 6, 443)].sort());
    const ingressIds = [...toMap(engine.resolve({ endpointId: 1, identity: a.id, labels: a.labels }).entries).keys()].filter((k) => k.includes('/i/')).map((k) => Number(k.split('/')[0]));
    expect(ingressIds.sort((x, y) => x - y)).toEqual([1, 3, 4, 5, 6, 7, 8, a.id, b.id]);
    expect([...toMap(engine.resolve({ endpointId: 2, identity: b.id, labels: b.labels }).entries).keys()]).toContain(key(0, 'ingress', 6, 22));
  });

  it('gives CIDR peers local identities in the ipcache and selects the prefixes inside minus except', async () => {
    const { identities, engine, ipcacheBatches } = setup();
    const a = identities.add(podLabels('a'));
    const r = rule('cidr', sel({ app: 'a' }), {
      egress: [peerRule([{ kind: 'cidr', cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }], [tcp(53)])],
      egressDeny: [peerRule([{ kind: 'cidr', cidr: '10.2.0.0/16', except: [] }])],
    });
    const w = new Accumulator(engine, { endpointId: 1, identity: a.id, labels: a.labels });
    await engine.importRules([r]);
    const idOf = (p: string) => identities.lookupByLabels({ [`cidr:${p}`]: '', 'reserved:world': '' })?.id;
    const [outer, hole, inner] = [idOf('10.0.0.0/8')!, idOf('10.1.0.0/16')!, idOf('10.2.0.0/16')!];
    expect(ipcacheBatches.flatMap((b) => b.upserts).map((e) => [e.prefix, e.identity, e.source]).sort()).toEqual(
      [
        ['10.0.0.0/8', outer, 'generated'],
        ['10.1.0.0/16', hole, 'generated'],
        ['10.2.0.0/16', inner, 'generated'],
      ].sort(),
    );
    expect(w.state).toEqual(
      new Map([
        [key(outer, 'egress', 6, 53), allow(r.id)],
        [key(inner, 'egress', 6, 53), allow(r.id)],
        [key(inner, 'egress'), deny(r.id)],
      ]),
    );
    // Another policy's prefix inside 10/8 joins the selection as its identity appears.
    const other = rule('host-cidr', sel({ app: 'zzz' }), { egress: [peerRule([{ kind: 'cidr', cidr: '10.9.9.9/32', except: [] }])] });
    await engine.importRules([other]);
    expect(w.state.get(key(idOf('10.9.9.9/32')!, 'egress', 6, 53))).toEqual(allow(r.id));
    await engine.delete({ name: 'cidr' });
    await engine.delete({ name: 'host-cidr', namespace: 'x', kind: 'CiliumNetworkPolicy' });
    expect(w.state).toEqual(new Map());
    expect(idOf('10.0.0.0/8')).toBeUndefined();
    expect(ipcacheBatches.flatMap((b) => b.deletes).sort()).toEqual(['10.0.0.0/8', '10.1.0.0/16', '10.2.0.0/16', '10.9.9.9/32']);
  });

  it('ANDs the requires of any rule selecting the subject into every endpoints peer', async () => {
    const { identities, engine } = setup({ allowLocalhost: false });
    const a = identities.add(podLabels('a', 'x', { env: 'prod' }));
    const bProd = identities.add(podLabels('b', 'x', { env: 'prod' }));
    const bDev = identities.add(podLabels('b', 'x', { env: 'dev' }));
    const w = new Accumulator(engine, { endpointId: 1, identity: a.id, labels: a.labels });
    await engine.importRules([rule('from-b', sel({ app: 'a' }), { ingress: [peerRule([endpoints({ app: 'b' })], [tcp(80)])] })]);
    expect([...w.state.keys()].sort()).toEqual([key(bDev.id, 'ingress', 6, 80), key(bProd.id, 'ingress', 6, 80)].sort());
    const requires = rule('prod-only', sel({ env: 'prod' }), { ingressRequires: [sel({ env: 'prod' })], enforces: { ingress: false, egress: false } });
    await engine.importRules([requires]);
    expect([...w.state.keys()]).toEqual([key(bProd.id, 'ingress', 6, 80)]);
    expect(w.state).toEqual(toMap(engine.resolve(w.subject).entries));
    await engine.delete({ name: 'prod-only' });
    expect([...w.state.keys()].sort()).toEqual([key(bDev.id, 'ingress', 6, 80), key(bProd.id, 'ingress', 6, 80)].sort());
  });

  it('resolves ingress named ports on the subject and egress ones on every watched endpoint', async () => {
    const { identities, engine } = setup({ allowLocalhost: false });
    const a = identities.add(podLabels('a'));
    const b = identities.add(podLabels('b'));
    const named = (name: string, protocol: PolicyRule['ingress'][number]['ports'][number]['protocol'] = 'TCP') => ({ protocol, port: 0, name });
    await engine.importRules([
      rule('in', sel({ app: 'a' }), { ingress: [peerRule([endpoints({ app: 'b' })], [named('http'), named('nope')])] }),
      rule('out', sel({ app: 'b' }), { egress: [peerRule([endpoints({ app: 'a' })], [named('http'), named('dns', 'ANY')])] }),
    ]);
    const wa = new Accumulator(engine, { endpointId: 1, identity: a.id, labels: a.labels, namedPorts: { http: { port: 8080, protocol: 'TCP' }, dns: { port: 53, protocol: 'UDP' } } });
    expect([...wa.state.keys()]).toEqual([key(b.id, 'ingress', 6, 8080)]);
    const wb = new Accumulator(engine, { endpointId: 2, identity: b.id, labels: b.labels });
    expect([...wb.state.keys()].sort()).toEqual([key(a.id, 'egress', 6, 8080), key(a.id, 'egress', 17, 53)].sort());
    // Another endpoint binds http elsewhere: b's egress learns it; when a goes, a's bindings go.
    const c = identities.add(podLabels('c'));
    const wc = new Accumulator(engine, { endpointId: 3, identity: c.id, labels: c.labels, namedPorts: { http: { port: 9090, protocol: 'TCP' } } });
    expect([...wb.state.keys()].sort()).toEqual([key(a.id, 'egress', 6, 8080), key(a.id, 'egress', 6, 9090), key(a.id, 'egress', 17, 53)].sort());
    wa.unwatch();
    expect([...wb.state.keys()]).toEqual([key(a.id, 'egress', 6, 9090)]);
    expect(wb.state).toEqual(toMap(engine.resolve(wb.subject).entries));
    wc.unwatch();
    wb.unwatch();
  });

  it('follows the enforcement mode: always enforces both directions, never resolves nothing', async () => {
    const always = setup({ enforcement: 'always' });
    const a = always.identities.add(podLabels('a'));
    expect(always.engine.resolve({ endpointId: 1, identity: a.id, labels: a.labels })).toEqual({
      revision: 0,
      enforcement: { ingress: true, egress: true },
      entries: [[{ identity: 1, direction: 'ingress', protocol: 0, port: 0, endPort: 0 }, allow('allow-localhost')]],
    });
    const never = setup({ enforcement: 'never' });
    const n = never.identities.add(podLabels('a'));
    await never.engine.importRules([rule('deny', sel({ app: 'a' }), { ingressDeny: [peerRule('all')] })]);
    expect(never.engine.resolve({ endpointId: 1, identity: n.id, labels: n.labels })).toEqual({ revision: 1, enforcement: { ingress: false, egress: false }, entries: [] });
  });

  it('enforces a direction that only deny rules without default deny select, adding an allow-all entry (Cilium)', async () => {
    const { identities, engine } = setup();
    const a = identities.add(podLabels('a'));
    const b = identities.add(podLabels('b'));
    const w = new Accumulator(engine, { endpointId: 1, identity: a.id, labels: a.labels });
    const denyB = rule('deny-b', sel({ app: 'a' }), { ingressDeny: [peerRule([endpoints({ app: 'b' })], [tcp(22)])], enforces: { ingress: false, egress: false } });
    await engine.importRules([denyB]);
    const allowAll = allow('allow-all (no default deny)');
    const denyOnly = new Map([
      [key(0, 'ingress'), allowAll],
      [key(1, 'ingress'), allow('allow-localhost')],
      [key(b.id, 'ingress', 6, 22), deny(denyB.id)],
    ]);
    expect(w.deltas[0]!.enforcement).toEqual({ ingress: true, egress: false });
    expect(w.state).toEqual(denyOnly);
    expect(toMap(engine.resolve(w.subject).entries)).toEqual(denyOnly);
    // A rule that enforces ingress (default deny) takes the allow-all away; deleting it brings it back.
    const allowC = rule('allow-c', sel({ app: 'a' }), { ingress: [peerRule([endpoints({ app: 'c' })], [tcp(80)])] });
    await engine.importRules([allowC]);
    expect(w.state.has(key(0, 'ingress'))).toBe(false);
    expect(w.enforcement).toEqual({ ingress: true, egress: false });
    await engine.delete({ name: 'allow-c', namespace: 'x' });
    expect(w.state).toEqual(denyOnly);
    // Without the deny rule the direction is not enforced again and holds nothing.
    await engine.delete({ name: 'deny-b', namespace: 'x' });
    expect(w.enforcement).toEqual({ ingress: false, egress: false });
    expect(w.state.size).toBe(0);
    // Allow rules without default deny alone enforce nothing and add no allow-all.
    await engine.importRules([rule('open', sel({ app: 'a' }), { ingress: [peerRule([endpoints({ app: 'b' })], [tcp(80)])], enforces: { ingress: false, egress: false } })]);
    expect(w.enforcement).toEqual({ ingress: false, egress: false });
    expect(w.state.has(key(0, 'ingress'))).toBe(false);
  });

  it('traces a deny-only direction as enforced: the deny drops, the rest passes through the allow-all', async () => {
    const { identities, engine } = setup();
    identities.add(podLabels('a'));
    identities.add(podLabels('b'));
    identities.add(podLabels('c'));
    await engine.importRules([rule('deny-b', sel({ app: 'a' }), { ingressDeny: [peerRule([endpoints({ app: 'b' })], [tcp(22)])], enforces: { ingress: false, egress: false } })]);
    const denied = engine.trace({ src: podLabels('b'), dst: podLabels('a'), dport: 22, protocol: 'TCP' });
    expect(denied.ingress).toMatchObject({ enforced: true, verdict: 'denied', deniedBy: ['CiliumNetworkPolicy/x/deny-b'] });
    const passed = engine.trace({ src: podLabels('c'), dst: podLabels('a'), dport: 22, protocol: 'TCP' });
    expect(passed.ingress).toMatchObject({ enforced: true, verdict: 'allowed', allowedBy: ['allow-all (no default deny)'] });
    expect(passed.ingress.lines[0]).toMatch(/is enforced for the deny rules of CiliumNetworkPolicy\/x\/deny-b, with everything else allowed/);
  });

  it('replaces a policy of the same kind, namespace and name and lists one entry per policy', async () => {
    const { identities, engine } = setup();
    const a = identities.add(podLabels('a'));
    const w = new Accumulator(engine, { endpointId: 1, identity: a.id, labels: a.labels });
    await engine.importRules([rule('p', sel({ app: 'a' }), { ingress: [peerRule('all', [tcp(80)])], notes: ['L7 rules enforced at L4'] })]);
    await engine.importRules([rule('p', sel({ app: 'a' }), { ingress: [peerRule('all', [tcp(81)])] })]);
    expect(w.state).toEqual(new Map([[key(1, 'ingress'), allow('allow-localhost')], [key(0, 'ingress', 6, 81), allow('CiliumNetworkPolicy/x/p')]]));
    expect(w.deltas[1]!.deletes).toEqual([{ identity: 0, direction: 'ingress', protocol: 6, port: 80, endPort: 80 }]);
    expect(engine.rules().map((r) => [r.kind, r.namespace, r.name, r.revision, r.notes])).toEqual([['CiliumNetworkPolicy', 'x', 'p', 2, []]]);
  });

  it('logs an import or delete of many policies as counts and at most ten names at info level', async () => {
    const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
    const capture = (level: string) => (fields: object, message?: string) => void lines.push({ level, fields: fields as Record<string, unknown>, message: message ?? '' });
    const logger = { trace: capture('trace'), debug: capture('debug'), info: capture('info'), warn: capture('warn'), error: capture('error'), fatal: capture('fatal'), child: () => logger };
    const engine = new PolicyEngine({ identities: new FakeIdentities(), enforcement: 'default', allowLocalhost: true, logger: logger as never });
    await engine.importRules(Array.from({ length: 25 }, (_, i) => rule(`p${i}`, sel({ app: 'a' }), { ingress: [peerRule('all')] })));
    const imported = lines.find((l) => l.level === 'info' && l.message === 'policies imported')!;
    expect(imported.fields).toMatchObject({ revision: 1, policies: 25, moreNames: 15 });
    expect(imported.fields.names).toHaveLength(10);
    expect(imported.fields.names).toContain('CiliumNetworkPolicy/x/p0');
    expect(lines.find((l) => l.level === 'debug' && l.message === 'policies imported: every name')?.fields.names).toHaveLength(25);
    await engine.delete({ name: 'p3', namespace: 'x' });
    expect(lines.find((l) => l.level === 'info' && l.message === 'policies deleted')?.fields).toEqual(expect.objectContaining({ policies: 1, names: ['CiliumNetworkPolicy/x/p3'] }));
    expect(lines.find((l) => l.message === 'policies deleted')?.fields).not.toHaveProperty('moreNames');
    engine.close();
  });

  it('refuses an invalid import as a whole and a delete that matches nothing', async () => {
    const { engine } = setup();
    await engine.importRules([rule('keep', sel({ app: 'a' }), { ingress: [peerRule('all')] })]);
    const refused = await engine.import([{ kind: 'NoSuchKind' }]).catch((e: unknown) => e);
    expect((refused as Error).name).toBe('PolicyValidationError');
    expect((refused as { errors: { path: string }[] }).errors.every((e) => e.path.startsWith('documents[0]'))).toBe(true);
    expect(engine.revision()).toBe(1);
    expect(engine.rules().map((r) => r.name)).toEqual(['keep']);
    await expect(engine.delete({ name: 'missing', namespace: 'x' })).rejects.toThrow(/no policy named "missing" in namespace "x"/);
    expect(engine.revision()).toBe(1);
    expect(await engine.delete({ all: true })).toBe(2);
    await expect(engine.delete({ all: true })).rejects.toThrow(/no policy is stored/);
  });
});

describe('PolicyEngine trace', () => {
  it('names the rules that enforce, allow and deny, for both directions', async () => {
    const { identities, engine } = setup();
    identities.add(podLabels('a'));
    identities.add(podLabels('b'));
    await engine.importRules([
      rule('a-out', sel({ app: 'a' }), { egress: [peerRule([endpoints({ app: 'b' })], [tcp(80)], 'spec.egress[0]')] }),
      rule('b-in', sel({ app: 'b' }), { ingress: [peerRule([endpoints({ app: 'a' })], [tcp(80), tcp(81)])] }),
      rule('b-deny', sel({ app: 'b' }), { ingressDeny: [peerRule([endpoints({ app: 'a' })], [tcp(81)])] }),
    ]);
    const ok = engine.trace({ src: podLabels('a'), dst: podLabels('b'), dport: 80, protocol: 'TCP' });
    expect(ok.verdict).toBe('allowed');
    expect(ok.egress).toMatchObject({ enforced: true, verdict: 'allowed', allowedBy: ['CiliumNetworkPolicy/x/a-out'], deniedBy: [] });
    expect(ok.egress.lines[0]).toBe(`egress of {k8s:app=a, ${NS}=x} is enforced by CiliumNetworkPolicy/x/a-out`);
    expect(ok.egress.lines).toContain(`rule CiliumNetworkPolicy/x/a-out (spec.egress[0]) allows port 80/TCP to {k8s:app=b, ${NS}=x}`);
    expect(ok.ingress).toMatchObject({ enforced: true, verdict: 'allowed', allowedBy: ['CiliumNetworkPolicy/x/b-in'] });
    const denied = engine.trace({ src: podLabels('a'), dst: podLabels('b'), dport: 81, protocol: 'tcp' });
    expect(denied.verdict).toBe('denied');
    expect(denied.egress).toMatchObject({ verdict: 'denied', allowedBy: [], deniedBy: [] });
    expect(denied.egress.lines.at(-1)).toBe('egress denied: no rule allows it (default deny)');
    expect(denied.ingress).toMatchObject({ verdict: 'denied', allowedBy: ['CiliumNetworkPolicy/x/b-in'], deniedBy: ['CiliumNetworkPolicy/x/b-deny'] });
    const fromWorld = engine.trace({ src: { 'reserved:world': '' }, dst: podLabels('c'), dport: 80, protocol: 6 });
    expect(fromWorld).toMatchObject({ verdict: 'allowed', ingress: { enforced: false, verdict: 'allowed' } });
    expect(fromWorld.ingress.lines[0]).toMatch(/is not enforced: no rule selects it/);
    const fromHost = engine.trace({ src: { 'reserved:host': '' }, dst: podLabels('b'), dport: 22, protocol: 'TCP' });
    expect(fromHost.ingress).toMatchObject({ verdict: 'allowed', allowedBy: ['allow-localhost'] });
    expect(() => engine.trace({ src: {}, dst: {}, dport: 70000, protocol: 'TCP' })).toThrow(/dport/);
  });
});
