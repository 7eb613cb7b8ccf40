// The TS side of the datapath ABI (bpf/include/cilia/): codecs of the maps and records, the
// numbers of the enums (events, slots, attach points, drop reasons, ...) and the names and
// indices the loader needs — each defined once, here. Identities are @cilia/core's
// (ReservedIdentity, IdentityRange). Layouts and enums are checked against the compiled objects'
// BTF in test/bpf/layout.test.ts.
export { AddressFamily, mac } from './addr.js';
export { EndpointKey, EndpointKeyLayout, EndpointInfo, ENDPOINT_F_HOST, type EndpointInfoValue } from './endpoints.js';
export { IpcacheKey, IpcacheKeyLayout, IpcacheValue, IPCACHE_PREFIX_STATIC, type IpcacheEntry } from './ipcache.js';
export { CtKey, CtValue, CtState, CtStatus, CT_FLAGS, gcExpired, type CtKeyValue, type CtEntry } from './conntrack.js';
export { SnatKey, SnatValue, type SnatKeyValue, type SnatEntry } from './nat.js';
export { Ipv4FragKey, Ipv4FragL4 } from './fragments.js';
export {
  Lb4Key,
  Lb4Service,
  Lb4Backend,
  Lb4ReverseNat,
  Lb4Flow,
  LbAffinityKey,
  LbAffinityValue,
  LbAffinityMatch,
  Lb4SkKey,
  Lb4SkValue,
  LbFrontendType,
  LbAlgorithmCode,
  LbBackendState,
  LB_FLAGS,
  LB_MAP_MAX,
  type Lb4KeyValue,
  type Lb4ServiceValue,
  type Lb4BackendValue,
} from './lb.js';
export { BandwidthKey, BandwidthValue, type BandwidthKeyValue, type BandwidthEntry } from './bandwidth.js';
export { EventHeader, EventType, MonitorAggregation } from './events.js';
export {
  DropReason,
  DROP_REASON_TEXT,
  CILIUM_DROP_REASON,
  TracePoint,
  Direction,
  MetricsKey,
  MetricsValue,
  PacketEvent,
  type PacketEventRecord,
} from './monitor.js';
export { PacketContext, SLOT_NONE, CTX_FLAGS, contextFromSkb, type PacketContextValue } from './ctx.js';
export {
  PolicyMapKey,
  PolicyMapValue,
  PolicyEndpointValue,
  PolicyVerdictEvent,
  PolicyModeCode,
  PolicyMatch,
  PolicyVerdict,
  POLICY_FLAGS,
  POLICY_PREFIX_STATIC,
  POLICY_PREFIX_PROTO,
  POLICY_PREFIX_PORT,
  POLICY_PREFIX_FULL,
  type PolicyMapKeyValue,
  type PolicyMapValueValue,
  type PolicyEndpointRecord,
  type PolicyVerdictRecord,
} from './policy.js';
export {
  SlotIndex,
  SLOT_COUNT,
  AttachPointIndex,
  ATTACH_POINT_COUNT,
  SlotWindow,
  slotIndex,
  SLOTS_PER_ATTACH_POINT,
  SLOT_RESUME,
  SLOT_PRE,
  SLOT_MAIN,
  BASE_PROGRAMS,
  ProxyMark,
  fromProxyMark,
  type TcAttachPoint,
} from './slots.js';

/** Names of the pinned maps (`<bpfRoot>/<name>`). */
export const MapName = {
  endpoints: 'cilia_endpoints',
  ipcache: 'cilia_ipcache',
  conntrack: 'cilia_ct',
  snat: 'cilia_snat',
  metrics: 'cilia_metrics',
  events: 'cilia_events',
  eventsLost: 'cilia_events_lost',
  tcSlots: 'cilia_tc_slots',
  policy: 'cilia_policy',
  policyEndpoints: 'cilia_policy_endpoints',
  lbServices: 'cilia_lb4_services',
  lbBackends: 'cilia_lb4_backends',
  lbReverseNat: 'cilia_lb4_reverse_nat',
  lbFlows: 'cilia_lb4_flows',
  lbAffinity: 'cilia_lb4_affinity',
  lbAffinityMatch: 'cilia_lb_affinity_match',
  lbMaglev: 'cilia_lb4_maglev',
  lbSkReverse: 'cilia_lb4_sk_reverse',
  bandwidth: 'cilia_bandwidth',
} as const;
