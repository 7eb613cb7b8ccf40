/**
 * @cilia/bpf/testing: helpers for BPF unit tests (packet builders, compiling and loading test
 * objects with throwaway pin roots). Test-only; needs the Cilia workspace and root.
 */
export {
  packet,
  parsePacket,
  checksum,
  PacketBuilder,
  TCP_FLAGS,
  IPPROTO,
  ETH_P,
  macBytes,
  ipv4Bytes,
  ipv6Bytes,
  type ParsedPacket,
  type EthernetSpec,
  type Ipv4Spec,
  type Ipv6Spec,
  type TcpSpec,
  type UdpSpec,
  type IcmpSpec,
} from './packet.js';
export { compileBpf, loadTestObject, makePinRoot, removePinRoot, workspaceRoot, type LoadedTestObject } from './harness.js';
export { TC_ACT, XDP_ACT, skbContext } from './verdicts.js';
export { TestNetwork, type TestLink } from './links.js';
export { readPcap, writePcap, type CapturedFrame } from './pcap.js';
