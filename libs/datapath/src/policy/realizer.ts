import type { RealizedEndpointPolicy } from '@cilia/api-client';
import type { Labels, Logger, NamedPort, PolicyDelta, PolicyRepository, PolicyRevision, PolicySubject, Unsubscribe } from '@cilia/core';
import type { PolicyMap, PolicyWriteOutcome } from './map.js';

/** What the realizer needs to know of an endpoint. */
export interface PolicyTarget {
  readonly id: number;
  readonly name: string;
  readonly namespace: string;
  readonly identity: number;
  /** The labels rules select the endpoint by (its identity's labels). */
  readonly labels: Labels;
  readonly namedPorts?: Readonly<Record<string, NamedPort>>;
}

/** An endpoint's realized policy as `GET /v1/endpoints/:id` shows it (the API's wire type). */
export type EndpointPolicyView = RealizedEndpointPolicy;

/** The endpoint manager's view of policy realization (a fake stands in for it in unit tests). */
export interface EndpointPolicy {
  /**
   * Writes the endpoint's full policy (a diff against what the map holds, so an adopted
   * endpoint's entries are never flushed) and follows the repository's deltas from then on.
   * Again for the same id (labels or identity changed): the old watch ends first.
   */
  realize(target: PolicyTarget): void;
  /** Stops following the endpoint and removes its map state. */
  forget(id: number): void;
  /** Removes map state of endpoints not in `valid` (after adoption); returns how many. */
  prune(valid: ReadonlySet<number>): number;
  /** The revision the endpoint's map state has realized; undefined when not realized. */
  revision(id: number): PolicyRevision | undefined;
}

/** The writer operations the realizer uses (`PolicyMap` of ./map.ts). */
export type PolicyMapWriter = Pick<PolicyMap, 'sync' | 'apply' | 'remove' | 'dump' | 'endpoints' | 'failClosed'>;

export interface PolicyRealizerOptions {
  readonly repository: PolicyRepository;
  readonly map: PolicyMapWriter;
  readonly logger: Logger;
  /** Seconds from an import or delete to an endpoint's map having realized it (affected endpoints only). */
  readonly onImplemented?: (delaySeconds: number) => void;
}

interface Realized {
  readonly target: PolicyTarget;
  revision: PolicyRevision;
  unwatch: Unsubscribe;
}

/**
 * Keeps each endpoint's policy map state equal to what the repository resolves for it: a full
 * resolution written once (before the endpoint's programs attach), then the repository's
 * deltas as rules and identities change, with the revision each endpoint has realized.
 */
export class PolicyRealizer implements EndpointPolicy {
  readonly #repo: PolicyRepository;
  readonly #map: PolicyMapWriter;
  readonly #log: Logger;
  readonly #onImplemented: ((delaySeconds: number) => void) | undefined;
  readonly #realized = new Map<number, Realized>();

  constructor(options: PolicyRealizerOptions) {
    this.#repo = options.repository;
    this.#map = options.map;
    this.#log = options.logger;
    this.#onImplemented = options.onImplemented;
  }

  realize(target: PolicyTarget): PolicyWriteOutcome {
    this.#realized.get(target.id)?.unwatch();
    this.#realized.delete(target.id);
    const subject = subjectOf(target);
    const resolved = this.#repo.resolve(subject);
    const outcome = this.#map.sync(target.id, resolved.entries, resolved.enforcement, resolved.revision);
    const state: Realized = { target, revision: resolved.revision, unwatch: () => undefined };
    this.#realized.set(target.id, state);
    // Synchronously after resolve: no revision can slip in between.
    state.unwatch = this.#repo.watch(subject, (delta) => this.#onDelta(state, delta));
    this.#log.debug({ endpoint: target.id, revision: resolved.revision, entries: resolved.entries.length, enforcement: resolved.enforcement }, 'endpoint policy realized');
    return outcome;
  }

  forget(id: number): void {
    const state = this.#realized.get(id);
    state?.unwatch();
    this.#realized.delete(id);
    this.#map.remove(id);
  }

  prune(valid: ReadonlySet<number>): number {
    let pruned = 0;
    for (const id of this.#map.endpoints()) {
      if (valid.has(id)) continue;
      this.forget(id);
      pruned++;
    }
    return pruned;
  }

  revision(id: number): PolicyRevision | undefined {
    return this.#realized.get(id)?.revision;
  }

  /** The endpoint's realized policy read back from the map; undefined when it has none. */
  describe(id: number): EndpointPolicyView | undefined {
    const state = this.#realized.get(id);
    const dump = this.#map.dump(id);
    if (!state || !dump) return undefined;
    const failClosed = this.#map.failClosed().get(id);
    return {
      revision: state.revision,
      enforcement: { ingress: dump.ingress, egress: dump.egress },
      ...(failClosed !== undefined ? { failClosed } : {}),
      entries: dump.entries,
    };
  }

  /** One line per endpoint whose traffic is dropped because its policy could not be written. */
  problems(): string[] {
    const lines: string[] = [];
    for (const [id, reason] of this.#map.failClosed()) {
      const target = this.#realized.get(id)?.target;
      const who = target ? `endpoint ${id} (${target.namespace}/${target.name})` : `endpoint ${id}`;
      lines.push(`${who}: ${reason}; its traffic is dropped (fail closed)`);
    }
    return lines.sort();
  }

  /** Stops following every endpoint; the map keeps its state (the datapath goes on enforcing it). */
  close(): void {
    for (const state of this.#realized.values()) state.unwatch();
    this.#realized.clear();
  }

  #onDelta(state: Realized, delta: PolicyDelta): void {
    if (this.#realized.get(state.target.id) !== state) return; // superseded meanwhile
    try {
      // A write failure or an overflow is the writer's to report: it fails the endpoint closed.
      const outcome = this.#map.apply(state.target.id, delta);
      const changed = delta.upserts.length > 0 || delta.deletes.length > 0 || delta.enforcement !== undefined;
      if (changed && !outcome.failClosed && delta.issuedAt !== undefined) this.#onImplemented?.(Math.max(0, performance.timeOrigin + performance.now() - delta.issuedAt) / 1000);
    } catch (err) {
      // The map may hold half a delta: write the full state again rather than guess.
      this.#log.error({ endpoint: state.target.id, revision: delta.revision, err }, 'applying a policy delta failed; writing the full policy again');
      try {
        this.realize(state.target);
      } catch (again) {
        this.#log.error({ endpoint: state.target.id, err: again }, 'writing the full policy failed');
      }
      return;
    }
    state.revision = delta.revision;
  }
}

function subjectOf(target: PolicyTarget): PolicySubject {
  return { endpointId: target.id, identity: target.identity, labels: target.labels, ...(target.namedPorts ? { namedPorts: target.namedPorts } : {}) };
}
