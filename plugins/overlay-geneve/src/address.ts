/** An IPv4 address as a host-order u32 (`10.0.0.1` → 0x0a000001), as `.rodata` constants take it. */
export function ipv4HostOrder(ip: string): number {
  return ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}
