import { describe, expect, it } from 'vitest';
import { formatIp, formatMac, parseCidr, parseIp, parseMac, tryParseIp } from './addr.js';

const canonical = (text: string): string => formatIp(parseIp(text, 'ip').bytes);

describe('address text', () => {
  it('formats IPv4 and IPv6 canonically (RFC 5952)', () => {
    expect(canonical('10.0.0.1')).toBe('10.0.0.1');
    expect(canonical('FD00:0:0:0:0:0:0:0002')).toBe('fd00::2');
    expect(canonical('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonical('2001:0:0:1:0:0:0:1')).toBe('2001:0:0:1::1');
    expect(canonical('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(canonical('::')).toBe('::');
    expect(canonical('::1')).toBe('::1');
    expect(canonical('fe80::')).toBe('fe80::');
    expect(canonical('::ffff:10.1.2.3')).toBe('::ffff:10.1.2.3');
    expect(canonical('64:ff9b::192.0.2.33')).toBe('64:ff9b::c000:221');
  });

  it('rejects what is not an address', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1::2::3', '12345::', 'fe80::1%eth0', '1:2:3:4:5:6:7:8:9', ':1', 'g::']) {
      expect(tryParseIp(bad), bad).toBeUndefined();
    }
  });

  it('parses CIDRs, defaulting to a host prefix', () => {
    expect(parseCidr('10.0.0.0/8', 'dst', { network: true })).toMatchObject({ family: 4, prefixLength: 8 });
    expect(parseCidr('fd00::1', 'address')).toMatchObject({ family: 6, prefixLength: 128 });
    expect(() => parseCidr('10.0.0.0/08', 'dst')).toThrow(/dst: .*prefix length/);
    expect(() => parseCidr('fd00::1/64', 'dst', { network: true })).toThrow(/the network is fd00::\/64/);
  });

  it('parses and formats MACs', () => {
    expect(formatMac(parseMac('0A-58-0A-00-00-02', 'mac'))).toBe('0a:58:0a:00:00:02');
    expect(() => parseMac('0a:58:0a:00:00', 'peerMac')).toThrow(/^peerMac: /);
  });
});
