import type { Endpoint, RealizedEndpointPolicy } from '@cilia/api-client';
import { describe, expect, it } from 'vitest';
import { endpointFields, policyMapText } from '../src/commands/endpoint.js';
import { parseDport, parseDuration, peerLabels, policyDocuments, policyTable, waitForRevision } from '../src/commands/policy.js';
import { CliError, UsageError } from '../src/errors.js';

const endpoint = (id: number, policyRevision: number): Endpoint =>
  ({ id, name: `pod-${id}`, namespace: 'x', labels: { 'k8s:app': `a${id}` }, policyRevision }) as unknown as Endpoint;

describe('policyDocuments', () => {
  it('reads several YAML documents, skips empty ones and unpacks a List', () => {
    const text = [
      'kind: CiliumNetworkPolicy\nmetadata: {name: a}',
      '',
      'kind: List\nitems:\n  - {kind: NetworkPolicy, metadata: {name: b}}\n  - {kind: NetworkPolicy, metadata: {name: c}}',
    ].join('\n---\n');
    const docs = policyDocuments(text, 'f.yaml');
    expect(docs.map((d) => [(d.document as { metadata: { name: string } }).metadata.name, d.where])).toEqual([
      ['a', 'document 1'],
      ['b', 'document 3, items[0]'],
      ['c', 'document 3, items[1]'],
    ]);
  });

  it('takes JSON, and names the file and document of a YAML error', () => {
    expect(policyDocuments('{"kind": "NetworkPolicy", "metadata": {"name": "j"}}', '-')).toHaveLength(1);
    expect(() => policyDocuments('kind: A\n---\nkind: [unclosed', 'p.yaml')).toThrow(/^p\.yaml: document 2 is not valid YAML: /);
    expect(() => policyDocuments('---\n', 'p.yaml')).toThrow(new CliError('p.yaml: no policy documents in it'));
    expect(() => policyDocuments('kind: List\nitems: 3', 'p.yaml')).toThrow(new CliError('p.yaml: document 1: a List needs items (a list of policies)'));
  });
});

describe('parseDport', () => {
  it('reads PORT[/PROTOCOL], TCP by default, protocols in any case', () => {
    expect(parseDport('80/TCP')).toEqual({ port: 80, protocol: 'TCP' });
    expect(parseDport('53/udp')).toEqual({ port: 53, protocol: 'UDP' });
    expect(parseDport('8080')).toEqual({ port: 8080, protocol: 'TCP' });
    expect(parseDport('8/icmpv6')).toEqual({ port: 8, protocol: 'ICMPv6' });
  });
  it('refuses what is not a port or protocol, as a usage error', () => {
    for (const bad of ['http', '70000/TCP', '80/', '80/GRE', '-1']) expect(() => parseDport(bad)).toThrow(UsageError);
  });
});

describe('peerLabels', () => {
  const lookup = async (id: number) => endpoint(id, 0).labels;
  it('looks an endpoint id up, and reads a label list, giving bare keys k8s:', async () => {
    expect(await peerLabels('12', '--src', lookup)).toEqual({ 'k8s:app': 'a12' });
    expect(await peerLabels('app=web, io.kubernetes.pod.namespace=x,reserved:world', '--src', lookup)).toEqual({
      'k8s:app': 'web',
      'k8s:io.kubernetes.pod.namespace': 'x',
      'reserved:world': '',
    });
  });
  it('refuses an empty list or a key without a name', async () => {
    await expect(peerLabels(',', '--dst', lookup)).rejects.toThrow(new UsageError('--dst: expected an endpoint id or labels like k8s:app=web'));
    await expect(peerLabels('k8s:=x', '--dst', lookup)).rejects.toThrow(UsageError);
  });
});

describe('parseDuration', () => {
  it('reads ms, s, m, h and bare seconds', () => {
    expect([parseDuration('500ms', 't'), parseDuration('30s', 't'), parseDuration('2m', 't'), parseDuration('1h', 't'), parseDuration('1.5', 't')]).toEqual([500, 30_000, 120_000, 3_600_000, 1500]);
    expect(() => parseDuration('soon', '--timeout')).toThrow(new UsageError('--timeout: expected a duration like 30s, 2m or 500ms, got "soon"'));
  });
});

