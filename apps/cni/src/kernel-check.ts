import type { Endpoint } from '@cilia/core';

/**
 * What CHECK finds wrong in the kernel for `endpoint`: the pod interface in `netns` (present,
 * its MAC, up, holding the endpoint's address) and the host-side veth (present, up). Routes are
 * left alone: later plugins in a chain may change them. One line per problem; empty when fine.
 */
export async function inspectAttachment(endpoint: Endpoint, expected: { netns: string; ifName: string }): Promise<string[]> {
  // Loaded here only: the native addon is CHECK's cost, not every ADD's.
  const { openNetlink, openNetns } = await import('@cilia/netlink');
  const problems: string[] = [];
  let pod;
  try {
    pod = await openNetns(expected.netns);
  } catch (err) {
    return [`cannot open the network namespace ${expected.netns}: ${(err as Error).message}`];
  }
  try {
    const link = await pod.findLink(expected.ifName);
    if (!link) {
      problems.push(`${expected.ifName} does not exist in ${expected.netns}`);
    } else {
      if (link.mac && link.mac.toLowerCase() !== endpoint.mac.toLowerCase()) {
        problems.push(`${expected.ifName} in ${expected.netns} has MAC ${link.mac}, the endpoint has ${endpoint.mac}`);
      }
      if (!link.up) problems.push(`${expected.ifName} in ${expected.netns} is down`);
      const addresses = await pod.listAddresses({ dev: link.index });
      for (const [ip, bits, family] of [
        [endpoint.ipv4, 32, 4],
        [endpoint.ipv6, 128, 6],
      ] as const) {
        const have = addresses.filter((a) => a.family === family).map((a) => a.cidr);
        if (ip && !have.includes(`${ip}/${bits}`)) {
          problems.push(`${expected.ifName} in ${expected.netns} lacks the address ${ip}/${bits} (IPv${family} addresses: ${have.join(', ') || 'none'})`);
        }
      }
    }
  } finally {
    await pod.close();
  }
  const host = await openNetlink();
  try {
    const veth = await host.findLink(endpoint.hostInterface);
    if (!veth) problems.push(`the host-side veth ${endpoint.hostInterface} does not exist`);
    else if (!veth.up) problems.push(`the host-side veth ${endpoint.hostInterface} is down`);
  } finally {
    await host.close();
  }
  return problems;
}
