import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeConfigSchema, ConfigError, parseConfig, z } from '@cilia/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostScopeIpam, IpamExhaustedError } from './host-scope-ipam.js';
import { hostScopeIpamPlugin } from './plugin.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cilia-ipam-'));
  file = join(dir, 'ipam', 'leases.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('HostScopeIpam', () => {
  it('leases host addresses in order, never the network, gateway or broadcast address', async () => {
    const ipam = new HostScopeIpam(['10.1.0.0/29'], file);
    const got = [];
    for (let i = 0; i < 5; i++) got.push((await ipam.allocateNext(`pod-${i}`)).ip);
    expect(got).toEqual(['10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5', '10.1.0.6']);
    await expect(ipam.allocateNext('one-too-many')).rejects.toThrow(new IpamExhaustedError('ipv4', [{ cidr: '10.1.0.0/29', family: 'ipv4', capacity: 5, used: 5 }]));
    await expect(ipam.allocateNext('x')).rejects.toThrow('ipv4 pools are exhausted (10.1.0.0/29: 5 of 5 leased)');
    await expect(ipam.allocateNext('v6', 'ipv6')).rejects.toThrow('no ipv6 pool is configured');
  });

  it('reports the gateway and pool with each lease, and usage per pool', async () => {
    const ipam = new HostScopeIpam(['10.2.0.0/24', 'fd00:10::/120'], file);
    expect(await ipam.allocateNext('a')).toEqual({ ip: '10.2.0.2', family: 'ipv4', pool: '10.2.0.0/24', gateway: '10.2.0.1', owner: 'a' });
    expect(await ipam.allocateNext('b', 'ipv6')).toEqual({ ip: 'fd00:10::2', family: 'ipv6', pool: 'fd00:10::/120', gateway: 'fd00:10::1', owner: 'b' });
    expect(ipam.pools()).toEqual([
      { cidr: '10.2.0.0/24', family: 'ipv4', capacity: 253, used: 1 },
      { cidr: 'fd00:10::/120', family: 'ipv6', capacity: 254, used: 1 },
    ]);
  });

  it('does not hand a released address out again at once', async () => {
    const ipam = new HostScopeIpam(['10.3.0.0/24'], file);
    const a = await ipam.allocateNext('a');
    expect(await ipam.release(a.ip)).toBe(true);
    expect(await ipam.release(a.ip)).toBe(false);
    expect((await ipam.allocateNext('b')).ip).toBe('10.3.0.3');
  });

  it('takes a specific address, and says why it cannot', async () => {
    const ipam = new HostScopeIpam(['10.4.0.0/24'], file);
    expect((await ipam.allocate('10.4.0.77', 'restored')).ip).toBe('10.4.0.77');
    await expect(ipam.allocate('10.4.0.77', 'other')).rejects.toThrow('10.4.0.77 is already leased by restored');
    await expect(ipam.allocate('10.4.0.1', 'x')).rejects.toThrow('is reserved in 10.4.0.0/24');
    await expect(ipam.allocate('10.4.0.255', 'x')).rejects.toThrow('is reserved');
    await expect(ipam.allocate('10.9.0.5', 'x')).rejects.toThrow('10.9.0.5 is outside every pool (10.4.0.0/24)');
    await expect(ipam.allocate('not-an-ip', 'x')).rejects.toThrow('"not-an-ip" is not an IP address');
  });

  it('restores its leases after a restart', async () => {
    const first = new HostScopeIpam(['10.5.0.0/24'], file);
    await first.allocateNext('a');
    const b = await first.allocateNext('b');
    await first.allocateNext('c');
    await first.release(b.ip);
    const second = new HostScopeIpam(['10.5.0.0/24'], file);
    expect(second.leases().map((l) => `${l.owner}=${l.ip}`)).toEqual(['a=10.5.0.2', 'c=10.5.0.4']);
    await expect(second.allocate('10.5.0.4', 'd')).rejects.toThrow('already leased by c');
  });

  it('refuses to start on a damaged lease file or a lease outside the pools, rather than forget leases', async () => {
    const first = new HostScopeIpam(['10.6.0.0/24'], file);
    await first.allocateNext('a');
    expect(() => new HostScopeIpam(['10.7.0.0/24'], file)).toThrow('cannot restore IPAM lease of 10.6.0.2 for a: it is outside every pool (10.7.0.0/24); was the pod CIDR changed?');
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 20));
    expect(() => new HostScopeIpam(['10.6.0.0/24'], file)).toThrow(/lease file .* is damaged/);
  });

  it('keeps memory and disk in step when the lease file cannot be written', async () => {
    const ipam = new HostScopeIpam(['10.8.0.0/24'], file);
    await ipam.allocateNext('a');
    // Root ignores permissions, so make the lease directory a plain file instead.
    rmSync(join(dir, 'ipam'), { recursive: true });
    writeFileSync(join(dir, 'ipam'), 'not a directory');
    await expect(ipam.allocateNext('b')).rejects.toThrow('cannot persist IPAM leases');
    expect(ipam.leases().map((l) => l.owner)).toEqual(['a']);
    expect(ipam.pools()[0]!.used).toBe(1);
  });

  it('rejects a CIDR with host bits set, naming the network', () => {
    expect(() => new HostScopeIpam(['10.1.2.3/24'], file)).toThrow('10.1.2.3/24 has host bits set; the network is 10.1.2.0/24');
  });
});

describe('ipam config section', () => {
  const schema = composeConfigSchema(z.strictObject({}), [hostScopeIpamPlugin]);
  it('defaults to one IPv4 pod CIDR', () => {
    expect(parseConfig(schema, {}).ipam).toEqual({ podCIDRs: ['10.200.0.0/24'] });
  });
  it('names the bad entry and the reason', () => {
    const err = (() => {
      try {
        parseConfig(schema, { ipam: { podCIDRs: ['10.0.0.0/24', '10.0.0.0/33'] } });
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(err?.problems).toEqual([{ path: 'ipam.podCIDRs[1]', reason: '"10.0.0.0/33" is not a CIDR (expected e.g. 10.0.0.0/24 or fd00::/64)' }]);
  });
});
