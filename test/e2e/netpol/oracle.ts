// The expected reachability of the netpol e2e suite, computed straight from the policy documents
// and the cluster's pod and namespace labels. It is written apart from libs/policy on purpose:
// a matrix is only evidence if the expectation does not come from the code under test.
//
// Semantics (the Cilium flavour of them, as the design contract of issue 6 states):
// - a pod reaching itself never leaves its network namespace: always allowed (upstream's
//   "AllowLoopback");
// - a connection passes when the source pod's egress allows it (if the source is a pod) and the
//   destination pod's ingress allows it (if the destination is a pod); host and world peers have
//   no policy of their own;
// - a matching deny of a rule selecting the pod drops, whether or not the direction is
//   enforced (a deny-only rule with enableDefaultDeny false still denies);
// - a direction of a pod is enforced when some rule selecting the pod enforces it; then the
//   host is always let in (allow-localhost), a matching allow passes, anything else drops;
// - CIDR peers (ipBlock, fromCIDR, fromCIDRSet, ...) select only addresses outside the cluster,
//   never pods or the host (their addresses resolve to their own identities).
import type { CompiledRule, Direction, PeerMatcher, PortSpec, Section } from './oracle-compile.js';
import { compileDocuments } from './oracle-compile.js';

export type Protocol = 'TCP' | 'UDP';

/** A named container port of a pod. */
export interface NamedPort {
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol;
}

export interface NamespaceModel {
  readonly name: string;
  /** Including `kubernetes.io/metadata.name`, which Kubernetes sets on every namespace. */
  readonly labels: Readonly<Record<string, string>>;
}

export interface PodModel {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ip: string;
  readonly ports: readonly NamedPort[];
}

/** One end of a probe. */
export type PeerModel =
  | { readonly kind: 'pod'; readonly pod: PodModel }
  | { readonly kind: 'host'; readonly ip: string }
  | { readonly kind: 'world'; readonly name: string; readonly ip: string };

export interface ClusterModel {
  readonly namespaces: readonly NamespaceModel[];
  readonly pods: readonly PodModel[];
}

export interface Verdict {
  readonly allowed: boolean;
  /** Which rule decided, or why none did. */
  readonly why: string;
}

export function peerName(peer: PeerModel): string {
  if (peer.kind === 'pod') return `${peer.pod.namespace}/${peer.pod.name}`;
  return peer.kind === 'host' ? 'host' : peer.name;
}

/** Expected verdicts for one set of policy documents over one cluster state. */
export class NetpolOracle {
  readonly #cluster: ClusterModel;
  readonly #rules: readonly CompiledRule[];

  constructor(cluster: ClusterModel, documents: readonly unknown[]) {
    this.#cluster = cluster;
    this.#rules = compileDocuments(documents, cluster);
  }

  allowed(src: PeerModel, dst: PeerModel, protocol: Protocol, port: number): boolean {
    return this.verdict(src, dst, protocol, port).allowed;
  }

  verdict(src: PeerModel, dst: PeerModel, protocol: Protocol, port: number): Verdict {
    if (src.kind === 'pod' && dst.kind === 'pod' && samePod(src.pod, dst.pod)) return { allowed: true, why: 'loopback' };
    const dstPod = dst.kind === 'pod' ? dst.pod : undefined;
    const reasons: string[] = [];
    if (src.kind === 'pod') {
      const egress = this.#direction('egress', src.pod, dst, protocol, port, dstPod);
      if (!egress.allowed) return { allowed: false, why: `egress of ${peerName(src)}: ${egress.why}` };
      reasons.push(`egress of ${peerName(src)}: ${egress.why}`);
    }
    if (dstPod) {
      const ingress = this.#direction('ingress', dstPod, src, protocol, port, dstPod);
      if (!ingress.allowed) return { allowed: false, why: `ingress of ${peerName(dst)}: ${ingress.why}` };
      reasons.push(`ingress of ${peerName(dst)}: ${ingress.why}`);
    }
    return { allowed: true, why: reasons.join('; ') };
  }

  #direction(direction: Direction, subject: PodModel, peer: PeerModel, protocol: Protocol, port: number, dstPod: PodModel | undefined): Verdict {
    const rules = this.#rules.filter((r) => r.selects(subject));
    const requires = rules.flatMap((r) => r.requires[direction]);
    const matches = (section: Section) => sectionMatches(section, peer, requires, protocol, port, dstPod, this.#cluster);
    const denyKey = direction === 'ingress' ? 'ingressDeny' : 'egressDeny';
    // A deny holds even where no rule turns default deny on (enableDefaultDeny: false).
    const denier = rules.find((r) => r.sections[denyKey].some(matches));
    if (denier) return { allowed: false, why: `denied by ${denier.id}` };
    if (!rules.some((r) => r.enforces[direction])) return { allowed: true, why: 'not enforced' };
    if (direction === 'ingress' && peer.kind === 'host') return { allowed: true, why: 'allow-localhost' };
    const allower = rules.find((r) => r.sections[direction].some(matches));
    return allower ? { allowed: true, why: `allowed by ${allower.id}` } : { allowed: false, why: 'no rule allows it' };
  }
}

function samePod(a: PodModel, b: PodModel): boolean {
  return a.namespace === b.namespace && a.name === b.name;
}

function sectionMatches(
  section: Section,
  peer: PeerModel,
  requires: readonly PeerMatcher[],
  protocol: Protocol,
  port: number,
  dstPod: PodModel | undefined,
  cluster: ClusterModel,
): boolean {
  if (section.ports.length > 0 && !section.ports.some((p) => portMatches(p, protocol, port, dstPod))) return false;
  if (section.peers === 'all') return true;
  return section.peers.some((m) => m.matches(peer, cluster) && (m.kind !== 'endpoints' || requires.every((r) => r.matches(peer, cluster))));
}

function portMatches(spec: PortSpec, protocol: Protocol, port: number, dstPod: PodModel | undefined): boolean {
  if (spec.protocol !== 'ANY' && spec.protocol !== protocol) return false;
  if (spec.name !== undefined) {
    // Named ports resolve on the destination pod; anything else has no names.
    const named = dstPod?.ports.find((p) => p.name === spec.name && p.protocol === protocol);
    return named !== undefined && named.port === port;
  }
  if (spec.port === 0) return true;
  return port >= spec.port && port <= (spec.endPort ?? spec.port);
}
