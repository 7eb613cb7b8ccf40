// Test support: Geneve frames as a remote node would send them.
import { packet } from '@cilia/bpf/testing';

export interface GeneveSpec {
  readonly outerSrc: string;
  readonly outerDst: string;
  readonly port?: number;
  readonly vni: number;
  /** The inner Ethernet frame. */
  readonly inner: Buffer;
  readonly version?: number;
  readonly protocol?: number;
  /** Option bytes (a multiple of 4). */
  readonly options?: Buffer;
  readonly critical?: boolean;
  readonly oam?: boolean;
  readonly dstMac?: string;
}

/** The 8-byte Geneve header (RFC 8926) followed by options. */
export function geneveHeader(spec: Omit<GeneveSpec, 'outerSrc' | 'outerDst' | 'inner'>): Buffer {
  const options = spec.options ?? Buffer.alloc(0);
  const h = Buffer.alloc(8);
  h[0] = ((spec.version ?? 0) << 6) | (options.length / 4);
  h[1] = (spec.oam ? 0x80 : 0) | (spec.critical ? 0x40 : 0);
  h.writeUInt16BE(spec.protocol ?? 0x6558, 2);
  h.writeUIntBE(spec.vni, 4, 3);
  return Buffer.concat([h, options]);
}

/** A whole frame: outer Ethernet/IPv4/UDP, Geneve, the inner frame. */
export function geneveFrame(spec: GeneveSpec): Buffer {
  return packet()
    .eth({ src: '02:00:00:00:0e:02', dst: spec.dstMac ?? '02:00:00:00:0e:01' })
    .ipv4({ src: spec.outerSrc, dst: spec.outerDst })
    .udp({ sport: 50123, dport: spec.port ?? 6081 })
    .payload(Buffer.concat([geneveHeader(spec), spec.inner]))
    .build();
}
