// An external (collect_md) VXLAN device made through the API, checked with `ip -d`.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { NetlinkInputError } from './errors.js';
import { Scratch } from './test-support.js';

interface IpLinkDetails {
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  linkinfo: { info_kind: string; info_data: { external?: boolean; port?: number; learning?: boolean } };
}

describe('vxlan links', () => {
  const scratch = new Scratch();
  afterEach(() => scratch.cleanup());

  it('creates a VXLAN device in external mode on the given port, NOARP, up, with MTU and MAC', async () => {
    const node = await scratch.netns('vxlan');
    const link = await node.nl.addVxlan({ name: 'cilia_vxlan', port: 8472, mtu: 1450, mac: '02:c1:1a:00:00:01', noArp: true, up: true });
    expect(link).toMatchObject({ name: 'cilia_vxlan', kind: 'vxlan', mtu: 1450, mac: '02:c1:1a:00:00:01', up: true });
    const [details] = JSON.parse(execFileSync('ip', ['-n', node.name, '-j', '-d', 'link', 'show', 'cilia_vxlan'], { encoding: 'utf8' })) as IpLinkDetails[];
    expect(details!.flags).toContain('NOARP');
    expect(details!.linkinfo.info_kind).toBe('vxlan');
    expect(details!.linkinfo.info_data).toMatchObject({ external: true, port: 8472, learning: false });
  });

  it('refuses a bad port naming the field, and a taken name with EEXIST', async () => {
    const node = await scratch.netns('vxlan');
    await expect(node.nl.addVxlan({ name: 'vx0', port: 0 })).rejects.toThrow(NetlinkInputError);
    await expect(node.nl.addVxlan({ name: 'vx0', port: 70000 })).rejects.toThrow(/vxlan\.port/);
    await node.nl.addVxlan({ name: 'vx0', port: 4789 });
    await expect(node.nl.addVxlan({ name: 'vx0', port: 4789 })).rejects.toMatchObject({ code: 'EEXIST' });
  });
});
