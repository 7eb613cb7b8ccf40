import { codec } from '@cilia/bpf';

/** `struct cilia_ipv4_frag_key`: one fragmented datagram, as the kernel reassembles by. */
export const Ipv4FragKey = codec.struct('cilia_ipv4_frag_key', {
  saddr: codec.ipv4,
  daddr: codec.ipv4,
  id: codec.be16,
  proto: codec.u8,
  pad: codec.pad(1),
});

/** `struct cilia_ipv4_frag_l4`: the first fragment's ports (ICMP echo: the identifier) and ICMP type. */
export const Ipv4FragL4 = codec.struct('cilia_ipv4_frag_l4', {
  sport: codec.be16,
  dport: codec.be16,
  icmpType: codec.u8,
  pad: codec.pad(3),
});
