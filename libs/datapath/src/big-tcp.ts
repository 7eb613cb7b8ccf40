import type { Link, NetlinkHandle } from '@cilia/netlink';
import type { Encapsulation, Logger } from '@cilia/core';
import type { DatapathConfig } from './config.js';

/** The IPv4 GSO/GRO size without BIG TCP: the 16-bit IPv4 total length. */
export const LEGACY_GSO_SIZE = 65_536;
/** The size BIG TCP raises it to (the kernel's and Cilium's choice: 3 × 64 KiB). */
export const BIG_TCP_GSO_SIZE = 196_608;

/** What BIG TCP needs to know of the encapsulation plugin, if one is loaded. */
export type EncapsulationTraits = Pick<Encapsulation, 'overhead' | 'bigTcp'>;

/** The IPv4 sizes BIG TCP settles on, and why it is off under "auto". */
export interface GsoSizes {
  /** GSO/GRO size of endpoint veths, and GSO size of the egress device. */
  readonly size: number;
  /**
   * GRO size of the egress device. With an overlay it stays at 64 KiB: GRO would merge arriving
   * tunnel packets past it, and the kernel's UDP receive path (the VXLAN device's, for the
   * node's own traffic) reads a 16-bit UDP length before Linux 6.19. Pod packets need no GRO
   * to arrive big: they leave the sender as one GSO packet, and where a wire cuts them, they
   * arrive as 64 KiB aggregates as without BIG TCP.
   */
  readonly egressGro: number;
  readonly why?: string;
}

/**
 * The IPv4 GSO/GRO sizes of endpoint veths and the egress device. BIG TCP needs the egress
 * device to take packets that large, and an encapsulation, if any, that carries them (both of
 * ours do: their eBPF writes and strips the outer headers). Throws, naming `datapath.bigTcp`,
 * when it is required (`true`) but cannot be had.
 */
export function gsoSizeFor(setting: DatapathConfig['bigTcp'], egress: Link | undefined, encapsulation?: EncapsulationTraits): GsoSizes {
  const legacy = { size: LEGACY_GSO_SIZE, egressGro: LEGACY_GSO_SIZE };
  if (setting === false) return legacy;
  const overlay = (encapsulation?.overhead ?? 0) > 0;
  let why: string | undefined;
  if (overlay && !encapsulation?.bigTcp) why = 'the overlay plugin loaded cannot carry packets over 64 KiB (its outer UDP/IPv4 length fields stop there)';
  else if (!egress) why = 'there is no egress device';
  else if (egress.gsoIpv4MaxSize === undefined) why = `the kernel does not support it for IPv4 (before 6.3): ${egress.name} reports no gso_ipv4_max_size`;
  else if ((egress.tsoMaxSize ?? 0) < BIG_TCP_GSO_SIZE) why = `${egress.name} segments at most ${egress.tsoMaxSize ?? 'an unknown size'} bytes (tso_max_size; ${BIG_TCP_GSO_SIZE} needed)`;
  if (!why) return { size: BIG_TCP_GSO_SIZE, egressGro: overlay ? LEGACY_GSO_SIZE : BIG_TCP_GSO_SIZE };
  if (setting === true) throw new Error(`datapath.bigTcp: true, but BIG TCP is not possible here: ${why}`);
  return { ...legacy, why };
}

/**
 * Gives the egress device the IPv4 GSO and GRO limits BIG TCP settled on: raised, or set back
 * to 64 KiB when it is off and the device was left above (by an earlier run with it on).
 */
export async function applyGsoSize(host: NetlinkHandle, egress: Link, sizes: Pick<GsoSizes, 'size' | 'egressGro'>, log: Logger): Promise<void> {
  const gso = egress.gsoIpv4MaxSize;
  const gro = egress.groIpv4MaxSize;
  if (gso === undefined || gro === undefined) return;
  if (gso === sizes.size && gro === sizes.egressGro) return;
  // Off: only a device left above 64 KiB is set back; one at or below it is left as it is.
  const raised = gso > LEGACY_GSO_SIZE || gro > LEGACY_GSO_SIZE;
  if (sizes.size === LEGACY_GSO_SIZE && !raised) return;
  await host.setLink(egress.index, { gsoIpv4MaxSize: sizes.size, groIpv4MaxSize: sizes.egressGro });
  log.info({ device: egress.name, from: { gso, gro }, to: { gso: sizes.size, gro: sizes.egressGro } }, sizes.size > LEGACY_GSO_SIZE ? 'BIG TCP on: egress device GSO/GRO size set' : 'BIG TCP off: egress device GSO/GRO size set back to 64 KiB');
}
