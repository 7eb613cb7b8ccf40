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

const BIG = { size: BIG_TCP_GSO_SIZE, egressGro: BIG_TCP_GSO_SIZE };
const LEGACY = { size: LEGACY_GSO_SIZE, egressGro: LEGACY_GSO_SIZE };
const native = { overhead: 0 };
const ourOverlay = { overhead: 50, bigTcp: true };
const otherOverlay = { overhead: 50 };

describe('BIG TCP: the GSO size endpoint veths and the egress device get', () => {
  it('raises it when asked and possible: a device that segments 192 KiB, no encapsulation or native routing', () => {
    expect(gsoSizeFor(true, device())).toEqual(BIG);
    expect(gsoSizeFor('auto', device({ tsoMaxSize: BIG_TCP_GSO_SIZE }), native)).toEqual(BIG);
  });

  it('over an overlay that carries it: GSO raised, the egress device’s GRO kept at 64 KiB', () => {
    expect(gsoSizeFor(true, device(), ourOverlay)).toEqual({ size: BIG_TCP_GSO_SIZE, egressGro: LEGACY_GSO_SIZE });
    expect(gsoSizeFor('auto', device(), ourOverlay)).toEqual({ size: BIG_TCP_GSO_SIZE, egressGro: LEGACY_GSO_SIZE });
  });

  it('keeps 64 KiB when off, whatever the device can do', () => {
    expect(gsoSizeFor(false, device())).toEqual(LEGACY);
    expect(gsoSizeFor(false, device(), ourOverlay)).toEqual(LEGACY);
  });

  it('under "auto", stays off and says why: an overlay that cannot carry it, no device, old kernel, small tso_max_size', () => {
    expect(gsoSizeFor('auto', device(), otherOverlay)).toEqual({ ...LEGACY, why: expect.stringMatching(/overlay plugin loaded cannot carry packets over 64 KiB/) });
    expect(gsoSizeFor('auto', undefined)).toEqual({ ...LEGACY, why: expect.stringMatching(/no egress device/) });
    expect(gsoSizeFor('auto', undefined, ourOverlay)).toEqual({ ...LEGACY, why: expect.stringMatching(/no egress device/) });
    expect(gsoSizeFor('auto', device({ gsoIpv4MaxSize: undefined }))).toEqual({ ...LEGACY, why: expect.stringMatching(/6\.3/) });
    expect(gsoSizeFor('auto', device({ name: 'vx0', tsoMaxSize: 65_536 }), ourOverlay)).toEqual({ ...LEGACY, why: expect.stringMatching(/vx0 segments at most 65536/) });
  });

  it('under true, refuses with an error naming datapath.bigTcp and the reason', () => {
    expect(() => gsoSizeFor(true, device(), otherOverlay)).toThrow(/^datapath\.bigTcp: .*overlay/);
    expect(() => gsoSizeFor(true, device({ tsoMaxSize: 65_536 }))).toThrow(/^datapath\.bigTcp: .*tso_max_size/);
    expect(() => gsoSizeFor(true, undefined)).toThrow(/^datapath\.bigTcp: .*no egress device/);
  });
});
