import type { Direction, L7RuleSet } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { PolicyEngine } from './engine.js';
import { FakeIdentities } from './fake-identities.js';
import type { L7Enforcement } from './l7.js';
import { silentLogger } from './test-rules.js';

const NS = 'k8s:io.kubernetes.pod.namespace';
const labels = (app: string) => ({ 'k8s:app': app, [NS]: 'x' });

/** An L7 proxy with an http parser on ports 15001/15002 that refuses paths starting with "(". */
function fakeProxy() {
  const published: L7RuleSet[] = [];
  const withdrawn: Array<[number, Direction, number]> = [];
  const l7: L7Enforcement = {
    redirectPort: (parser, direction) => (parser === 'http' ? (direction === 'ingress' ? 15001 : 15002) : undefined),
    validate: (_parser, rules, path) =>
      rules.flatMap((r, i) => (String((r as { path?: string }).path ?? '').startsWith('(') ? [{ path: `${path}[${i}].path`, reason: 'invalid regular expression' }] : [])),
    publish: (set) => void published.push(set),
    withdraw: (...args) => void withdrawn.push(args),
  };
  return { l7, published, withdrawn };
}

const cnp = (name: string, toPorts: unknown[]) => ({
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name, namespace: 'x' },
  spec: { endpointSelector: { matchLabels: { app: 'server' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts }] },
});
const http = (rules: unknown[]) => [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: rules } }];

function setup(withProxy: boolean) {
  const identities = new FakeIdentities();
  const proxy = fakeProxy();
  const engine = new PolicyEngine({ identities, enforcement: 'default', allowLocalhost: false, logger: silentLogger(), ...(withProxy ? { l7: proxy.l7 } : {}) });
  const server = identities.add(labels('server'));
  const client = identities.add(labels('client'));
  return { engine, proxy, server, client, subject: { endpointId: 7, identity: server.id, labels: server.labels } };
}

describe('PolicyEngine with an L7 proxy', () => {
  it('gives keys with HTTP rules the proxy port and hands their rules to the proxy; an L4 allow of the same key admits every request', async () => {
    const { engine, proxy, client, subject } = setup(true);
    const deltas: unknown[] = [];
    engine.watch(subject, (d) => deltas.push(d));
    await engine.import([cnp('l7', http([{ method: 'GET', path: '/public/.*' }]))]);
    const entry = engine.resolve(subject).entries.find(([k]) => k.identity === client.id && k.port === 80)?.[1];
    expect(entry).toMatchObject({ verdict: 'allow', proxyPort: 15001, l7: { parser: 'http', rules: [{ method: 'GET', path: '/public/.*' }] } });
    expect(proxy.published).toEqual([{ endpointId: 7, direction: 'ingress', port: 80, parser: 'http', rules: [{ identity: client.id, rules: [{ method: 'GET', path: '/public/.*' }] }] }]);
    expect(engine.rules()[0]!.notes).toEqual([]);

    await engine.import([cnp('l4', [{ ports: [{ port: '80', protocol: 'TCP' }] }])]);
    expect(proxy.published.at(-1)!.rules).toEqual([{ identity: client.id, rules: [{ method: 'GET', path: '/public/.*' }, {}] }]);

    await engine.delete({ all: true });
    expect(proxy.withdrawn).toEqual([[7, 'ingress', 80]]);
  });

  it('refuses invalid L7 rules at import with their field path, storing nothing', async () => {
    const { engine } = setup(true);
    await expect(engine.import([cnp('bad', http([{ path: '/ok' }, { path: '(x' }]))])).rejects.toMatchObject({
      errors: [{ path: 'documents[0].spec.ingress[0].toPorts[0].rules.http[1].path', reason: 'invalid regular expression' }],
    });
    expect(engine.rules()).toEqual([]);
  });

  it('without a proxy: no proxy port, and the rule says its L7 part is enforced at L4', async () => {
    const { engine, subject, client } = setup(false);
    await engine.import([cnp('l7', http([{ method: 'GET' }]))]);
    const entry = engine.resolve(subject).entries.find(([k]) => k.identity === client.id && k.port === 80)?.[1];
    expect(entry).toEqual({ verdict: 'allow', proxyPort: 0, derivedFrom: [expect.any(String)] });
    expect(engine.rules()[0]!.notes).toEqual(['spec.ingress[0].toPorts[0].rules: L7 rules are enforced at L4 until the L7 proxy is available']);
  });
});
