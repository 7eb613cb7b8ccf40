import { AF_UNSPEC, NLM_F, RTM, TCA, TC_H_ROOT } from './constants.js';
import { NetlinkInputError } from './errors.js';
import { type LinkRef, linkIndex } from './links.js';
import type { RouteSocket } from './socket.js';
import { type Message, MessageWriter, attrString, familyHeader, parseAttrs } from './wire.js';

/** A qdisc handle or parent as tc writes it, `major:minor` (hex), packed as the kernel packs it. */
export function tcHandle(major: number, minor = 0): number {
  return (((major & 0xffff) << 16) | (minor & 0xffff)) >>> 0;
}

/** A queueing discipline to put on a link: its kind with default options. */
export interface QdiscSpec {
  dev: LinkRef;
  /** The kernel's name of the qdisc: "fq", "mq", "tbf", … (sch_<kind>). */
  kind: string;
  /** `root` (default) or the parent class's packed handle (see {@link tcHandle}), e.g. mq's queue 1 is `tcHandle(0x8000, 1)`. */
  parent?: 'root' | number;
  /** Its own packed handle; 0 (default) lets the kernel choose. */
  handle?: number;
}

/** A qdisc as the kernel lists it. */
export interface Qdisc {
  ifindex: number;
  kind: string;
  handle: number;
  /** Packed parent handle; {@link TC_H_ROOT} for the root. */
  parent: number;
}

const TCMSG_SIZE = 20;
const KIND = /^[a-z][a-z0-9_]{0,15}$/;

function qdiscMessage(type: number, flags: number, index: number, spec: QdiscSpec): MessageWriter {
  const parent = spec.parent === undefined || spec.parent === 'root' ? TC_H_ROOT : spec.parent;
  return new MessageWriter(type, flags)
    .header(TCMSG_SIZE, (h) => {
      h.writeUInt8(AF_UNSPEC, 0);
      h.writeInt32LE(index, 4);
      h.writeUInt32LE((spec.handle ?? 0) >>> 0, 8);
      h.writeUInt32LE(parent >>> 0, 12);
    })
    .string(TCA.KIND, spec.kind);
}

function checkSpec(spec: QdiscSpec): void {
  if (typeof spec !== 'object' || spec === null) throw new NetlinkInputError('qdisc', 'expected an object');
  if (typeof spec.kind !== 'string' || !KIND.test(spec.kind)) throw new NetlinkInputError('qdisc.kind', `${JSON.stringify(spec.kind)} is not a qdisc kind`);
  const p = spec.parent;
  if (p !== undefined && p !== 'root' && !(Number.isInteger(p) && p >= 0 && p <= 0xffffffff)) throw new NetlinkInputError('qdisc.parent', 'expected "root" or a packed handle');
}

const describe = (spec: QdiscSpec): string => `${spec.kind} dev ${spec.dev} parent ${spec.parent ?? 'root'}`;

/**
 * Puts a qdisc with its default options on a link (`replace`: in place of the one there). A kind
 * this kernel lacks is refused with ENOENT ("Specified qdisc kind is unknown"), and nothing changes.
 */
export async function addQdisc(sock: RouteSocket, spec: QdiscSpec, replace = false): Promise<void> {
  checkSpec(spec);
  const index = await linkIndex(sock, spec.dev);
  const flags = NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | (replace ? NLM_F.REPLACE : NLM_F.EXCL);
  await sock.request(qdiscMessage(RTM.NEWQDISC, flags, index, spec), replace ? 'qdisc replace' : 'qdisc add', describe(spec));
}

/** Removes the qdisc at `parent` (the root's gives the link its default back). */
export async function deleteQdisc(sock: RouteSocket, spec: QdiscSpec): Promise<void> {
  checkSpec(spec);
  const index = await linkIndex(sock, spec.dev);
  await sock.request(qdiscMessage(RTM.DELQDISC, NLM_F.REQUEST | NLM_F.ACK, index, spec), 'qdisc delete', describe(spec));
}

export function parseQdisc(msg: Message): Qdisc {
  const p = familyHeader(msg, TCMSG_SIZE, 'qdisc');
  return {
    ifindex: p.readInt32LE(4),
    handle: p.readUInt32LE(8),
    parent: p.readUInt32LE(12),
    kind: attrString(parseAttrs(p, TCMSG_SIZE), TCA.KIND) ?? '',
  };
}

/** The qdiscs of the namespace, or of one link. */
export async function listQdiscs(sock: RouteSocket, filter: { dev?: LinkRef } = {}): Promise<Qdisc[]> {
  const index = filter.dev === undefined ? undefined : await linkIndex(sock, filter.dev);
  const w = new MessageWriter(RTM.GETQDISC, NLM_F.REQUEST | NLM_F.DUMP).header(TCMSG_SIZE, (h) => {
    h.writeUInt8(AF_UNSPEC, 0);
    h.writeInt32LE(index ?? 0, 4);
  });
  return (await sock.dump(w, 'qdisc list', filter.dev === undefined ? '' : `dev ${filter.dev}`))
    .filter((m) => m.type === RTM.NEWQDISC)
    .map(parseQdisc)
    .filter((q) => index === undefined || q.ifindex === index);
}
