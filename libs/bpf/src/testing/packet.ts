// Packet builders and parsers for BPF unit tests: craft Ethernet/IPv4/IPv6/TCP/UDP/ICMP
// frames with correct lengths and checksums, and read back what a program produced.

export interface EthernetSpec {
  readonly src?: string;
  readonly dst?: string;
}
export interface Ipv4Spec {
  readonly src: string;
  readonly dst: string;
  readonly ttl?: number;
  readonly id?: number;
  readonly tos?: number;
}
export interface Ipv6Spec {
  readonly src: string;
  readonly dst: string;
  readonly hopLimit?: number;
  readonly flowLabel?: number;
}
export interface TcpSpec {
  readonly sport: number;
  readonly dport: number;
  readonly seq?: number;
  readonly ack?: number;
  /** TCP flags byte: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10. Default SYN. */
  readonly flags?: number;
  readonly window?: number;
}
export interface UdpSpec {
  readonly sport: number;
  readonly dport: number;
}
export interface IcmpSpec {
  /** Default: echo request (8 for ICMP, 128 for ICMPv6). */
  readonly type?: number;
  readonly code?: number;
  readonly id?: number;
  readonly seq?: number;
}

export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;
export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58 } as const;
export const ETH_P = { IPV4: 0x0800, IPV6: 0x86dd, ARP: 0x0806 } as const;

