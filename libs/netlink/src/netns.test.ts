import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { NetlinkError, NetlinkInputError } from './errors.js';
import { createNetns, deleteNetns, listNetns, netnsCookie, netnsPath, openNetns } from './netns.js';
import { getSysctl, setSysctl, sysctlPath } from './sysctl.js';
import { Scratch, uniqueName } from './test-support.js';

const ipNetnsList = (): string[] =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);

describe('network namespaces', () => {
  const scratch = new Scratch();
  afterEach(() => scratch.cleanup());

  it('creates a namespace that ip netns sees, lists it, and deletes it', async () => {
    const name = uniqueName('cilia-test-ns-');
    scratch.track(name);
    expect(await createNetns(name)).toBe(netnsPath(name));
    expect(await listNetns()).toContain(name);
    expect(ipNetnsList()).toContain(name);
    // A fresh namespace holds only a loopback, and it is down.
    const nl = await openNetns(name);
    try {
      const links = await nl.listLinks();
      expect(links.map((l) => l.name)).toEqual(['lo']);
      expect(links[0]!.up).toBe(false);
    } finally {
      await nl.close();
    }
    await deleteNetns(name);
    expect(await listNetns()).not.toContain(name);
    expect(ipNetnsList()).not.toContain(name);
  });

  it('reads a namespace\'s cookie: its own for each, the same each time', async () => {
    const [a, b] = [uniqueName('cilia-test-ck-'), uniqueName('cilia-test-ck-')];
    scratch.track(a);
    scratch.track(b);
    await createNetns(a);
    await createNetns(b);
    const self = await netnsCookie();
    const [ca, cb] = [await netnsCookie(a), await netnsCookie(netnsPath(b))];
    expect(new Set([self, ca, cb]).size).toBe(3);
    expect(ca).toBeGreaterThan(0);
    expect(await netnsCookie(a)).toBe(ca);
    expect(await netnsCookie()).toBe(self);
    await expect(netnsCookie('cilia-test-no-such-ns')).rejects.toThrow(/cilia-test-no-such-ns/);
  });

  it('sees namespaces made by ip netns add', async () => {
    const name = uniqueName('cilia-test-ip-');
    scratch.track(name);
    execFileSync('ip', ['netns', 'add', name]);
    expect(await listNetns()).toContain(name);
    const nl = await openNetns(name);
    await nl.close();
  });

  it('opens a namespace by path', async () => {
    const { name, nl } = await scratch.netns('path');
    await nl.setLinkUp('lo');
    const byPath = await openNetns(netnsPath(name));
    try {
      expect((await byPath.getLink('lo')).up).toBe(true);
      expect(byPath.netns).toBe(`/run/netns/${name}`);
    } finally {
      await byPath.close();
    }
  });

  it('refuses a taken name and a missing one with errors that name them', async () => {
    const { name } = await scratch.netns('dup');
    const taken = await createNetns(name).catch((e: unknown) => e);
    expect(taken).toBeInstanceOf(NetlinkError);
    expect((taken as NetlinkError).code).toBe('EEXIST');
    expect((taken as NetlinkError).message).toContain(`netns add ${name}`);

    const missing = uniqueName('cilia-test-none-');
    const gone = await deleteNetns(missing).catch((e: unknown) => e);
    expect((gone as NetlinkError).code).toBe('ENOENT');
    expect((gone as NetlinkError).message).toContain(missing);

    await expect(createNetns('a/b')).rejects.toThrow(NetlinkInputError);
    await expect(openNetns(uniqueName('cilia-test-none-'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('sysctls', () => {
  const scratch = new Scratch();
  afterEach(() => scratch.cleanup());

  it('writes and reads a sysctl inside a namespace without touching the caller', async () => {
    const { name, nl } = await scratch.netns('sysctl');
    const hostBefore = await getSysctl('net.ipv4.conf.all.forwarding');
    const target = hostBefore === '1' ? '0' : '1';
    await setSysctl('net.ipv4.conf.all.forwarding', target, { netns: name });
    expect(await getSysctl('net.ipv4.conf.all.forwarding', { netns: name })).toBe(target);
    expect(await getSysctl('net.ipv4.conf.all.forwarding')).toBe(hostBefore);
    // Independent check through ip netns exec.
    const seen = execFileSync('ip', ['netns', 'exec', name, 'cat', '/proc/sys/net/ipv4/conf/all/forwarding'], {
      encoding: 'utf8',
    });
    expect(seen.trim()).toBe(target);

    // Per-device keys, through the handle.
    await nl.setSysctl('net.ipv4.conf.lo.rp_filter', 2);
    expect(await nl.getSysctl('net.ipv4.conf.lo.rp_filter')).toBe('2');
  });

  it('reports an unknown key with its name and errno', async () => {
    const { name } = await scratch.netns('sysctl');
    const err = await setSysctl('net.ipv4.conf.nosuchdev.rp_filter', 1, { netns: name }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetlinkError);
    expect((err as NetlinkError).code).toBe('ENOENT');
    expect((err as NetlinkError).message).toContain('net.ipv4.conf.nosuchdev.rp_filter');
  });

  it('maps dotted keys to /proc/sys paths', () => {
    expect(sysctlPath('net.ipv4.conf.all.forwarding')).toBe('/proc/sys/net/ipv4/conf/all/forwarding');
    expect(sysctlPath('net.ipv4.conf.eth0/100.rp_filter')).toBe('/proc/sys/net/ipv4/conf/eth0.100/rp_filter');
    expect(sysctlPath('/proc/sys/net/ipv4/ip_forward')).toBe('/proc/sys/net/ipv4/ip_forward');
    expect(() => sysctlPath('net..ipv4')).toThrow(/key: .*empty/);
    expect(() => sysctlPath('/proc/sys/net/../../etc/passwd')).toThrow(NetlinkInputError);
  });
});
