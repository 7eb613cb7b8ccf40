import type { Logger, ResourceEvent, Service, ServiceFrontend } from '@cilia/core';
import { kubeServiceFrontends, parseEndpointSlice, parseKubeService, type KubeEndpointSlice, type KubeService, type KubeServiceOptions } from './kubernetes.js';
import { frontendKey } from './model.js';

/** Where the controller's frontends go: the load balancer ({@link LoadBalancer} is one). */
export interface ServiceSink {
  apply(upserts: readonly Service[], deletes: readonly Pick<ServiceFrontend, 'address' | 'port' | 'protocol'>[]): void;
  sync(services: readonly Service[]): unknown;
}

/** A group of frontends with one owner: a Service, or the services given through the API. */
type Owner = string;

const serviceOwner = (namespace: string, name: string): Owner => `Service ${namespace}/${name}`;

/**
 * Keeps the load balancer in step with its sources: Kubernetes Services and their
 * EndpointSlices (from a `ResourceSource`: the manifest directory, or Kubernetes), and
 * services of other owners (the API's). Nothing is written until the sources have delivered
 * their current state (`synced`); then everything is written in one batch — which also deletes
 * what the maps hold from before a restart and no source wants any more — and from then on each
 * change writes only the frontends it changes. A Service or EndpointSlice that is invalid is
 * refused (its field path and the reason are a problem in `cilia status`) and changes nothing:
 * the version before it stays in force. A frontend two owners claim stays with the first.
 */
export class ServiceController {
  readonly #sink: ServiceSink;
  readonly #options: KubeServiceOptions;
  readonly #log: Logger;
  readonly #services = new Map<string, KubeService>();
  readonly #slices = new Map<string, KubeEndpointSlice>();
  /** Frontends as applied, by owner. */
  readonly #applied = new Map<Owner, Map<string, Service>>();
  /** Frontends of owners other than Services (the API's), as given. */
  readonly #static = new Map<Owner, Service[]>();
  /** Which owner serves each frontend key. */
  readonly #owners = new Map<string, Owner>();
  readonly #invalid = new Map<string, string>();
  readonly #conflicts = new Map<Owner, string[]>();
  readonly #skipped = new Map<string, string>();
  #synced = false;

