import type { Endpoint } from '@cilia/core';
import { compareVersions } from './versions.js';

/** An entry of a result's `interfaces`. */
export interface CniInterface {
  readonly name: string;
  readonly mac?: string;
  /** Network namespace path; present only for interfaces inside the sandbox. */
  readonly sandbox?: string;
}

/** An entry of a result's `ips`. */
export interface CniIp {
  /** Only in 0.x results: "4" or "6". */
  readonly version?: '4' | '6';
  readonly address: string;
  readonly gateway?: string;
  /** Index into `interfaces`. */
  readonly interface?: number;
}

/** An entry of a result's `routes`. */
export interface CniRoute {
  readonly dst: string;
  readonly gw?: string;
}

/** The success result of ADD (and the `prevResult` of later calls). */
export interface CniResult {
  readonly cniVersion: string;
  readonly interfaces?: readonly CniInterface[];
  readonly ips?: readonly CniIp[];
  readonly routes?: readonly CniRoute[];
  readonly dns?: Readonly<Record<string, unknown>>;
}

/**
 * The ADD result for `endpoint`: the host-side veth (no sandbox), the pod interface in `netns`,
 * its address as a host route (/32, /128) with the gateway, and a default route via the gateway.
 * A `prevResult` from an earlier plugin in the chain is kept, with our entries appended.
 */
export function endpointResult(
  endpoint: Endpoint,
  options: { cniVersion: string; netns: string; dns: Readonly<Record<string, unknown>>; prevResult?: CniResult },
): CniResult {
  const prev = options.prevResult;
  const base = prev?.interfaces?.length ?? 0;
  const legacy = compareVersions(options.cniVersion, '1.0.0') < 0;
  const interfaces: CniInterface[] = [
    ...(prev?.interfaces ?? []),
    { name: endpoint.hostInterface, mac: endpoint.hostMac },
    { name: endpoint.interfaceName, mac: endpoint.mac, sandbox: options.netns },
  ];
  const ips: CniIp[] = [...(prev?.ips ?? [])];
  const routes: CniRoute[] = [...(prev?.routes ?? [])];
  if (endpoint.ipv4) {
    ips.push({
      ...(legacy ? { version: '4' as const } : {}),
      address: `${endpoint.ipv4}/32`,
      ...(endpoint.ipv4Gateway ? { gateway: endpoint.ipv4Gateway } : {}),
      interface: base + 1,
    });
    if (endpoint.ipv4Gateway) routes.push({ dst: '0.0.0.0/0', gw: endpoint.ipv4Gateway });
  }
  if (endpoint.ipv6) {
    ips.push({ ...(legacy ? { version: '6' as const } : {}), address: `${endpoint.ipv6}/128`, interface: base + 1 });
  }
  return { cniVersion: options.cniVersion, interfaces, ips, routes, dns: { ...(prev?.dns ?? {}), ...options.dns } };
}

/**
 * What CHECK finds wrong when comparing the agent's endpoint with `prevResult`: one line per
 * difference, empty when they agree. Routes are not compared: later plugins in a chain may change them.
 */
export function compareWithPrevResult(endpoint: Endpoint, prev: CniResult, expected: { ifName: string; netns: string }): string[] {
  const problems: string[] = [];
  if (endpoint.netns !== expected.netns) problems.push(`the agent has the endpoint in netns ${endpoint.netns}, CNI_NETNS is ${expected.netns}`);
  const interfaces = prev.interfaces ?? [];
  const podIndex = interfaces.findIndex((i) => i.name === expected.ifName && i.sandbox !== undefined && i.sandbox !== '');
  if (podIndex < 0) {
    problems.push(`prevResult has no sandbox interface named ${expected.ifName}`);
  } else {
    const pod = interfaces[podIndex]!;
    if (pod.sandbox !== expected.netns) problems.push(`prevResult puts ${expected.ifName} in sandbox ${pod.sandbox}, CNI_NETNS is ${expected.netns}`);
    if (pod.mac !== undefined && !sameMac(pod.mac, endpoint.mac)) {
      problems.push(`${expected.ifName} has MAC ${endpoint.mac} at the agent, prevResult says ${pod.mac}`);
    }
  }
  const host = interfaces.find((i) => i.name === endpoint.hostInterface && !i.sandbox);
  if (!host) {
    problems.push(`prevResult has no host interface ${endpoint.hostInterface} (the endpoint's host-side veth)`);
  } else if (host.mac !== undefined && !sameMac(host.mac, endpoint.hostMac)) {
    problems.push(`${endpoint.hostInterface} has MAC ${endpoint.hostMac} at the agent, prevResult says ${host.mac}`);
  }
  const addresses = (prev.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === podIndex).map((ip) => ip.address);
  for (const [ip, bits] of [
    [endpoint.ipv4, 32],
    [endpoint.ipv6, 128],
  ] as const) {
    if (ip && !addresses.includes(`${ip}/${bits}`)) {
      problems.push(`the endpoint's address ${ip}/${bits} is not in prevResult.ips (found: ${addresses.join(', ') || 'none'})`);
    }
  }
  for (const address of addresses) {
    const bare = address.split('/')[0];
    if (podIndex >= 0 && bare !== endpoint.ipv4 && bare !== endpoint.ipv6) {
      problems.push(`prevResult.ips has ${address} on ${expected.ifName}, the agent's endpoint has ${[endpoint.ipv4, endpoint.ipv6].filter(Boolean).join(', ') || 'no address'}`);
    }
  }
  return problems;
}

function sameMac(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
