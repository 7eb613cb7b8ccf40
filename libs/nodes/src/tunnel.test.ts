// The underlay an overlay picks and the routes it sets, on a real network namespace: a device
// holding the tunnel address, a default route through another, and one named outright.
import { randomBytes } from 'node:crypto';
import type { Logger, NodeInfo } from '@cilia/core';
import { createNetns, deleteNetns, openNetns, type NetlinkHandle } from '@cilia/netlink';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findUnderlay, tunnelRoutes } from './tunnel.js';

describe('findUnderlay', () => {
  const netns = `cilia-tun-${randomBytes(3).toString('hex')}`;
  let nl: NetlinkHandle;

  beforeAll(async () => {
    await createNetns(netns);
    nl = await openNetns(netns);
    // u0 holds the tunnel address; u1 carries the default route.
    const u0 = await nl.addVeth({ name: 'u0', peerName: 'u0p', up: true });
    const u1 = await nl.addVeth({ name: 'u1', peerName: 'u1p', up: true });
    for (const name of ['u0p', 'u1p']) await nl.setLinkUp(name);
    await nl.addAddress({ dev: u0.index, address: '10.9.0.1/24' });
    await nl.addAddress({ dev: u1.index, address: '10.9.1.1/24' });
    await nl.addRoute({ dst: 'default', gateway: '10.9.1.254', dev: u1.index });
  });

  afterAll(async () => {
    await nl?.close();
    await deleteNetns(netns);
  });

  it('takes the device holding the tunnel address, else the default route’s', async () => {
    expect((await findUnderlay(nl, { address: '10.9.0.1', field: 'x.device' }))?.name).toBe('u0');
    expect((await findUnderlay(nl, { address: '10.9.9.9', field: 'x.device' }))?.name).toBe('u1');
    expect((await findUnderlay(nl, { field: 'x.device' }))?.name).toBe('u1');
  });

  it('takes a named device as it is, and names the field when it does not exist', async () => {
    expect((await findUnderlay(nl, { address: '10.9.1.1', device: 'u0', field: 'x.device' }))?.name).toBe('u0');
    await expect(findUnderlay(nl, { device: 'nope0', field: 'x.device' })).rejects.toThrow(/^x\.device: no device named nope0$/);
  });

  it('finds nothing under "auto" without the address or a default route', async () => {
    const u1 = await nl.getLink('u1');
    await nl.deleteRoute({ dst: 'default', gateway: '10.9.1.254', dev: u1.index });
    expect(await findUnderlay(nl, { address: '10.9.9.9', device: 'auto', field: 'x.device' })).toBeUndefined();
  });
});

describe('tunnelRoutes', () => {
  const warnings: unknown[] = [];
  const log = { warn: (o: unknown) => warnings.push(o) } as unknown as Logger;
  const node = (extra: Partial<NodeInfo>): NodeInfo => ({ name: 'n2', podCidrs: ['10.200.2.0/24', 'fd00:2::/64', '10.201.2.0/24'], ...extra });

  it('routes each IPv4 pod CIDR onlink via the tunnel endpoint (else the node IPv4) into the device', () => {
    expect(tunnelRoutes(node({ ipv4: '172.30.0.2', tunnelEndpoint: '192.168.0.2' }), 7, '172.30.0.1', log)).toEqual([
      { dst: '10.200.2.0/24', gateway: '192.168.0.2', dev: 7, onlink: true, src: '172.30.0.1' },
      { dst: '10.201.2.0/24', gateway: '192.168.0.2', dev: 7, onlink: true, src: '172.30.0.1' },
    ]);
    expect(tunnelRoutes(node({ ipv4: '172.30.0.2' }), 7, undefined, log)).toEqual([
      { dst: '10.200.2.0/24', gateway: '172.30.0.2', dev: 7, onlink: true },
      { dst: '10.201.2.0/24', gateway: '172.30.0.2', dev: 7, onlink: true },
    ]);
  });

  it('gives a node without a tunnel endpoint or IPv4 no routes, and says so', () => {
    expect(tunnelRoutes(node({}), 7, '172.30.0.1', log)).toEqual([]);
    expect(warnings).toEqual([{ node: 'n2' }]);
  });
});
