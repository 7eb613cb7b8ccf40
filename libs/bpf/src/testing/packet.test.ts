import { describe, expect, it } from 'vitest';
import { checksum, ipv6Bytes, packet, parsePacket, TCP_FLAGS } from './packet.js';

describe('packet builders', () => {
  it('computes the RFC 1071 example checksum', () => {
    // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2, checksum 220d.
    expect(checksum(Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]))).toBe(0x220d);
  });

  it('builds IPv4/TCP with lengths and checksums that verify', () => {
    const frame = packet()
      .eth({ src: 'aa:bb:cc:dd:ee:ff', dst: '11:22:33:44:55:66' })
      .ipv4({ src: '192.0.2.1', dst: '198.51.100.7', ttl: 17 })
      .tcp({ sport: 1234, dport: 443, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK })
      .payload('hello')
      .build();
    expect(frame.length).toBe(14 + 20 + 20 + 5);
    const p = parsePacket(frame);
    expect(p.eth).toEqual({ src: 'aa:bb:cc:dd:ee:ff', dst: '11:22:33:44:55:66', type: 0x0800 });
    expect(p.ipv4).toEqual({ src: '192.0.2.1', dst: '198.51.100.7', ttl: 17, protocol: 6, totalLength: 45, checksumOk: true });
    expect(p.tcp).toEqual({ sport: 1234, dport: 443, flags: 0x12, checksumOk: true });
  });

  it('builds IPv6/UDP, IPv6/ICMPv6 and IPv4/ICMP', () => {
    const udp6 = parsePacket(packet().eth().ipv6({ src: '2001:db8::1', dst: '2001:db8::2' }).udp({ sport: 5, dport: 6 }).payload('x').build());
    expect(udp6.ipv6).toEqual({ src: '2001:db8::1', dst: '2001:db8::2', hopLimit: 64, nextHeader: 17 });
    expect(udp6.udp).toEqual({ sport: 5, dport: 6, length: 9, checksumOk: true });
    const icmp6 = parsePacket(packet().eth().ipv6({ src: 'fe80::1', dst: 'ff02::1' }).icmp().build());
    expect(icmp6.icmp).toMatchObject({ type: 128, checksumOk: true });
    const icmp4 = parsePacket(packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).icmp({ id: 9, seq: 2 }).payload('abc').build());
    expect(icmp4.icmp).toEqual({ type: 8, code: 0, id: 9, seq: 2, checksumOk: true });
  });

  it('can corrupt a checksum on purpose, and the parser notices', () => {
    const p = parsePacket(packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 1, dport: 2 }).corruptChecksum().build());
    expect(p.udp?.checksumOk).toBe(false);
  });

  it('rejects malformed addresses naming them', () => {
    expect(() => packet().eth({ src: 'zz' }).build()).toThrow(/not a MAC address: 'zz'/);
    expect(() => packet().eth().ipv4({ src: '10.0.0.256', dst: '1.1.1.1' }).build()).toThrow(/not an IPv4 address: '10.0.0.256'/);
    expect(() => ipv6Bytes('1::2::3')).toThrow(/not an IPv6 address/);
    expect([...ipv6Bytes('::1')]).toEqual([...new Array(15).fill(0), 1]);
  });
});
