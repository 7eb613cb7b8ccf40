import { afterEach, describe, expect, it } from 'vitest';
import { NetlinkError, NetlinkInputError } from './errors.js';
import { Scratch, uniqueName } from './test-support.js';

async function failure(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error('expected the call to fail');
  return err;
}

describe('errors', () => {
  const scratch = new Scratch();
  afterEach(() => scratch.cleanup());

  it('names the link, the operation and the errno when a link exists already', async () => {
    const { nl } = await scratch.netns('err');
    const name = uniqueName('lxc');
    await nl.addVeth({ name, peerName: uniqueName('p') });
    const err = await failure(nl.addVeth({ name, peerName: uniqueName('p') }));
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err).toMatchObject({ code: 'EEXIST', errno: 17, operation: 'link add veth', object: name });
    expect(err.message).toMatch(new RegExp(`^link add veth ${name}: File exists \\(EEXIST\\)`));
  });

  it('reports ENODEV for a missing link, by name and by index', async () => {
    const { nl } = await scratch.netns('err');
    const name = uniqueName('gone');
    const byName = await failure(nl.deleteLink(name));
    expect(byName).toMatchObject({ code: 'ENODEV', object: name });
    expect(byName.message).toContain(`link delete ${name}: No such device (ENODEV)`);
    expect(await failure(nl.getLink(4242))).toMatchObject({ code: 'ENODEV', object: 'ifindex 4242' });
    expect(await failure(nl.addAddress({ dev: name, address: '10.0.0.1/24' }))).toMatchObject({ code: 'ENODEV' });
  });

  it('carries the kernel explanation when it gives one', async () => {
    const { nl } = await scratch.netns('err');
    // A gateway not reachable on any link: the kernel explains why in its extended ACK.
    const err = await failure(nl.addRoute({ dst: '10.9.0.0/16', gateway: '192.0.2.1', dev: 'lo' }));
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).message).toMatch(/^route add 10\.9\.0\.0\/16 via 192\.0\.2\.1 dev lo: /);
    expect((err as NetlinkError).kernelMessage).toBeTruthy();
  });

  it('rejects bad input naming the field, before anything reaches the kernel', async () => {
    const { nl } = await scratch.netns('err');
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [() => nl.addAddress({ dev: 'lo', address: '10.0.0.300/24' }), 'address', /"10\.0\.0\.300\/24" is not a valid CIDR/],
      [() => nl.addAddress({ dev: 'lo', address: '10.0.0.1/33' }), 'address', /prefix length must be 0\.\.32/],
      [() => nl.addRoute({ dst: '10.0.0.1/24', dev: 'lo' }), 'dst', /host bits set \(the network is 10\.0\.0\.0\/24\)/],
      [() => nl.addRoute({ dst: 'fd00::/64', gateway: '10.0.0.1' }), 'gateway', /IPv4 but dst fd00::\/64 is IPv6/],
      [() => nl.addRoute({ dst: 'nonsense', dev: 'lo' }), 'dst', /not a valid CIDR/],
      [() => nl.addNeighbour({ dev: 'lo', address: '10.0.0.1', mac: 'zz:00:00:00:00:00' }), 'mac', /not a MAC address/],
      [() => nl.addNeighbour({ dev: 'lo', address: '10.0.0.1' }), 'mac', /required/],
      [() => nl.addVeth({ name: 'a-name-that-is-too-long', peerName: 'x' }), 'veth.name', /longer than 15 bytes/],
      [() => nl.addVeth({ name: 'ok', peerName: 'bad/name' }), 'veth.peerName', /not a valid interface name/],
      [() => nl.setLinkMtu('lo', 10), 'mtu', /not a valid MTU/],
      [() => nl.getLink(-1), 'link', /not a valid ifindex/],
    ];
    for (const [call, field, reason] of cases) {
      const err = await failure(call());
      expect(err, `${field}: ${err.message}`).toBeInstanceOf(NetlinkInputError);
      expect((err as NetlinkInputError).field).toBe(field);
      expect(err.message).toMatch(reason);
      expect(err.message.startsWith(`${field}: `)).toBe(true);
    }
    // None of them changed anything.
    expect(await nl.listAddresses()).toEqual([]);
  });

  it('refuses calls on a closed handle', async () => {
    const { nl } = await scratch.netns('err');
    await nl.close();
    expect(await failure(nl.listLinks())).toMatchObject({ code: 'EBADF' });
  });
});
