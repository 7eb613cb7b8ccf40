import type { BandwidthEndpoint, BandwidthReport, InvalidBandwidthAnnotation } from '@cilia/api-client';
import type { BpfMapView, Endpoint, EndpointManager, HealthReporter, KubeObject, Logger, ResourceEvent, ResourceSource, Unsubscribe } from '@cilia/core';
import { datapathMaps } from '@cilia/datapath';
import { setSysctl } from '@cilia/netlink';
import { podBandwidth, type AnnotatedLimit, type BandwidthDirection, type PodBandwidth } from './annotations.js';

const { BandwidthKey, BandwidthValue, Direction } = datapathMaps;
const DIRECTIONS = ['egress', 'ingress'] as const;
const NS_PER_SECOND = 1e9;

/** What {@link BandwidthManager} needs. */
export interface BandwidthManagerOptions {
  readonly source: ResourceSource;
  readonly endpoints: EndpointManager;
  readonly logger: Logger;
  /** `cilia_bandwidth`, through whichever of the plugin's objects is installed. */
  readonly map: () => BpfMapView;
  /** Egress drop horizon. */
  readonly horizonMs: number;
  /** Ingress burst: this much time at the rate, at least `ingressMinBurstBytes`. */
  readonly ingressBurstMs: number;
  readonly ingressMinBurstBytes: number;
  /** Pods' TCP congestion control set to BBR. */
  readonly bbr: boolean;
}

/** The limits the plugin enforces, decided just before it starts. */
export interface BandwidthModes {
  readonly egress: boolean;
  /** Why egress is off (no sch_fq, or switched off). */
  readonly egressOff?: string;
  readonly devices: readonly string[];
  readonly ingress: boolean;
}

interface Wanted {
  /** Bytes per second. */
  readonly rate: number;
  readonly horizonNs: number;
}

const podKey = (namespace: string, name: string): string => `${namespace}/${name}`;

/**
 * Makes `cilia_bandwidth` follow the Pods' `kubernetes.io/{egress,ingress}-bandwidth`
 * annotations: each endpoint (joined to its Pod by namespace and name, as the pod controller and
 * CNI name it) gets an egress entry — paced with EDT by the to-netdev shaping slot — and an
 * ingress entry — policed by the to-container shaping slot — for the annotations its Pod has.
 * A changed annotation rewrites the rate in place (the entry's clock and drop count stay); a
 * removed one, or a deleted endpoint, deletes just that entry; entries no endpoint wants are
 * pruned once the Pods are listed, never by flushing the map. A refused annotation (not a
 * quantity, outside 1k..1P) is reported with its field path and changes nothing.
 */
export class BandwidthManager implements HealthReporter {
  readonly name = 'bandwidth-manager';
  readonly #o: BandwidthManagerOptions;
  readonly #log: Logger;
  readonly #pods = new Map<string, PodBandwidth>();
  /** The last accepted limit of each Pod's direction: a refused annotation keeps it. */
  readonly #accepted = new Map<string, Partial<Record<BandwidthDirection, AnnotatedLimit>>>();
  readonly #bbrDone = new Set<string>();
  readonly #bbrFailed = new Map<string, string>();
  #modes: BandwidthModes = { egress: false, egressOff: 'not started', devices: [], ingress: false };
  #unsubscribe: Unsubscribe[] = [];
  #synced = false;

  constructor(options: BandwidthManagerOptions) {
    this.#o = options;
    this.#log = options.logger;
  }

  get modes(): BandwidthModes {
    return this.#modes;
  }

  /** Records what the plugin enforces; called from its objects' `enabled` before start. */
  setModes(modes: Partial<BandwidthModes>): void {
    this.#modes = { ...this.#modes, ...modes };
  }

