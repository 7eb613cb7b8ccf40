// Datapath event records (bpf/include/cilia/events.h) as they come off the ring buffer: the
// header says which record follows; drops and traces share one layout, policy verdicts have
// their own. Codecs and numbers are @cilia/datapath's (datapathMaps), defined once.
import { datapathMaps } from '@cilia/datapath';

const { EventType, PacketEvent, PolicyVerdictEvent } = datapathMaps;

export type PacketRecord = datapathMaps.PacketEventRecord;
export type VerdictRecord = datapathMaps.PolicyVerdictRecord;

/** One decoded record: a drop or trace of a packet, or a policy verdict. */
export type DatapathRecord =
  | { readonly kind: 'drop' | 'trace'; readonly record: PacketRecord }
  | { readonly kind: 'policy-verdict'; readonly record: VerdictRecord };

/** A packet record of an older datapath (before tcp_flags and icmp_type): 8 bytes shorter. */
const PACKET_EVENT_V0_SIZE = PacketEvent.size - 8;

/**
 * Decodes the record at `buf[offset..offset+length)`; undefined for a type this reader does not
 * know or a record too short for its type (the caller counts those).
 */
export function decodeRecord(buf: Buffer, offset: number, length: number, scratch: Buffer): DatapathRecord | undefined {
  if (length < 1) return undefined;
  const type = buf[offset];
  if (type === EventType.drop || type === EventType.trace) {
    const kind = type === EventType.drop ? 'drop' : 'trace';
    if (length >= PacketEvent.size) return { kind, record: PacketEvent.decode(buf, offset) };
    if (length < PACKET_EVENT_V0_SIZE) return undefined;
    // Programs of the previous agent version still attached: their records lack the last fields.
    scratch.fill(0, 0, PacketEvent.size);
    buf.copy(scratch, 0, offset, offset + length);
    return { kind, record: PacketEvent.decode(scratch, 0) };
  }
  if (type === EventType.policyVerdict && length >= PolicyVerdictEvent.size) return { kind: 'policy-verdict', record: PolicyVerdictEvent.decode(buf, offset) };
  return undefined;
}

/** A scratch buffer large enough for any record {@link decodeRecord} pads. */
export function recordScratch(): Buffer {
  return Buffer.alloc(Math.max(PacketEvent.size, PolicyVerdictEvent.size));
}
