// Qdiscs on a veth in a scratch namespace, checked with `tc -j`: put, replaced, listed, removed;
// a kind the kernel lacks is ENOENT and changes nothing.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { NetlinkError, NetlinkInputError } from './errors.js';
import { tcHandle } from './qdiscs.js';
import { Scratch } from './test-support.js';

const rootKind = (netns: string, dev: string): string | undefined =>
  (JSON.parse(execFileSync('ip', ['netns', 'exec', netns, 'tc', '-j', 'qdisc', 'show', 'dev', dev, 'root'], { encoding: 'utf8' })) as Array<{ kind: string }>)[0]?.kind;

describe('qdiscs', () => {
  const scratch = new Scratch();
  afterEach(() => scratch.cleanup());

  it('puts a qdisc at the root, lists it, replaces it and removes it', async () => {
    const node = await scratch.netns('qdisc');
    const link = await node.nl.addVeth({ name: 'q0', peerName: 'q1' });
    await node.nl.addQdisc({ dev: 'q0', kind: 'pfifo', handle: tcHandle(1) });
    expect(rootKind(node.name, 'q0')).toBe('pfifo');
    expect(await node.nl.listQdiscs({ dev: 'q0' })).toEqual([{ ifindex: link.index, kind: 'pfifo', handle: tcHandle(1), parent: 0xffffffff }]);
    await expect(node.nl.addQdisc({ dev: 'q0', kind: 'pfifo' })).rejects.toMatchObject({ code: 'EEXIST' });
    await node.nl.replaceQdisc({ dev: 'q0', kind: 'bfifo' });
    expect(rootKind(node.name, 'q0')).toBe('bfifo');
    await node.nl.deleteQdisc({ dev: 'q0', kind: 'bfifo' });
    expect(rootKind(node.name, 'q0')).not.toBe('bfifo');
  });

  it('a kind this kernel lacks is ENOENT and the root stays as it was; bad specs name the field', async () => {
    const node = await scratch.netns('qdisc');
    await node.nl.addVeth({ name: 'q0', peerName: 'q1' });
    await node.nl.addQdisc({ dev: 'q0', kind: 'pfifo', handle: tcHandle(1) });
    const err = await node.nl.replaceQdisc({ dev: 'q0', kind: 'sch_nonesuch' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err).toMatchObject({ code: 'ENOENT' });
    expect(rootKind(node.name, 'q0')).toBe('pfifo');
    await expect(node.nl.addQdisc({ dev: 'q0', kind: 'Not A Kind' })).rejects.toThrow(NetlinkInputError);
    await expect(node.nl.addQdisc({ dev: 'q0', kind: 'pfifo', parent: -1 })).rejects.toThrow(/qdisc\.parent/);
  });
});