export function macBytes(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new TypeError(`not a MAC address: '${mac}'`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function ipv4Bytes(addr: string): Buffer {
  const parts = addr.split('.').map(Number);
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) {
    throw new TypeError(`not an IPv4 address: '${addr}'`);
  }
  return Buffer.from(parts);
}

export function ipv6Bytes(addr: string): Buffer {
  const [head, tail, extra] = addr.split('::');
  if (extra !== undefined) throw new TypeError(`not an IPv6 address: '${addr}'`);
  const groups = (s: string | undefined): number[] => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const all = [...h, ...new Array<number>(fill).fill(0), ...t];
  if (all.length !== 8 || all.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) {
    throw new TypeError(`not an IPv6 address: '${addr}'`);
  }
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

function formatMac(b: Buffer, o: number): string {
  return [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
function formatIpv4(b: Buffer, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}
function formatIpv6(b: Buffer, o: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(o + i * 2).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** Internet checksum (RFC 1071) of `data`, seeded with a partial sum. */
export function checksum(data: Uint8Array, seed = 0): number {
  let sum = seed;
  for (let i = 0; i + 1 < data.length; i += 2) sum += ((data[i] as number) << 8) | (data[i + 1] as number);
  if (data.length % 2) sum += (data[data.length - 1] as number) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function pseudoSum(src: Buffer, dst: Buffer, proto: number, length: number): number {
  const pseudo = Buffer.concat([src, dst, Buffer.from([0, proto]), Buffer.from([(length >> 8) & 0xff, length & 0xff])]);
  return (~checksum(pseudo) & 0xffff) >>> 0;
}

type L3 = { kind: 'ipv4'; spec: Ipv4Spec } | { kind: 'ipv6'; spec: Ipv6Spec };
type L4 = { kind: 'tcp'; spec: TcpSpec } | { kind: 'udp'; spec: UdpSpec } | { kind: 'icmp'; spec: IcmpSpec };

/**
 * Builds one frame: `packet().eth().ipv4({...}).udp({...}).payload('hi').build()`.
 * Lengths and checksums are filled in; `corruptChecksum()` breaks the L4 one on purpose.
 */
export class PacketBuilder {
  private ethSpec: EthernetSpec = {};
  private l3: L3 | undefined;
  private l4: L4 | undefined;
  private body: Buffer = Buffer.alloc(0);
  private badChecksum = false;

  eth(spec: EthernetSpec = {}): this {
    this.ethSpec = spec;
    return this;
  }
  ipv4(spec: Ipv4Spec): this {
    this.l3 = { kind: 'ipv4', spec };
    return this;
  }
  ipv6(spec: Ipv6Spec): this {
    this.l3 = { kind: 'ipv6', spec };
    return this;
  }
  tcp(spec: TcpSpec): this {
    this.l4 = { kind: 'tcp', spec };
    return this;
  }
  udp(spec: UdpSpec): this {
    this.l4 = { kind: 'udp', spec };
    return this;
  }
  icmp(spec: IcmpSpec = {}): this {
    this.l4 = { kind: 'icmp', spec };
    return this;
  }
  payload(data: string | Uint8Array): this {
    this.body = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
    return this;
  }
  corruptChecksum(): this {
    this.badChecksum = true;
    return this;
  }

  build(): Buffer {
    const l3 = this.l3;
    const v6 = l3?.kind === 'ipv6';
    const l4 = this.buildL4(l3);
    const ethType = l3 === undefined ? ETH_P.ARP : v6 ? ETH_P.IPV6 : ETH_P.IPV4;
    const eth = Buffer.alloc(14);
    macBytes(this.ethSpec.dst ?? '02:00:00:00:00:02').copy(eth, 0);
    macBytes(this.ethSpec.src ?? '02:00:00:00:00:01').copy(eth, 6);
    eth.writeUInt16BE(ethType, 12);
    if (!l3) return Buffer.concat([eth, this.body]);
    const proto = this.protocol(v6);
    if (l3.kind === 'ipv4') {
      const ip = Buffer.alloc(20);
      ip[0] = 0x45;
      ip[1] = l3.spec.tos ?? 0;
      ip.writeUInt16BE(20 + l4.length, 2);
      ip.writeUInt16BE(l3.spec.id ?? 1, 4);
      ip.writeUInt16BE(0x4000, 6); // DF
      ip[8] = l3.spec.ttl ?? 64;
      ip[9] = proto;
      ipv4Bytes(l3.spec.src).copy(ip, 12);
      ipv4Bytes(l3.spec.dst).copy(ip, 16);
      ip.writeUInt16BE(checksum(ip), 10);
      return Buffer.concat([eth, ip, l4]);
    }
    const ip = Buffer.alloc(40);
    ip.writeUInt32BE((6 << 28) | ((l3.spec.flowLabel ?? 0) & 0xfffff), 0);
    ip.writeUInt16BE(l4.length, 4);
    ip[6] = proto;
    ip[7] = l3.spec.hopLimit ?? 64;
    ipv6Bytes(l3.spec.src).copy(ip, 8);
    ipv6Bytes(l3.spec.dst).copy(ip, 24);
    return Buffer.concat([eth, ip, l4]);
  }

  private protocol(v6: boolean): number {
    if (!this.l4) return 59; // no next header
    if (this.l4.kind === 'icmp') return v6 ? IPPROTO.ICMPV6 : IPPROTO.ICMP;
    return this.l4.kind === 'tcp' ? IPPROTO.TCP : IPPROTO.UDP;
  }

  private buildL4(l3: L3 | undefined): Buffer {
    const l4 = this.l4;
    if (!l4) return this.body;
    const v6 = l3?.kind === 'ipv6';
    let hdr: Buffer;
    let csumAt: number;
    if (l4.kind === 'tcp') {
      hdr = Buffer.alloc(20);
      hdr.writeUInt16BE(l4.spec.sport, 0);
      hdr.writeUInt16BE(l4.spec.dport, 2);
      hdr.writeUInt32BE(l4.spec.seq ?? 1, 4);
      hdr.writeUInt32BE(l4.spec.ack ?? 0, 8);
      hdr[12] = 5 << 4;
      hdr[13] = l4.spec.flags ?? TCP_FLAGS.SYN;
      hdr.writeUInt16BE(l4.spec.window ?? 65535, 14);
      csumAt = 16;
    } else if (l4.kind === 'udp') {
      hdr = Buffer.alloc(8);
      hdr.writeUInt16BE(l4.spec.sport, 0);
      hdr.writeUInt16BE(l4.spec.dport, 2);
      hdr.writeUInt16BE(8 + this.body.length, 4);
      csumAt = 6;
    } else {
      hdr = Buffer.alloc(8);
      hdr[0] = l4.spec.type ?? (v6 ? 128 : 8);
      hdr[1] = l4.spec.code ?? 0;
      hdr.writeUInt16BE(l4.spec.id ?? 1, 4);
      hdr.writeUInt16BE(l4.spec.seq ?? 1, 6);
      csumAt = 2;
    }
    const seg = Buffer.concat([hdr, this.body]);
    let seed = 0;
    if (l3 && !(l4.kind === 'icmp' && !v6)) {
      const src = l3.kind === 'ipv4' ? ipv4Bytes(l3.spec.src) : ipv6Bytes(l3.spec.src);
      const dst = l3.kind === 'ipv4' ? ipv4Bytes(l3.spec.dst) : ipv6Bytes(l3.spec.dst);
      seed = pseudoSum(src, dst, this.protocol(v6), seg.length);
    }
    let sum = checksum(seg, seed);
    if (l4.kind === 'udp' && sum === 0) sum = 0xffff;
    seg.writeUInt16BE(this.badChecksum ? sum ^ 0xffff : sum, csumAt);
    return seg;
  }
}

/** Starts a frame. */
export function packet(): PacketBuilder {
  return new PacketBuilder();
}

/** A frame taken apart, with checksum validity, for assertions on program output. */
export interface ParsedPacket {
  readonly eth: { readonly src: string; readonly dst: string; readonly type: number };
  readonly ipv4?: {
    readonly src: string;
    readonly dst: string;
    readonly ttl: number;
    readonly protocol: number;
    readonly totalLength: number;
    readonly checksumOk: boolean;
  };
  readonly ipv6?: { readonly src: string; readonly dst: string; readonly hopLimit: number; readonly nextHeader: number };
  readonly tcp?: { readonly sport: number; readonly dport: number; readonly flags: number; readonly checksumOk: boolean };
  readonly udp?: { readonly sport: number; readonly dport: number; readonly length: number; readonly checksumOk: boolean };
  readonly icmp?: { readonly type: number; readonly code: number; readonly id: number; readonly seq: number; readonly checksumOk: boolean };
  readonly payload: Buffer;
}

/** Parses an Ethernet frame built by (or rewritten from) {@link PacketBuilder}. */
export function parsePacket(frame: Uint8Array): ParsedPacket {
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  if (b.length < 14) throw new RangeError(`frame of ${b.length} bytes has no Ethernet header`);
  const eth = { dst: formatMac(b, 0), src: formatMac(b, 6), type: b.readUInt16BE(12) };
  let at = 14;
  let proto = -1;
  let src: Buffer | undefined;
  let dst: Buffer | undefined;
  let l4len = 0;
  const out: { -readonly [K in keyof ParsedPacket]: ParsedPacket[K] } = { eth, payload: Buffer.alloc(0) };
  if (eth.type === ETH_P.IPV4) {
    const ihl = ((b[at] as number) & 0x0f) * 4;
    const totalLength = b.readUInt16BE(at + 2);
    proto = b[at + 9] as number;
    src = b.subarray(at + 12, at + 16);
    dst = b.subarray(at + 16, at + 20);
    out.ipv4 = {
      src: formatIpv4(b, at + 12),
      dst: formatIpv4(b, at + 16),
      ttl: b[at + 8] as number,
      protocol: proto,
      totalLength,
      checksumOk: checksum(b.subarray(at, at + ihl)) === 0,
    };
    l4len = totalLength - ihl;
    at += ihl;
  } else if (eth.type === ETH_P.IPV6) {
    proto = b[at + 6] as number;
    l4len = b.readUInt16BE(at + 4);
    src = b.subarray(at + 8, at + 24);
    dst = b.subarray(at + 24, at + 40);
    out.ipv6 = { src: formatIpv6(b, at + 8), dst: formatIpv6(b, at + 24), hopLimit: b[at + 7] as number, nextHeader: proto };
    at += 40;
  }
  const seg = b.subarray(at, at + l4len);
  const l4ok = (): boolean =>
    src !== undefined && dst !== undefined && checksum(seg, pseudoSum(src, dst, proto, seg.length)) === 0;
  if (proto === IPPROTO.TCP) {
    out.tcp = { sport: seg.readUInt16BE(0), dport: seg.readUInt16BE(2), flags: seg[13] as number, checksumOk: l4ok() };
    out.payload = seg.subarray(((seg[12] as number) >> 4) * 4);
  } else if (proto === IPPROTO.UDP) {
    out.udp = { sport: seg.readUInt16BE(0), dport: seg.readUInt16BE(2), length: seg.readUInt16BE(4), checksumOk: l4ok() };
    out.payload = seg.subarray(8);
  } else if (proto === IPPROTO.ICMP || proto === IPPROTO.ICMPV6) {
    out.icmp = {
      type: seg[0] as number,
      code: seg[1] as number,
      id: seg.readUInt16BE(4),
      seq: seg.readUInt16BE(6),
      checksumOk: proto === IPPROTO.ICMP ? checksum(seg) === 0 : l4ok(),
    };
    out.payload = seg.subarray(8);
  } else {
    out.payload = b.subarray(at);
  }
  return out;
}
