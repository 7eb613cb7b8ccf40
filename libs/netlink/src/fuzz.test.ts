import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAddress } from './addresses.js';
import { NetlinkParseError } from './errors.js';
import { parseLink } from './links.js';
import { parseNeighbour } from './neighbours.js';
import { parseQdisc } from './qdiscs.js';
import { parseRoute } from './routes.js';
import { parseAttrs, splitMessages, type Message } from './wire.js';

// Reply messages come from the kernel, but a parser must still never read past a buffer: each
// either returns or throws its typed error, whatever the bytes.
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

/** A payload shaped like the real thing: a family header then attributes, lengths mostly plausible. */
const attribute = fc
  .record({ type: fc.integer({ min: 0, max: 0xffff }), value: fc.uint8Array({ maxLength: 24 }), lie: fc.option(fc.integer({ min: 0, max: 0xffff }), { freq: 4 }) })
  .map(({ type, value, lie }) => {
    const len = 4 + value.length;
    const b = Buffer.alloc((len + 3) & ~3);
    b.writeUInt16LE(lie ?? len, 0);
    b.writeUInt16LE(type, 2);
    Buffer.from(value).copy(b, 4);
    return b;
  });
const payload = fc
  .tuple(fc.uint8Array({ maxLength: 24 }), fc.array(attribute, { maxLength: 8 }), fc.constantFrom(0, 2, 10))
  .map(([header, attrs, family]) => {
    const h = Buffer.from(header);
    if (h.length > 0) h[0] = family;
    return Buffer.concat([h, ...attrs]);
  });

const parsers: [string, (m: Message) => unknown][] = [
  ['link', parseLink],
  ['route', parseRoute],
  ['address', parseAddress],
  ['neighbour', parseNeighbour],
  ['qdisc', parseQdisc],
];

function typedOnly(run: () => unknown): void {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(NetlinkParseError);
  }
}

describe('netlink reply parsing, fuzzed', () => {
  it('splitMessages and parseAttrs take any bytes, return whole slices and never throw', () => {
    fc.assert(
      fc.property(bytes(512), fc.nat(64), (data, offset) => {
        const messages = splitMessages(data);
        for (const m of messages) expect(m.payload.length).toBeLessThanOrEqual(data.length);
        const attrs = parseAttrs(data, offset);
        for (const v of attrs.values()) expect(v.length).toBeLessThanOrEqual(data.length);
      }),
      { numRuns: 3000 },
    );
  });

  it.each(parsers)('the %s parser returns or throws NetlinkParseError, never a RangeError', (_, parse) => {
    fc.assert(
      fc.property(fc.oneof(bytes(96), payload), fc.nat(0xffff), (data, type) => typedOnly(() => parse({ type, flags: 0, payload: data }))),
      { numRuns: 2000 },
    );
  });

  it('says what is wrong with a truncated message and a bad address attribute', () => {
    expect(() => parseLink({ type: 16, flags: 0, payload: Buffer.alloc(7) })).toThrow('malformed netlink link message: 7 bytes, shorter than its 16-byte header');
    const route = Buffer.alloc(12 + 8);
    route[0] = 2;
    route[1] = 24;
    route.writeUInt16LE(7, 12); // RTA_DST with 3 bytes of address
    route.writeUInt16LE(1, 14);
    expect(() => parseRoute({ type: 24, flags: 0, payload: route })).toThrow('malformed netlink route message: attribute 1 has 3 bytes, not an IPv4 or IPv6 address');
  });
});
