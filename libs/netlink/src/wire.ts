// The netlink wire format: a 16-byte header, a fixed family header (ifinfomsg, rtmsg, ...),
// then type-length-value attributes padded to 4 bytes, possibly nested. Host byte order
// throughout (little-endian on every platform this agent targets).

import { formatIp } from './addr.js';
import { NetlinkParseError } from './errors.js';

const NLMSG_HDRLEN = 16;
const NLA_HDRLEN = 4;
/** Attribute type bits; the top two are the nested / network-byte-order flags. */
const NLA_TYPE_MASK = 0x3fff;
const NLA_F_NESTED = 0x8000;

const align4 = (n: number): number => (n + 3) & ~3;

/** Builds one request message. */
export class MessageWriter {
  private buf = Buffer.alloc(256);
  private len = NLMSG_HDRLEN;

  constructor(
    private readonly type: number,
    private readonly flags: number,
  ) {}

  private reserve(n: number): number {
    const start = this.len;
    const needed = start + align4(n);
    if (needed > this.buf.length) {
      const grown = Buffer.alloc(Math.max(needed, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    this.len = needed;
    return start;
  }

  /** The fixed family header (e.g. a 16-byte ifinfomsg) filled by `fill`. */
  header(size: number, fill: (view: Buffer) => void): this {
    const start = this.reserve(size);
    fill(this.buf.subarray(start, start + size));
    return this;
  }

  bytes(type: number, data: Uint8Array): this {
    const start = this.reserve(NLA_HDRLEN + data.length);
    this.buf.writeUInt16LE(NLA_HDRLEN + data.length, start);
    this.buf.writeUInt16LE(type, start + 2);
    this.buf.set(data, start + NLA_HDRLEN);
    return this;
  }

  u8(type: number, value: number): this {
    return this.bytes(type, Uint8Array.of(value));
  }

  u32(type: number, value: number): this {
    const data = Buffer.alloc(4);
    data.writeUInt32LE(value >>> 0);
    return this.bytes(type, data);
  }

  /** A NUL-terminated string attribute. */
  string(type: number, value: string): this {
    return this.bytes(type, Buffer.from(`${value}\0`, 'utf8'));
  }

  /** A nested attribute whose content `fill` writes. */
  nested(type: number, fill: (w: this) => void): this {
    const start = this.reserve(NLA_HDRLEN);
    fill(this);
    this.buf.writeUInt16LE(this.len - start, start);
    this.buf.writeUInt16LE(type | NLA_F_NESTED, start + 2);
    return this;
  }

  /** The finished message, stamped with `seq`. */
  finish(seq: number): Buffer {
    const out = this.buf.subarray(0, this.len);
    out.writeUInt32LE(this.len, 0);
    out.writeUInt16LE(this.type, 4);
    out.writeUInt16LE(this.flags, 6);
    out.writeUInt32LE(seq >>> 0, 8);
    out.writeUInt32LE(0, 12);
    return out;
  }
}

/** One reply message: its type and the bytes after the netlink header. */
export interface Message {
  type: number;
  flags: number;
  payload: Buffer;
}

/** Splits the addon's reply bytes into messages. */
export function splitMessages(data: Buffer): Message[] {
  const out: Message[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= data.length) {
    const len = data.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > data.length) break;
    out.push({
      type: data.readUInt16LE(off + 4),
      flags: data.readUInt16LE(off + 6),
      payload: data.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** The payload of a `kind` message, checked to hold its `size`-byte family header. */
export function familyHeader(msg: Message, size: number, kind: string): Buffer {
  if (msg.payload.length < size) throw new NetlinkParseError(kind, `${msg.payload.length} bytes, shorter than its ${size}-byte header`);
  return msg.payload;
}

/** An address attribute of a `kind` message as text; 4 or 16 bytes, or a parse error. */
export function attrIp(attrs: Attrs, type: number, kind: string): string | undefined {
  const v = attrs.get(type);
  if (!v) return undefined;
  if (v.length !== 4 && v.length !== 16) throw new NetlinkParseError(kind, `attribute ${type} has ${v.length} bytes, not an IPv4 or IPv6 address`);
  return formatIp(v);
}

/** Attributes by type (the last one wins on repeats, which rtnetlink does not send). */
export type Attrs = Map<number, Buffer>;

/** Parses the attributes in `data` from `offset` (after the family header). */
export function parseAttrs(data: Buffer, offset = 0): Attrs {
  const attrs: Attrs = new Map();
  let off = offset;
  while (off + NLA_HDRLEN <= data.length) {
    const len = data.readUInt16LE(off);
    if (len < NLA_HDRLEN || off + len > data.length) break;
    attrs.set(data.readUInt16LE(off + 2) & NLA_TYPE_MASK, data.subarray(off + NLA_HDRLEN, off + len));
    off += align4(len);
  }
  return attrs;
}

export function attrU32(attrs: Attrs, type: number): number | undefined {
  const v = attrs.get(type);
  return v && v.length >= 4 ? v.readUInt32LE(0) : undefined;
}

export function attrI32(attrs: Attrs, type: number): number | undefined {
  const v = attrs.get(type);
  return v && v.length >= 4 ? v.readInt32LE(0) : undefined;
}

export function attrU8(attrs: Attrs, type: number): number | undefined {
  const v = attrs.get(type);
  return v && v.length >= 1 ? v.readUInt8(0) : undefined;
}

/** A NUL-terminated string attribute. */
export function attrString(attrs: Attrs, type: number): string | undefined {
  const v = attrs.get(type);
  if (!v) return undefined;
  const nul = v.indexOf(0);
  return v.toString('utf8', 0, nul < 0 ? v.length : nul);
}