  constructor(options: { sink: ServiceSink; options: KubeServiceOptions; logger: Logger }) {
    this.#sink = options.sink;
    this.#options = options.options;
    this.#log = options.logger;
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** One event of a `ResourceSource` subscribed to Service and EndpointSlice. */
  handle(event: ResourceEvent): void {
    switch (event.type) {
      case 'synced':
        this.#sync();
        return;
      case 'invalid':
        return; // the source reports what it could not read
      case 'upsert':
      case 'delete': {
        const { kind, namespace = 'default', name } = event.ref;
        if (kind === 'Service') this.#service(namespace, name, event.type === 'upsert' ? event.object : undefined);
        else if (kind === 'EndpointSlice') this.#slice(namespace, name, event.type === 'upsert' ? event.object : undefined);
        return;
      }
    }
  }

  /** Sets the frontends of a non-Kubernetes owner (e.g. `api`): each replaces what it had. */
  setStatic(owner: string, services: readonly Service[]): void {
    this.#static.set(owner, [...services]);
    if (this.#synced) this.#refresh([owner]);
  }

  /** The owner serving a frontend, if any. */
  ownerOf(frontend: Pick<ServiceFrontend, 'address' | 'port' | 'protocol'>): string | undefined {
    return this.#owners.get(frontendKey(frontend));
  }

  /** What is wrong now, one line each: refused Services and EndpointSlices, frontends claimed twice. */
  problems(): string[] {
    return [...this.#invalid.values(), ...[...this.#conflicts.entries()].flatMap(([owner, keys]) => keys.map((k) => `${owner}: frontend ${k} is served by ${this.#owners.get(k)} already`))];
  }

  /** Services left alone on purpose, and why (ExternalName, headless, another proxy's). */
  skipped(): ReadonlyMap<string, string> {
    return this.#skipped;
  }

  #service(namespace: string, name: string, object: Parameters<typeof parseKubeService>[0] | undefined): void {
    const key = `${namespace}/${name}`;
    const ref = `Service ${key}`;
    if (object) {
      const parsed = parseKubeService(object, this.#options);
      if ('problems' in parsed) {
        this.#refuse(ref, parsed.problems);
        return;
      }
      this.#invalid.delete(ref);
      if ('skipped' in parsed) {
        if (this.#skipped.get(key) !== parsed.skipped) this.#log.info({ service: key, reason: parsed.skipped }, 'service not load-balanced');
        this.#skipped.set(key, parsed.skipped);
        this.#services.delete(key);
      } else {
        this.#skipped.delete(key);
        this.#services.set(key, parsed.service);
      }
    } else {
      this.#invalid.delete(ref);
      this.#skipped.delete(key);
      this.#services.delete(key);
    }
    if (this.#synced) this.#refresh([serviceOwner(namespace, name)]);
  }

  #slice(namespace: string, name: string, object: Parameters<typeof parseEndpointSlice>[0] | undefined): void {
    const key = `${namespace}/${name}`;
    const ref = `EndpointSlice ${key}`;
    const before = this.#slices.get(key);
    if (object) {
      const parsed = parseEndpointSlice(object);
      if ('problems' in parsed) {
        this.#refuse(ref, parsed.problems);
        return;
      }
      this.#invalid.delete(ref);
      if ('slice' in parsed) this.#slices.set(key, parsed.slice);
      else this.#slices.delete(key);
    } else {
      this.#invalid.delete(ref);
      this.#slices.delete(key);
    }
    const after = this.#slices.get(key);
    const owners = new Set([before, after].flatMap((s) => (s ? [serviceOwner(s.namespace, s.service)] : [])));
    if (this.#synced) this.#refresh([...owners]);
  }

  #refuse(ref: string, problems: readonly { path: string; reason: string }[]): void {
    const message = `${ref} refused: ${problems.map((p) => (p.path ? `${p.path}: ${p.reason}` : p.reason)).join('; ')}`;
    if (this.#invalid.get(ref) !== message) this.#log.warn({ resource: ref, problems }, 'refused; the version before it stays in force');
    this.#invalid.set(ref, message);
  }

  /** What `owner` wants now: the frontends of its Service and slices, or its static list. */
  #desired(owner: Owner): Service[] {
    const listed = this.#static.get(owner);
    if (listed) return listed;
    const key = owner.slice('Service '.length);
    const service = this.#services.get(key);
    if (!service) return [];
    const slices = [...this.#slices.values()].filter((s) => s.namespace === service.namespace && s.service === service.name);
    return kubeServiceFrontends(service, slices, this.#options);
  }

  #allOwners(): Owner[] {
    return [...new Set([...[...this.#services.keys()].map((k) => `Service ${k}`), ...this.#static.keys(), ...this.#applied.keys()])].sort();
  }

  /** Claims keys for `owner`: those nobody else serves. Records the rest as conflicts. */
  #claim(owner: Owner, wanted: readonly Service[]): Service[] {
    const mine: Service[] = [];
    const taken: string[] = [];
    for (const s of wanted) {
      const key = frontendKey(s.frontend);
      const holder = this.#owners.get(key);
      if (holder !== undefined && holder !== owner) taken.push(key);
      else mine.push(s);
    }
    if (taken.length > 0) this.#conflicts.set(owner, taken);
    else this.#conflicts.delete(owner);
    return mine;
  }

  #sync(): void {
    if (this.#synced) return;
    this.#synced = true;
    const all: Service[] = [];
    for (const owner of this.#allOwners()) {
      const mine = this.#claim(owner, this.#desired(owner));
      const applied = new Map<string, Service>();
      for (const s of mine) {
        const key = frontendKey(s.frontend);
        this.#owners.set(key, owner);
        applied.set(key, s);
        all.push(s);
      }
      if (applied.size > 0) this.#applied.set(owner, applied);
    }
    const r = this.#sink.sync(all);
    this.#log.info({ frontends: all.length, owners: this.#applied.size, result: r }, 'services programmed');
  }

  /** Re-derives `owners`' frontends and writes what changed (and what frees up for owners in conflict). */
  #refresh(owners: readonly Owner[]): void {
    const upserts: Service[] = [];
    const deletes: Service['frontend'][] = [];
    const freed: string[] = [];
    for (const owner of owners) {
      const before = this.#applied.get(owner) ?? new Map<string, Service>();
      const after = new Map<string, Service>();
      for (const s of this.#claim(owner, this.#desired(owner))) after.set(frontendKey(s.frontend), s);
      for (const [key, s] of after) {
        const old = before.get(key);
        if (!old || JSON.stringify(old) !== JSON.stringify(s)) upserts.push(s);
        this.#owners.set(key, owner);
      }
      for (const [key, s] of before) {
        if (after.has(key)) continue;
        deletes.push(s.frontend);
        this.#owners.delete(key);
        freed.push(key);
      }
      if (after.size > 0) this.#applied.set(owner, after);
      else this.#applied.delete(owner);
    }
    this.#sink.apply(upserts, deletes);
    // An owner waiting for a frontend that was just freed gets it now.
    const waiting = [...this.#conflicts.entries()].filter(([owner, keys]) => !owners.includes(owner) && keys.some((k) => freed.includes(k))).map(([o]) => o);
    if (waiting.length > 0) this.#refresh(waiting);
  }
}
