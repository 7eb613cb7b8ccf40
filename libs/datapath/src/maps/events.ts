// The header every event record in `cilia_events` starts with (bpf/include/cilia/events.h).
import { codec } from '@cilia/bpf';

/** `struct cilia_event_hdr`: the start of every event record. */
export const EventHeader = codec.struct('cilia_event_hdr', {
  type: codec.u8,
  subtype: codec.u8,
  /** `enum cilia_attach_point` of the emitting program (`AttachPointIndex`). */
  source: codec.u16,
  ifindex: codec.u32,
  tsNs: codec.u64,
});

/** `enum cilia_event_type`: `hdr.type`, which record follows the header. */
export const EventType = {
  unspec: 0,
  drop: 1,
  trace: 2,
  policyVerdict: 3,
  l7: 4,
  debug: 5,
} as const;

/** `enum cilia_monitor_aggregation`: which forwarded packets are traced (the `MONITOR_AGGREGATION` constant), Cilium's levels. */
export const MonitorAggregation = { none: 0, lowest: 1, low: 2, medium: 3, maximum: 4 } as const;
