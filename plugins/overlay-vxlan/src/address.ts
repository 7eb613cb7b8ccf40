/** An IPv4 address as the u32 whose memory holds it in network order (how BPF reads a `__be32`). */
export function ipv4NetworkOrderU32(ip: string): number {
  return Buffer.from(ip.split('.').map(Number)).readUInt32LE(0);
}

