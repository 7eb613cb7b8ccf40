import type { Link, NetlinkHandle } from '@cilia/netlink';
import type { Logger } from '@cilia/core';
import type { DatapathConfig } from './config.js';

/** The IPv4 GSO/GRO size without BIG TCP: the 16-bit IPv4 total length. */
export const LEGACY_GSO_SIZE = 65_536;
/** The size BIG TCP raises it to (the kernel's and Cilium's choice: 3 × 64 KiB). */
export const BIG_TCP_GSO_SIZE = 196_608;

/**
 * The IPv4 GSO/GRO size endpoint veths and the egress device get. BIG TCP needs the egress
 * device to take packets that large, and no overlay: VXLAN and Geneve wrap pod packets in outer
 * IPv4 and UDP headers whose length fields stop at 64 KiB. Throws, naming `datapath.bigTcp`,
 * when it is required (`true`) but cannot be had.
 */
export function gsoSizeFor(setting: DatapathConfig['bigTcp'], egress: Link | undefined, encapsulationOverhead: number): { size: number; why?: string } {
  if (setting === false) return { size: LEGACY_GSO_SIZE };
  let why: string | undefined;
  if (encapsulationOverhead > 0) why = 'an overlay plugin is loaded (its outer UDP/IPv4 length fields stop at 64 KiB)';
  else if (!egress) why = 'there is no egress device';
  else if (egress.gsoIpv4MaxSize === undefined) why = `the kernel does not support it for IPv4 (before 6.3): ${egress.name} reports no gso_ipv4_max_size`;
  else if ((egress.tsoMaxSize ?? 0) < BIG_TCP_GSO_SIZE) why = `${egress.name} segments at most ${egress.tsoMaxSize ?? 'an unknown size'} bytes (tso_max_size; ${BIG_TCP_GSO_SIZE} needed)`;
  if (!why) return { size: BIG_TCP_GSO_SIZE };
  if (setting === true) throw new Error(`datapath.bigTcp: true, but BIG TCP is not possible here: ${why}`);
  return { size: LEGACY_GSO_SIZE, why };
}

/**
 * Gives the egress device IPv4 GSO and GRO limits of `size`: raised for BIG TCP, or set back
 * to 64 KiB when it is off and the device was left above (by an earlier run with it on).
 */
export async function applyGsoSize(host: NetlinkHandle, egress: Link, size: number, log: Logger): Promise<void> {
  const gso = egress.gsoIpv4MaxSize;
  const gro = egress.groIpv4MaxSize;
  if (gso === undefined || gro === undefined) return;
  const raise = size > LEGACY_GSO_SIZE && (gso !== size || gro !== size);
  const lower = size === LEGACY_GSO_SIZE && (gso > size || gro > size);
  if (!raise && !lower) return;
  await host.setLink(egress.index, { gsoIpv4MaxSize: size, groIpv4MaxSize: size });
  log.info({ device: egress.name, from: { gso, gro }, to: size }, raise ? 'BIG TCP on: egress device GSO/GRO size raised' : 'BIG TCP off: egress device GSO/GRO size set back to 64 KiB');
}
