// A pod's plumbing built through the API alone, proven with real packets: a "node" namespace
// and a "pod" namespace joined by a veth whose peer is created directly in the pod.
import { execFileSync, spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_GSO_SIZE } from './links.js';
import { Scratch, randomNet, uniqueName } from './test-support.js';

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  flags?: string[];
}

const ipJson = <T>(netns: string, ...args: string[]): T =>
  JSON.parse(execFileSync('ip', ['-n', netns, '-j', ...args], { encoding: 'utf8' }) || '[]') as T;

describe('pod plumbing', () => {
  const scratch = new Scratch();
  afterEach(() => scratch.cleanup());

  it('builds veth + addresses + routes + neighbour so the pod reaches the node', async () => {
    const node = await scratch.netns('node');
    const pod = await scratch.netns('pod');
    const net = randomNet();
    const hostIf = uniqueName('lxc');
    const nodeIp = net.host(1);
    const podIp = net.host(2);
    const podMac = '0a:58:0a:00:00:02';

    const host = await node.nl.addVeth({ name: hostIf, peerName: 'eth0', peerNetns: pod.name, mtu: 1450, peerMac: podMac });
    expect(host).toMatchObject({ name: hostIf, kind: 'veth', mtu: 1450, up: false });
    expect(host.peerIndex).toBeGreaterThan(0);
    expect(host.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);

    const eth0 = await pod.nl.getLink('eth0');
    expect(eth0).toMatchObject({ kind: 'veth', mtu: 1450, mac: podMac, index: host.peerIndex });
    expect(await node.nl.findLink('eth0')).toBeUndefined();

    // Node side: an address and a route to the pod through the veth.
    await node.nl.setLinkUp(hostIf);
    await node.nl.addAddress({ dev: hostIf, address: `${nodeIp}/32` });
    await node.nl.addRoute({ dst: `${podIp}/32`, dev: host.index });

    // Pod side: /32 address, default route via the node address on-link, static neighbour.
    await pod.nl.setLinkUp('lo');
    await pod.nl.setLinkUp(eth0.index);
    await pod.nl.addAddress({ dev: 'eth0', address: `${podIp}/32` });
    await pod.nl.addRoute({ dst: 'default', gateway: nodeIp, dev: 'eth0', onlink: true });
    await pod.nl.addNeighbour({ dev: 'eth0', address: nodeIp, mac: host.mac! });

    // What the API reads back...
    expect((await pod.nl.getLink('eth0')).up).toBe(true);
    expect(await pod.nl.listAddresses({ dev: 'eth0', family: 4 })).toEqual([
      expect.objectContaining({ address: podIp, prefixLength: 32, cidr: `${podIp}/32`, family: 4, scope: 'universe' }),
    ]);
    const routes = await pod.nl.listRoutes();
    expect(routes).toContainEqual(
      expect.objectContaining({ dst: 'default', gateway: nodeIp, ifindex: eth0.index, onlink: true, table: 254, type: 'unicast' }),
    );
    expect(await pod.nl.listNeighbours({ dev: 'eth0' })).toContainEqual(
      expect.objectContaining({ address: nodeIp, mac: host.mac, state: 'permanent', family: 4 }),
    );
    expect(await node.nl.listRoutes({ dev: hostIf })).toContainEqual(
      expect.objectContaining({ dst: `${podIp}/32`, scope: 'link', gateway: undefined }),
    );

    // ...agrees with what iproute2 reads.
    const ipRoutes = ipJson<IpRoute[]>(pod.name, 'route', 'show');
    expect(ipRoutes).toContainEqual(expect.objectContaining({ dst: 'default', gateway: nodeIp, dev: 'eth0', flags: ['onlink'] }));
    const neigh = ipJson<{ dst: string; lladdr: string; state: string[] }[]>(pod.name, 'neigh', 'show', 'dev', 'eth0');
    expect(neigh).toContainEqual(expect.objectContaining({ dst: nodeIp, lladdr: host.mac, state: ['PERMANENT'] }));

    // Real packets: the pod pings the node address, and back.
    const ping = spawnSync('ip', ['netns', 'exec', pod.name, 'ping', '-c1', '-W2', nodeIp], { encoding: 'utf8' });
    expect(ping.status, ping.stdout + ping.stderr).toBe(0);
    const back = spawnSync('ip', ['netns', 'exec', node.name, 'ping', '-c1', '-W2', podIp], { encoding: 'utf8' });
    expect(back.status, back.stdout + back.stderr).toBe(0);

    // Deleting the host side takes the pod side with it.
    await node.nl.deleteLink(hostIf);
    expect(await pod.nl.findLink('eth0')).toBeUndefined();
  });

  it('changes link state, MTU, MAC and name, and moves a link between namespaces', async () => {
    const a = await scratch.netns('a');
    const b = await scratch.netns('b');
    const left = uniqueName('vl');
    const right = uniqueName('vr');
    await a.nl.addVeth({ name: left, peerName: right, up: true });
    const both = await a.nl.listLinks();
    expect(both.filter((l) => l.kind === 'veth').map((l) => l.name).sort()).toEqual([left, right].sort());
    expect((await a.nl.getLink(left)).up).toBe(true);
    expect((await a.nl.getLink(right)).up).toBe(false);

    await a.nl.setLinkMtu(left, 9000);
    await a.nl.setLinkMac(left, '02:00:00:aa:bb:cc');
    await a.nl.setLinkDown(left);
    let link = await a.nl.getLink(left);
    expect(link).toMatchObject({ mtu: 9000, mac: '02:00:00:aa:bb:cc', up: false });

    const renamed = uniqueName('vn');
    await a.nl.renameLink(left, renamed);
    expect(await a.nl.findLink(left)).toBeUndefined();
    expect((await a.nl.getLink(renamed)).index).toBe(link.index);

    await a.nl.moveLinkToNetns(right, b.name, 'eth1');
    expect(await a.nl.findLink(right)).toBeUndefined();
    link = await b.nl.getLink('eth1');
    expect(link.kind).toBe('veth');
    // The pair now spans namespaces: the local side reports its peer's namespace id.
    expect((await a.nl.getLink(renamed)).peerNetnsId).toBeGreaterThanOrEqual(0);

    // The handle also takes several changes at once.
    await b.nl.setLink('eth1', { up: true, mtu: 1280, name: 'eth2' });
    expect(await b.nl.getLink('eth2')).toMatchObject({ up: true, mtu: 1280, index: link.index });
  });

  it('reads and sets the IPv4 GSO/GRO size limits (BIG TCP), refusing sizes the device cannot take', async () => {
    const a = await scratch.netns('g');
    const left = uniqueName('vg');
    await a.nl.addVeth({ name: left, peerName: uniqueName('vh') });
    const before = await a.nl.getLink(left);
    expect(before).toMatchObject({ gsoIpv4MaxSize: 65536, groIpv4MaxSize: 65536, tsoMaxSize: MAX_GSO_SIZE });

    await a.nl.setLink(left, { gsoIpv4MaxSize: 196608, groIpv4MaxSize: 196608 });
    expect(await a.nl.getLink(left)).toMatchObject({ gsoIpv4MaxSize: 196608, groIpv4MaxSize: 196608 });

    await expect(a.nl.setLink(left, { gsoIpv4MaxSize: MAX_GSO_SIZE + 1 })).rejects.toThrow(/gsoIpv4MaxSize/);
    await expect(a.nl.setLink(left, { groIpv4MaxSize: 1.5 })).rejects.toThrow(/groIpv4MaxSize/);
    expect(await a.nl.getLink(left)).toMatchObject({ gsoIpv4MaxSize: 196608, groIpv4MaxSize: 196608 });
  });

  it('manages IPv6 addresses and routes, and replaces and deletes routes and neighbours', async () => {
    const { nl } = await scratch.netns('v6');
    const dev = uniqueName('d');
    const peer = uniqueName('p');
    await nl.addVeth({ name: dev, peerName: peer, up: true });
    await nl.setLinkUp(peer);

    await nl.addAddress({ dev, address: 'fd00:0:0:0::0002/64', noDad: true });
    expect(await nl.listAddresses({ dev, family: 6 })).toContainEqual(
      expect.objectContaining({ address: 'fd00::2', prefixLength: 64, cidr: 'fd00::2/64' }),
    );
    await nl.addRoute({ dst: 'fd00:1::/64', gateway: 'fd00::1', dev });
    expect(await nl.listRoutes({ family: 6 })).toContainEqual(
      expect.objectContaining({ family: 6, dst: 'fd00:1::/64', gateway: 'fd00::1', scope: 'universe' }),
    );

    const net = randomNet();
    await nl.addAddress({ dev, address: `${net.host(1)}/24` });
    // Namespaces are private, so documentation prefixes cannot collide with other tests.
    await nl.addRoute({ dst: '198.51.100.0/24', gateway: net.host(254), dev });
    expect(await nl.listRoutes({ dev })).toContainEqual(
      expect.objectContaining({ dst: '198.51.100.0/24', gateway: net.host(254), protocol: 3, scope: 'universe' }),
    );
    await nl.replaceRoute({ dst: '192.0.2.0/24', gateway: net.host(253), dev, metric: 10, mtu: 1400 });
    await nl.replaceRoute({ dst: '192.0.2.0/24', gateway: net.host(252), dev, metric: 10, mtu: 1400 });
    let routes = (await nl.listRoutes()).filter((r) => r.dst === '192.0.2.0/24');
    expect(routes).toEqual([expect.objectContaining({ gateway: net.host(252), metric: 10, mtu: 1400 })]);
    await nl.deleteRoute({ dst: '192.0.2.0/24', metric: 10 });
    routes = (await nl.listRoutes()).filter((r) => r.dst === '192.0.2.0/24');
    expect(routes).toEqual([]);

    await nl.addNeighbour({ dev, address: net.host(9), mac: '02:00:00:00:00:09' });
    await nl.replaceNeighbour({ dev, address: net.host(9), mac: '02:00:00:00:00:0a' });
    expect(await nl.listNeighbours({ dev, family: 4 })).toEqual([
      expect.objectContaining({ address: net.host(9), mac: '02:00:00:00:00:0a', state: 'permanent' }),
    ]);
    await nl.deleteNeighbour({ dev, address: net.host(9) });
    expect(await nl.listNeighbours({ dev, family: 4 })).toEqual([]);

    await nl.deleteAddress({ dev, address: `${net.host(1)}/24` });
    expect(await nl.listAddresses({ dev, family: 4 })).toEqual([]);
  });

  it('keeps replies apart: many calls on one handle, and several handles at once', async () => {
    const namespaces = await Promise.all([1, 2, 3, 4].map(() => scratch.netns('par')));
    // Each namespace gets its own veth pair, all built concurrently.
    const built = await Promise.all(
      namespaces.map(async ({ nl }, i) => {
        const name = uniqueName(`c${i}`);
        const link = await nl.addVeth({ name, peerName: uniqueName(`q${i}`), mtu: 1400 + i });
        await nl.addAddress({ dev: link.index, address: `10.77.${i}.1/24` });
        return { nl, link, i };
      }),
    );
    for (const { nl, link, i } of built) {
      expect(link.mtu).toBe(1400 + i);
      expect((await nl.listAddresses({ family: 4 })).map((a) => a.cidr)).toEqual([`10.77.${i}.1/24`]);
    }
    // Concurrent calls on one handle: each answer belongs to its own question.
    const { nl, link } = built[0]!;
    const refs: (string | number)[] = Array.from({ length: 30 }, (_, k) => (k % 3 === 0 ? 'lo' : k % 3 === 1 ? link.name : link.index));
    const answers = await Promise.all(refs.map((r) => nl.getLink(r)));
    answers.forEach((answer, k) => {
      const r = refs[k]!;
      if (r === 'lo') expect(answer.name).toBe('lo');
      else expect(answer.index).toBe(link.index);
    });
  });
});