  /** Takes in every Pod (resolves once they are listed), then keeps the map in step. */
  async start(): Promise<void> {
    const { egress, egressOff, devices, ingress } = this.#modes;
    this.#log.info({ egress, ...(egressOff ? { egressOff } : {}), devices, ingress, bbr: this.#o.bbr }, 'bandwidth manager starting');
    this.#unsubscribe.push(this.#o.endpoints.subscribe((e) => (e.type === 'delete' ? this.#forget(e.endpoint.id) : this.#sync(e.endpoint))));
    await new Promise<void>((resolve) => {
      this.#unsubscribe.push(
        this.#o.source.subscribe(['Pod'], (event) => {
          this.#onPod(event);
          if (event.type === 'synced') resolve();
        }),
      );
    });
    this.#synced = true;
    const live = new Set<number>();
    for (const ep of this.#o.endpoints.list()) {
      live.add(ep.id);
      this.#sync(ep);
    }
    this.#prune(live);
  }

  stop(): void {
    for (const u of this.#unsubscribe.splice(0)) u();
  }

  /** Refused annotations, for `cilia status` (health degraded until fixed). */
  problems(): string[] {
    return [
      ...this.invalid().map((i) => `Pod ${i.pod}: ${i.path}: ${i.reason}`),
      ...[...this.#bbrFailed].map(([pod, why]) => `Pod ${pod}: BBR not set: ${why}`),
    ];
  }

  /** Egress off under `auto` for want of sch_fq: said, not a problem. */
  notes(): string[] {
    return this.#modes.egress || !this.#modes.egressOff ? [] : [`egress bandwidth (EDT) off: ${this.#modes.egressOff}`];
  }

  invalid(): InvalidBandwidthAnnotation[] {
    const out: InvalidBandwidthAnnotation[] = [];
    for (const [pod, limits] of this.#pods) {
      for (const d of DIRECTIONS) {
        const l = limits[d];
        if (l && 'error' in l) out.push({ pod, path: l.path, reason: l.error });
      }
    }
    return out;
  }

  /** `GET /v1/bandwidth`: the modes and what the map holds. */
  report(): BandwidthReport {
    const byId = new Map(this.#o.endpoints.list().map((e) => [e.id, e]));
    const rows = new Map<number, { egress?: BandwidthEndpoint['egress']; ingress?: BandwidthEndpoint['ingress'] }>();
    const map = this.#modes.egress || this.#modes.ingress ? this.#o.map() : undefined;
    for (const raw of map?.keys() ?? []) {
      const key = BandwidthKey.decode(Buffer.from(raw), 0);
      const bytes = map?.lookup(raw);
      if (!bytes) continue;
      const value = BandwidthValue.decode(Buffer.from(bytes), 0);
      if (value.rate === 0) continue;
      const row = rows.get(key.endpointId) ?? {};
      row[key.direction === Direction.egress ? 'egress' : 'ingress'] = { bitsPerSecond: value.rate * 8, drops: value.drops };
      rows.set(key.endpointId, row);
    }
    const endpoints = [...rows]
      .sort(([a], [b]) => a - b)
      .map(([endpointId, row]): BandwidthEndpoint => {
        const ep = byId.get(endpointId);
        return { endpointId, ...(ep ? { namespace: ep.namespace, name: ep.name } : {}), ...row };
      });
    const { egress, egressOff, devices, ingress } = this.#modes;
    return {
      egress: { enabled: egress, ...(egressOff ? { reason: egressOff } : {}), devices },
      ingress: { enabled: ingress },
      bbr: this.#o.bbr,
      endpoints,
      invalid: this.invalid(),
    };
  }

  #onPod(event: ResourceEvent): void {
    if (event.type === 'upsert' && event.ref.kind === 'Pod') this.#podChanged(event.object);
    else if (event.type === 'delete' && event.ref.kind === 'Pod') this.#podGone(event.ref.namespace ?? 'default', event.ref.name);
  }

  #podChanged(pod: KubeObject): void {
    const key = podKey(pod.metadata.namespace ?? 'default', pod.metadata.name);
    const limits = podBandwidth(pod);
    const accepted: Partial<Record<BandwidthDirection, AnnotatedLimit>> = {};
    const before = this.#accepted.get(key) ?? {};
    for (const d of DIRECTIONS) {
      const l = limits[d];
      if (l && 'error' in l) {
        this.#log.warn({ pod: key, path: l.path, reason: l.error }, 'bandwidth annotation refused; the endpoint keeps its limit');
        if (before[d]) accepted[d] = before[d];
      } else if (l) accepted[d] = l;
    }
    this.#pods.set(key, limits);
    this.#accepted.set(key, accepted);
    if (this.#synced) for (const ep of this.#endpointsOf(key)) this.#sync(ep);
  }

  #podGone(namespace: string, name: string): void {
    const key = podKey(namespace, name);
    this.#pods.delete(key);
    this.#accepted.delete(key);
    this.#bbrFailed.delete(key);
    if (this.#synced) for (const ep of this.#endpointsOf(key)) this.#sync(ep);
  }

  #endpointsOf(key: string): Endpoint[] {
    return this.#o.endpoints.list().filter((e) => podKey(e.namespace, e.name) === key);
  }

  /** The entries an endpoint's Pod asks for. */
  #wanted(ep: Endpoint): Partial<Record<BandwidthDirection, Wanted>> {
    const limits = this.#accepted.get(podKey(ep.namespace, ep.name)) ?? {};
    const out: Partial<Record<BandwidthDirection, Wanted>> = {};
    const egress = limits.egress;
    if (this.#modes.egress && egress && 'bitsPerSecond' in egress) {
      out.egress = { rate: Math.max(1, Math.floor(egress.bitsPerSecond / 8)), horizonNs: this.#o.horizonMs * 1e6 };
    }
    const ingress = limits.ingress;
    if (this.#modes.ingress && ingress && 'bitsPerSecond' in ingress) {
      const rate = Math.max(1, Math.floor(ingress.bitsPerSecond / 8));
      const burst = Math.max(this.#o.ingressMinBurstBytes, (rate * this.#o.ingressBurstMs) / 1000);
      out.ingress = { rate, horizonNs: Math.round((burst * NS_PER_SECOND) / rate) };
    }
    return out;
  }

  /** Brings one endpoint's entries in line with its Pod. */
  #sync(ep: Endpoint): void {
    if (!this.#synced) return;
    const wanted = this.#wanted(ep);
    for (const d of DIRECTIONS) {
      try {
        this.#write(ep.id, d, wanted[d]);
      } catch (err) {
        this.#log.error({ err, endpoint: ep.id, direction: d }, 'cannot write the bandwidth limit');
      }
    }
    if (this.#o.bbr) void this.#bbr(ep);
  }

  #forget(id: number): void {
    for (const d of DIRECTIONS) this.#write(id, d, undefined);
  }

  /** Writes (or deletes) one entry; the clock and the drop count of an existing one are kept. */
  #write(endpointId: number, direction: BandwidthDirection, wanted: Wanted | undefined): void {
    const map = this.#o.map();
    const key = Buffer.alloc(BandwidthKey.size);
    BandwidthKey.encode({ endpointId, direction: Direction[direction] }, key, 0);
    const raw = map.lookup(key);
    const current = raw ? BandwidthValue.decode(Buffer.from(raw), 0) : undefined;
    if (!wanted) {
      if (current && map.delete(key)) this.#log.info({ endpoint: endpointId, direction }, 'bandwidth limit removed');
      return;
    }
    if (current && current.rate === wanted.rate && current.horizonNs === wanted.horizonNs) return;
    const value = Buffer.alloc(BandwidthValue.size);
    BandwidthValue.encode({ rate: wanted.rate, horizonNs: wanted.horizonNs, tLast: current?.tLast ?? 0n, drops: current?.drops ?? 0 }, value, 0);
    map.update(key, value);
    this.#log.info({ endpoint: endpointId, direction, bitsPerSecond: wanted.rate * 8, ...(current ? { was: current.rate * 8 } : {}) }, 'bandwidth limit set');
  }

  /** Deletes entries of endpoints that no longer exist (one by one; the map is never flushed). */
  #prune(live: ReadonlySet<number>): void {
    const map = this.#o.map();
    for (const raw of map.keys()) {
      const key = BandwidthKey.decode(Buffer.from(raw), 0);
      if (live.has(key.endpointId)) continue;
      map.delete(raw);
      this.#log.info({ endpoint: key.endpointId }, 'bandwidth limit of a gone endpoint removed');
    }
  }

  /** BBR in the endpoint's namespace, once per endpoint. */
  async #bbr(ep: Endpoint): Promise<void> {
    const id = `${ep.id}:${ep.netns}`;
    if (this.#bbrDone.has(id)) return;
    this.#bbrDone.add(id);
    const pod = podKey(ep.namespace, ep.name);
    try {
      await setSysctl('net.ipv4.tcp_congestion_control', 'bbr', { netns: ep.netns });
      this.#bbrFailed.delete(pod);
    } catch (err) {
      this.#bbrDone.delete(id);
      this.#bbrFailed.set(pod, (err as Error).message);
      this.#log.warn({ err, endpoint: ep.id, netns: ep.netns }, 'cannot set BBR in the pod');
    }
  }
}
