// The TS codecs of libs/datapath/src/maps must match the C structs of bpf/include/cilia as the
// compiled base objects see them (BTF), and the enums their TS mirrors.
import { describe, expect, it } from 'vitest';
import { btfEnum, compareLayout, type StructCodec } from '@cilia/bpf';
import {
  CtKey,
  CtState,
  CtStatus,
  CtValue,
  Direction,
  DropReason,
  EndpointInfo,
  EndpointKey,
  EndpointKeyLayout,
  IpcacheKey,
  Ipv4FragKey,
  Ipv4FragL4,
  IpcacheKeyLayout,
  IpcacheValue,
  MetricsKey,
  MetricsValue,
  PacketContext,
  PacketEvent,
  PolicyEndpointValue,
  PolicyMapKey,
  PolicyMapValue,
  PolicyMatch,
  PolicyModeCode,
  PolicyVerdict,
  PolicyVerdictEvent,
  SnatKey,
  SnatValue,
  TracePoint,
} from '../../src/maps/index.js';
import { objectPath } from './objects.js';

const codecs: Array<[StructCodec<unknown>, string[]]> = [
  [EndpointKeyLayout, ['lxc', 'host']],
  [EndpointInfo, ['lxc', 'host']],
  [IpcacheKeyLayout, ['lxc', 'host']],
  [IpcacheValue, ['lxc', 'host']],
  [CtKey, ['lxc', 'host']],
  [Ipv4FragKey, ['lxc', 'host']],
  [Ipv4FragL4, ['lxc', 'host']],
  [CtValue, ['lxc', 'host']],
  [SnatKey, ['host']],
  [SnatValue, ['host']],
  [MetricsKey, ['lxc', 'host']],
  [MetricsValue, ['lxc', 'host']],
  [PacketEvent, ['lxc', 'host']],
  [PacketContext, ['lxc', 'host', 'slot_filler', 'policy']],
  [PolicyMapKey, ['policy']],
  [PolicyMapValue, ['policy']],
  [PolicyEndpointValue, ['policy']],
  [PolicyVerdictEvent, ['policy']],
  [CtKey, ['policy']],
].map(([c, objs]) => [c as StructCodec<unknown>, objs as string[]]);

const path = (name: string): string => objectPath(name, name === 'slot_filler');

describe('datapath map codecs match the BTF of the base objects', () => {
  it.each(codecs.flatMap(([codec, objs]) => objs.map((o) => [`struct ${codec.cName} in ${o}.o`, codec, o] as const)))(
    '%s',
    (_label, codec, object) => {
      expect(compareLayout(codec, path(object))).toEqual([]);
    },
  );

  it('address key codecs fill the struct as C expects', () => {
    const key = Buffer.alloc(EndpointKey.size, 0xee);
    EndpointKey.encode('10.1.2.3', key, 0);
    expect([...key]).toEqual([10, 1, 2, 3, ...new Array(12).fill(0), 2, 0, 0, 0]);
    expect(EndpointKey.decode(key, 0)).toBe('10.1.2.3');
    EndpointKey.encode('fd00::1', key, 0);
    expect(EndpointKey.decode(key, 0)).toBe('fd00::1');
    expect(key[16]).toBe(10);

    const lpm = Buffer.alloc(IpcacheKey.size);
    IpcacheKey.encode('10.0.0.0/8', lpm, 0);
    expect(lpm.readUInt32LE(0)).toBe(32 + 8);
    expect(lpm[4]).toBe(2);
    expect(IpcacheKey.decode(lpm, 0)).toBe('10.0.0.0/8');
    IpcacheKey.encode('192.168.1.7', lpm, 0);
    expect(IpcacheKey.decode(lpm, 0)).toBe('192.168.1.7/32');
    expect(() => IpcacheKey.encode('10.0.0.0/33', lpm, 0)).toThrow(/cilia_ipcache_key.prefixlen: '10.0.0.0\/33'/);
    expect(() => EndpointKey.encode('10.0.0', key, 0)).toThrow(/cilia_endpoint_key.addr: not an IP address/);
  });

  it('enum mirrors match the C enums', () => {
    const lxc = path('lxc');
    const mirror = (prefix: string, ts: Record<string, number>): Record<string, number> =>
      Object.fromEntries(
        Object.entries(ts).map(([k, v]) => [`${prefix}${k.replace(/[A-Z0-9]+/g, (c) => `_${c}`).toUpperCase()}`, v]),
      );
    const { forwarded, ...drops } = DropReason;
    expect(btfEnum(lxc, 'cilia_drop_reason')).toEqual({
      CILIA_REASON_FORWARDED: forwarded,
      ...mirror('CILIA_DROP_', drops),
      CILIA_DROP_REASON_MAX: Object.keys(DropReason).length,
    });
    expect(btfEnum(lxc, 'cilia_ct_state')).toEqual(mirror('CILIA_CT_STATE_', CtState));
    expect(btfEnum(lxc, 'cilia_ct_status')).toEqual(mirror('CILIA_CT_', CtStatus));
    expect(btfEnum(lxc, 'cilia_trace_point')).toEqual(mirror('CILIA_TRACE_', TracePoint));
    expect(btfEnum(lxc, 'cilia_direction')).toEqual(mirror('CILIA_DIR_', Direction));
    const policy = path('policy');
    expect(btfEnum(policy, 'cilia_policy_mode')).toEqual(mirror('CILIA_POLICY_', PolicyModeCode));
    expect(btfEnum(policy, 'cilia_policy_match')).toEqual({
      CILIA_POLICY_MATCH_NONE: PolicyMatch.none,
      CILIA_POLICY_MATCH_L3_ONLY: PolicyMatch.l3Only,
      CILIA_POLICY_MATCH_L3_L4: PolicyMatch.l3L4,
      CILIA_POLICY_MATCH_L4_ONLY: PolicyMatch.l4Only,
      CILIA_POLICY_MATCH_ALL: PolicyMatch.all,
    });
    expect(btfEnum(policy, 'cilia_policy_verdict')).toEqual(mirror('CILIA_POLICY_VERDICT_', PolicyVerdict));
  });
});
