// The TS side of the datapath ABI must match bpf/include/cilia as the compiled base objects see
// it (BTF): the codecs of libs/datapath/src/maps against the C structs, and every number the TS
// side mirrors — its enums, the slot/attach-point/window numbers and @cilia/core's identities —
// against the C enums. A number that differs on one side fails here.
import { describe, expect, it } from 'vitest';
import { btfEnum, compareLayout, type StructCodec } from '@cilia/bpf';
import { IdentityRange, ReservedIdentity } from '@cilia/core';
import {
  ATTACH_POINT_COUNT,
  AttachPointIndex,
  CtKey,
  CtState,
  CtStatus,
  CtValue,
  Direction,
  DropReason,
  EndpointInfo,
  EndpointKey,
  EndpointKeyLayout,
  EventHeader,
  EventType,
  IpcacheKey,
  Ipv4FragKey,
  Ipv4FragL4,
  IpcacheKeyLayout,
  IpcacheValue,
  Lb4Backend,
  Lb4Flow,
  Lb4Key,
  Lb4ReverseNat,
  Lb4Service,
  Lb4SkKey,
  Lb4SkValue,
  LbAffinityKey,
  LbAffinityMatch,
  LbAffinityValue,
  LbAlgorithmCode,
  LbBackendState,
  LbFrontendType,
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
  ProxyMark,
  SLOT_COUNT,
  SLOTS_PER_ATTACH_POINT,
  SlotIndex,
  SlotWindow,
  SnatKey,
  SnatValue,
  TracePoint,
  MonitorAggregation,
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
  [EventHeader, ['lxc', 'host', 'policy']],
  [PacketEvent, ['lxc', 'host']],
  [PacketContext, ['lxc', 'host', 'slot_filler', 'policy']],
  [PolicyMapKey, ['policy']],
  [PolicyMapValue, ['policy']],
  [PolicyEndpointValue, ['policy']],
  [PolicyVerdictEvent, ['policy']],
  [CtKey, ['policy']],
  ...[Lb4Key, Lb4Service, Lb4Backend, Lb4ReverseNat, Lb4Flow, LbAffinityKey, LbAffinityValue, LbAffinityMatch, Lb4SkKey, Lb4SkValue, CtKey].map((c) => [c, ['lb_abi']]),
].map(([c, objs]) => [c as StructCodec<unknown>, objs as string[]]);

const path = (name: string): string => objectPath(name, name === 'slot_filler' || name === 'lb_abi');

describe('the datapath ABI matches the BTF of the base objects', () => {
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

  /** The C enum a TS mirror stands for: `{ remoteNode: 6 }` → `{ <prefix>REMOTE_NODE: 6 }`. */
  const mirror = (prefix: string, ts: Record<string, number>): Record<string, number> =>
    Object.fromEntries(
      Object.entries(ts).map(([k, v]) => [`${prefix}${k.replace(/[A-Z]/g, (c) => `_${c}`).replace(/-/g, '_').toUpperCase()}`, v]),
    );

  it('enum mirrors match the C enums', () => {
    const lxc = path('lxc');
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
    expect(btfEnum(lxc, 'cilia_event_type')).toEqual(mirror('CILIA_EVENT_', EventType));
    expect(btfEnum(lxc, 'cilia_monitor_aggregation')).toEqual(mirror('CILIA_MONITOR_AGG_', MonitorAggregation));
    const policy = path('policy');
    expect(btfEnum(policy, 'cilia_policy_mode')).toEqual(mirror('CILIA_POLICY_', PolicyModeCode));
    expect(btfEnum(policy, 'cilia_policy_match')).toEqual(mirror('CILIA_POLICY_MATCH_', PolicyMatch));
    expect(btfEnum(policy, 'cilia_policy_verdict')).toEqual(mirror('CILIA_POLICY_VERDICT_', PolicyVerdict));
    expect(btfEnum(policy, 'cilia_mark')).toEqual(mirror('CILIA_MARK_', ProxyMark));
    expect(btfEnum(lxc, 'cilia_mark')).toEqual(mirror('CILIA_MARK_', ProxyMark));
    const lb = path('lb_abi');
    expect(btfEnum(lb, 'cilia_lb_frontend_type')).toEqual({
      CILIA_LB_CLUSTER_IP: LbFrontendType.ClusterIP,
      CILIA_LB_NODE_PORT: LbFrontendType.NodePort,
      CILIA_LB_EXTERNAL_IP: LbFrontendType.ExternalIP,
      CILIA_LB_LOAD_BALANCER: LbFrontendType.LoadBalancer,
    });
    expect(btfEnum(lb, 'cilia_lb_algorithm')).toEqual(mirror('CILIA_LB_', LbAlgorithmCode));
    expect(btfEnum(lb, 'cilia_lb_backend_state')).toEqual(mirror('CILIA_LB_BACKEND_', LbBackendState));
  });

  it.each(['lxc', 'host', 'policy', 'slot_filler'])('slot, attach point and window numbers match the C enums of %s.o', (object) => {
    const o = path(object);
    expect(btfEnum(o, 'cilia_slot')).toEqual({ ...mirror('CILIA_SLOT_', SlotIndex), CILIA_SLOT_MAX: SLOT_COUNT });
    expect(btfEnum(o, 'cilia_attach_point')).toEqual({ ...mirror('CILIA_AP_', AttachPointIndex), CILIA_AP_MAX: ATTACH_POINT_COUNT });
    expect(btfEnum(o, 'cilia_slot_window')).toEqual({ ...mirror('CILIA_SLOT_', SlotWindow), CILIA_SLOTS_PER_AP: SLOTS_PER_ATTACH_POINT });
  });

  it.each(['lxc', 'host'])("@cilia/core's identities match the C enums of %s.o", (object) => {
    const o = path(object);
    expect(btfEnum(o, 'cilia_identity')).toEqual(mirror('CILIA_IDENTITY_', ReservedIdentity));
    expect(btfEnum(o, 'cilia_identity_range')).toEqual(mirror('CILIA_IDENTITY_', IdentityRange));
  });
});
