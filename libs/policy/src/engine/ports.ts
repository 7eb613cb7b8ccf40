import type { Direction, L4Protocol, NamedPort, PolicyKey } from '@cilia/core';
import type { PortRule } from '../model.js';

/** The L4 part of a map key. */
export interface PortKey {
  readonly protocol: number;
  readonly port: number;
  readonly endPort: number;
}

export const PROTOCOL_NUMBERS: Readonly<Record<Exclude<L4Protocol, 'ANY'>, number>> = { TCP: 6, UDP: 17, SCTP: 132, ICMP: 1, ICMPv6: 58 };
const PROTOCOL_NAMES = new Map(Object.entries(PROTOCOL_NUMBERS).map(([n, p]) => [p, n]));
/** What `ANY` with a port stands for: the protocols that have ports. */
const PORTED = [PROTOCOL_NUMBERS.TCP, PROTOCOL_NUMBERS.UDP, PROTOCOL_NUMBERS.SCTP];

export const ALL_PORTS: PortKey = { protocol: 0, port: 0, endPort: 0 };

/** Every named-port binding a rule's port name can resolve to (empty: the name is unknown). */
export type NamedPortLookup = (name: string) => readonly NamedPort[];

function expand(protocol: L4Protocol, port: number, endPort: number, out: PortKey[]): void {
  if (protocol !== 'ANY') out.push({ protocol: PROTOCOL_NUMBERS[protocol], port, endPort });
  else if (port === 0) out.push(ALL_PORTS);
  else for (const p of PORTED) out.push({ protocol: p, port, endPort });
}

/**
 * The L4 keys of a rule's ports: none given → every port and protocol; a named port → the
 * bindings `lookup` knows of (with the rule's protocol, unless ANY, required to agree); an
 * unresolvable name contributes nothing.
 */
export function portKeys(ports: readonly PortRule[], lookup: NamedPortLookup): PortKey[] {
  if (ports.length === 0) return [ALL_PORTS];
  const out: PortKey[] = [];
  for (const rule of ports) {
    if (rule.name !== undefined) {
      for (const bound of lookup(rule.name)) {
        if (rule.protocol !== 'ANY' && bound.protocol !== 'ANY' && bound.protocol !== rule.protocol) continue;
        expand(rule.protocol === 'ANY' ? bound.protocol : rule.protocol, bound.port, bound.port, out);
      }
    } else {
      const port = rule.port;
      expand(rule.protocol, port, port === 0 ? 0 : (rule.endPort ?? port), out);
    }
  }
  const unique = new Map(out.map((k) => [`${k.protocol}/${k.port}-${k.endPort}`, k]));
  return [...unique.values()];
}

/** Stable string form of a map key, for maps and sets. */
export function policyKeyString(k: PolicyKey): string {
  return `${k.identity}/${k.direction === 'ingress' ? 'i' : 'e'}/${k.protocol}/${k.port}/${k.endPort}`;
}

export function policyKey(identity: number, direction: Direction, port: PortKey): PolicyKey {
  return { identity, direction, protocol: port.protocol, port: port.port, endPort: port.endPort };
}

/** The key `policyKeyString` wrote. */
export function parsePolicyKey(k: string): PolicyKey {
  const [identity, dir, protocol, port, endPort] = k.split('/');
  return { identity: Number(identity), direction: dir === 'i' ? 'ingress' : 'egress', protocol: Number(protocol), port: Number(port), endPort: Number(endPort) };
}

/** Whether a packet to `dport` over `protocol` falls under a key's L4 part. */
export function portKeyCovers(key: PortKey, protocol: number, dport: number): boolean {
  if (key.protocol !== 0 && key.protocol !== protocol) return false;
  return key.port === 0 || (dport >= key.port && dport <= key.endPort);
}

/** `80/TCP`, `8000-8080/UDP`, `any`, for trace lines. */
export function formatPortKey(key: PortKey): string {
  if (key.protocol === 0) return key.port === 0 ? 'any port' : `port ${key.port}`;
  const proto = PROTOCOL_NAMES.get(key.protocol) ?? String(key.protocol);
  if (key.port === 0) return `any ${proto} port`;
  return `port ${key.port === key.endPort ? key.port : `${key.port}-${key.endPort}`}/${proto}`;
}