describe('waitForRevision', () => {
  it('prints progress when it changes and returns once every endpoint is there', async () => {
    const answers = [[endpoint(1, 4), endpoint(2, 4)], [endpoint(1, 5), endpoint(2, 4)], [endpoint(1, 5), endpoint(2, 4)], [endpoint(1, 6), endpoint(2, 5)]];
    const said: string[] = [];
    await waitForRevision(async () => answers.shift() ?? [], 5, 60_000, (l) => said.push(l));
    expect(said).toEqual(['0/2 endpoints at revision ≥ 5', '1/2 endpoints at revision ≥ 5', '2/2 endpoints at revision ≥ 5']);
  });
  it('is done at once without endpoints', async () => {
    const said: string[] = [];
    await waitForRevision(async () => [], 9, 0, (l) => said.push(l));
    expect(said).toEqual(['0/0 endpoints at revision ≥ 9']);
  });
  it('names the endpoints behind on timeout', async () => {
    await expect(waitForRevision(async () => [endpoint(1, 7), endpoint(3, 2)], 7, 300, () => undefined)).rejects.toThrow(
      new CliError('timed out after 300 ms: 1 endpoint(s) below revision 7: 3 (x/pod-3) at 2'),
    );
  });
});

describe('policyTable', () => {
  it('merges the rules of one policy into a row and lists notes', () => {
    const rule = (name: string, revision: number, notes: string[], namespace?: string) => ({ kind: namespace ? 'CiliumNetworkPolicy' : 'CiliumClusterwideNetworkPolicy', name, revision, notes, spec: {}, ...(namespace ? { namespace } : {}) });
    const text = policyTable({ revision: 7, enforcement: 'default', rules: [rule('web', 3, []), rule('l7', 6, ['L7 rules enforced at L4'], 'x'), rule('l7', 7, [], 'x')] });
    const lines = text.split('\n');
    expect(lines[0]).toBe('Revision: 7   Enforcement: default');
    expect(lines[2]!.split(/\s{2,}/)).toEqual(['KIND', 'NAMESPACE', 'NAME', 'REVISION', 'NOTES']);
    expect(lines[3]!.split(/\s{2,}/)).toEqual(['CiliumClusterwideNetworkPolicy', '<none>', 'web', '3', '<none>']);
    expect(lines[4]!.split(/\s{2,}/)).toEqual(['CiliumNetworkPolicy', 'x', 'l7', '7', 'L7 rules enforced at L4']);
    expect(policyTable({ revision: 0, enforcement: 'always', rules: [] })).toBe('Revision: 0   Enforcement: always\n\nNo policies.\n');
  });
});

describe('the realized policy map of endpoint get', () => {
  const policy: RealizedEndpointPolicy = {
    revision: 4,
    enforcement: { ingress: 'enforce', egress: 'allow-all' },
    entries: [
      { identity: 0, direction: 'egress', protocol: 17, port: 53, endPort: 53, verdict: 'allow', proxyPort: 0 },
      { identity: 1, direction: 'ingress', protocol: 0, port: 0, endPort: 0, verdict: 'allow', proxyPort: 0 },
      { identity: 300, direction: 'ingress', protocol: 6, port: 80, endPort: 81, verdict: 'deny', proxyPort: 0 },
    ],
  };
  it('shows enforcement, revision and a row per entry, ingress first', () => {
    const rows = policyMapText(policy).split('\n').filter(Boolean);
    expect(rows[0]).toMatch(/^Policy enforcement:\s+ingress enforce, egress allow-all$/);
    expect(rows[1]).toMatch(/^Policy map revision:\s+4$/);
    expect(rows.slice(3).map((l) => l.split(/\s{2,}/))).toEqual([
      ['DIRECTION', 'IDENTITY', 'PROTOCOL', 'PORT(S)', 'VERDICT'],
      ['ingress', '1', 'ANY', 'any', 'allow'],
      ['ingress', '300', 'TCP', '80-81', 'deny'],
      ['egress', 'any', 'UDP', '53', 'allow'],
    ]);
  });
  it('says why an endpoint fails closed, and is left out when the agent sends no policy', () => {
    expect(policyMapText({ ...policy, failClosed: 'policy map needs 20 entries', entries: [] })).toMatch(/Fail closed:\s+policy map needs 20 entries\nPolicy map: no entries\n$/);
    const plain = { ...endpoint(5, 1), state: 'ready', identity: 300, netns: '/n', interfaceName: 'eth0', mac: 'm', hostInterface: 'h', hostMac: 'hm' } as Endpoint;
    expect(endpointFields(plain)).not.toContain('Policy map');
    expect(endpointFields({ ...plain, policy })).toContain('Policy map:');
  });
});
