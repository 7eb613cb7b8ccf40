import type { Link } from '@cilia/netlink';
import { describe, expect, it } from 'vitest';
import { BIG_TCP_GSO_SIZE, gsoSizeFor, LEGACY_GSO_SIZE } from './big-tcp.js';

const device = (extra: Partial<Link> = {}): Link => ({
  index: 2,
  name: 'eth0',
  mtu: 1500,
  mac: '02:00:00:00:00:01',
  flags: 0,
  up: true,
  lowerUp: true,
  operState: 'up',
  kind: undefined,
  peerIndex: undefined,
  peerNetnsId: undefined,
  master: undefined,
  tsoMaxSize: 524_280,
  gsoIpv4MaxSize: 65_536,
  groIpv4MaxSize: 65_536,
  ...extra,
});

describe('BIG TCP: the GSO size endpoint veths and the egress device get', () => {
  it('raises it when asked and possible: native routing, a device that segments 192 KiB', () => {
    expect(gsoSizeFor(true, device(), 0)).toEqual({ size: BIG_TCP_GSO_SIZE });
    expect(gsoSizeFor('auto', device({ tsoMaxSize: BIG_TCP_GSO_SIZE }), 0)).toEqual({ size: BIG_TCP_GSO_SIZE });
  });

  it('keeps 64 KiB when off, whatever the device can do', () => {
    expect(gsoSizeFor(false, device(), 0)).toEqual({ size: LEGACY_GSO_SIZE });
    expect(gsoSizeFor(false, device(), 50)).toEqual({ size: LEGACY_GSO_SIZE });
  });

  it('under "auto", stays off and says why: overlay, no device, old kernel, small tso_max_size', () => {
    expect(gsoSizeFor('auto', device(), 50)).toEqual({ size: LEGACY_GSO_SIZE, why: expect.stringMatching(/overlay/) });
    expect(gsoSizeFor('auto', undefined, 0)).toEqual({ size: LEGACY_GSO_SIZE, why: expect.stringMatching(/no egress device/) });
    expect(gsoSizeFor('auto', device({ gsoIpv4MaxSize: undefined }), 0)).toEqual({ size: LEGACY_GSO_SIZE, why: expect.stringMatching(/6\.3/) });
    expect(gsoSizeFor('auto', device({ name: 'vx0', tsoMaxSize: 65_536 }), 0)).toEqual({ size: LEGACY_GSO_SIZE, why: expect.stringMatching(/vx0 segments at most 65536/) });
  });

  it('under true, refuses with an error naming datapath.bigTcp and the reason', () => {
    expect(() => gsoSizeFor(true, device(), 50)).toThrow(/^datapath\.bigTcp: .*overlay/);
    expect(() => gsoSizeFor(true, device({ tsoMaxSize: 65_536 }), 0)).toThrow(/^datapath\.bigTcp: .*tso_max_size/);
    expect(() => gsoSizeFor(true, undefined, 0)).toThrow(/^datapath\.bigTcp: .*no egress device/);
  });
});
