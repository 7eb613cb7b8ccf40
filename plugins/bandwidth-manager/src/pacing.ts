import { randomBytes } from 'node:crypto';
import { createNetns, deleteNetns, NetlinkError, openNetlink, openNetns, tcHandle, type Link, type NetlinkHandle } from '@cilia/netlink';

/** The qdisc egress EDT needs: it holds each packet until its skb->tstamp. */
export const PACING_QDISC = 'fq';

/**
 * Whether this kernel has the fq qdisc. Asked where it changes nothing on the node: a veth in a
 * network namespace of its own, removed afterwards.
 */
export async function kernelHasFq(): Promise<boolean> {
  const name = `cilia_fqprobe_${randomBytes(4).toString('hex')}`;
  await createNetns(name);
  let nl: NetlinkHandle | undefined;
  try {
    nl = await openNetns(name);
    await nl.addVeth({ name: 'probe0', peerName: 'probe1' });
    await nl.addQdisc({ dev: 'probe0', kind: PACING_QDISC });
    return true;
  } catch (err) {
    if (err instanceof NetlinkError && err.code === 'ENOENT') return false;
    throw err;
  } finally {
    await nl?.close();
    await deleteNetns(name);
  }
}

/** The node devices pods' traffic leaves through: the configured ones, else the device of the default IPv4 route. */
export async function egressDevices(nl: NetlinkHandle, configured: readonly string[]): Promise<Link[]> {
  if (configured.length > 0) {
    return Promise.all(
      configured.map(async (name, i) => {
        const link = await nl.findLink(name);
        if (!link) throw new Error(`bandwidth.devices[${i}]: no interface named ${JSON.stringify(name)}`);
        return link;
      }),
    );
  }
  const routes = await nl.listRoutes({ family: 4 });
  const ifindex = routes.find((r) => r.dst === 'default' && r.ifindex !== undefined)?.ifindex;
  return ifindex === undefined ? [] : [await nl.getLink(ifindex)];
}

/**
 * fq on each device, as Cilium sets it up: the root on a single-queue device; on a multi-queue
 * one an mq root with an fq leaf per transmit queue, so queues keep their own locks. Returns the
 * devices' names.
 */
export async function setUpPacing(configured: readonly string[]): Promise<string[]> {
  const nl = await openNetlink();
  try {
    const devices = await egressDevices(nl, configured);
    for (const link of devices) {
      const queues = link.numTxQueues ?? 1;
      if (queues <= 1) {
        await nl.replaceQdisc({ dev: link.index, kind: PACING_QDISC });
        continue;
      }
      const mq = tcHandle(0x8000);
      await nl.replaceQdisc({ dev: link.index, kind: 'mq', handle: mq });
      for (let q = 1; q <= queues; q++) await nl.replaceQdisc({ dev: link.index, kind: PACING_QDISC, parent: tcHandle(0x8000, q) });
    }
    return devices.map((d) => d.name);
  } finally {
    await nl.close();
  }
}
