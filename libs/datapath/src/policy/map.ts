// The writer of cilia_policy / cilia_policy_endpoints: per endpoint, raw policy entries in,
// the fewest map writes out. It keeps what the maps hold (adopted from the pinned maps when it
// starts, so a restarted agent writes only differences and never flushes live policy) and
// what each endpoint should hold, and fails an endpoint closed (deny-all both directions)
// when its entries exceed the quota or a write fails, until a later write succeeds.
import type { PolicyMapMode, RealizedPolicyEntry } from '@cilia/api-client';
import type { BpfMap } from '@cilia/bpf';
import type { Logger, PolicyDelta, PolicyEnforcement, PolicyEntry, PolicyKey } from '@cilia/core';
import { PolicyModeCode, type PolicyEndpointRecord, type PolicyMapKeyValue, type PolicyMapValueValue } from '../maps/policy.js';
import {
  checkPolicyEntry,
  describePrefix,
  groupCode,
  groupOfCode,
  groupPrefixes,
  checkPolicyKey,
  prefixCode,
  prefixOfCode,
  valueCode,
  valueOfCode,
  type PolicyPrefix,
} from './prefixes.js';
import { RawGroups } from './raw-groups.js';

/** What a direction of an endpoint does in the datapath (the API's wire type). */
export type PolicyMode = PolicyMapMode;

export type PolicyWriteOutcome =
  | { readonly failClosed: false; readonly written: number; readonly deleted: number }
  | { readonly failClosed: true; readonly reason: string };

/** One map entry read back, a port prefix shown as the range port..endPort (the API's wire type). */
export type { RealizedPolicyEntry };

export interface PolicyMapOptions {
  readonly policy: BpfMap<PolicyMapKeyValue, PolicyMapValueValue>;
  readonly endpoints: BpfMap<number, PolicyEndpointRecord>;
  /** Prefixes one endpoint may have before it fails closed (default 16384). */
  readonly maxEntriesPerEndpoint?: number;
  /** POLICY_DEFAULT_DENY of the loaded program: what an endpoint without a record gets. */
  readonly defaultDeny?: boolean;
  readonly logger: Logger;
}

export const DEFAULT_MAX_ENTRIES_PER_ENDPOINT = 16384;

const MODE_NAME: Readonly<Record<number, PolicyMode>> = { 0: 'allow-all', 1: 'enforce', 2: 'deny-all' };
const DIRECTION_NAME = ['ingress', 'egress'] as const;

/** Why an endpoint failed closed: only a failed write may heal without a change of entries. */
type Failure = 'quota' | 'invalid' | 'write';

/** Prefix code → value code, for one (direction, identity) group. */
type GroupPrefixes = Map<number, number>;

const NOTHING: GroupPrefixes = new Map();

interface EndpointState {
  readonly raw: RawGroups;
  /** Prefixes in cilia_policy for the endpoint. */
  writtenCount: number;
  /**
   * What cilia_policy holds, by group code, when that is not simply the prefixes of `raw`:
   * adopted from the maps (raw entries unknown), or after a failure. Undefined when clean —
   * then the map holds exactly the prefixes of each raw group, and the mirror is `raw` alone.
   */
  written?: Map<number, GroupPrefixes>;
  /** Entries that cannot be written, by key (JSON), with why; the endpoint fails closed while any is left. */
  invalid?: Map<string, string>;
  /** What cilia_policy_endpoints holds for it. */
  record?: PolicyEndpointRecord;
  enforcement?: PolicyEnforcement;
  revision: number;
  failClosed?: string;
  failure?: Failure;
}

/** The key's direction code, or why it is invalid. */
function checkKey(k: PolicyKey): number | string {
  try {
    checkPolicyKey(k);
    // checkPolicyKey ignores endPort without a port; the raw store still needs 16 bits.
    const end = k.endPort ?? 0;
    if (!Number.isInteger(end) || end < 0 || end > 65535) throw new RangeError(`key.endPort: must be an integer in 0..65535, got ${k.endPort}`);
    return k.direction === 'ingress' ? 0 : 1;
  } catch (err) {
    return (err as Error).message;
  }
}

const invalidId = (k: PolicyKey): string => JSON.stringify([k.direction, k.identity, k.protocol, k.port, k.endPort]);

export class PolicyMap {
  readonly #policy: BpfMap<PolicyMapKeyValue, PolicyMapValueValue>;
  readonly #records: BpfMap<number, PolicyEndpointRecord>;
  readonly #quota: number;
  readonly #defaultMode: PolicyMode;
  readonly #log: Logger;
  readonly #state = new Map<number, EndpointState>();

  constructor(options: PolicyMapOptions) {
    this.#policy = options.policy;
    this.#records = options.endpoints;
    this.#quota = options.maxEntriesPerEndpoint ?? DEFAULT_MAX_ENTRIES_PER_ENDPOINT;
    if (!Number.isInteger(this.#quota) || this.#quota < 1) throw new RangeError(`maxEntriesPerEndpoint: must be a positive integer, got ${this.#quota}`);
    this.#defaultMode = options.defaultDeny ? 'deny-all' : 'allow-all';
    this.#log = options.logger;
    this.#adopt();
  }

  /** One pass over the pinned maps: whatever a previous agent realized is the starting point. */
  #adopt(): void {
    let prefixes = 0;
    for (const [key, value] of this.#policy.entries()) {
      const state = this.#endpoint(key.endpointId);
      const g = groupCode(key.direction, key.identity);
      let group = state.written!.get(g);
      if (!group) state.written!.set(g, (group = new Map()));
      group.set(prefixCode(key), valueCode(value));
      state.writtenCount++;
      prefixes++;
    }
    for (const [id, record] of this.#records.entries()) {
      const state = this.#endpoint(id);
      state.record = record;
      state.revision = record.revision;
    }
    if (this.#state.size > 0) this.#log.info({ endpoints: this.#state.size, prefixes }, 'policy map state adopted from the pinned maps');
  }

  #endpoint(id: number): EndpointState {
    let state = this.#state.get(id);
    if (!state) {
      // Raw entries unknown until a sync (or a first delta): reconcile against what the map holds.
      state = { raw: new RawGroups(), writtenCount: 0, written: new Map(), revision: 0 };
      this.#state.set(id, state);
    }
    return state;
  }

  /** Replaces endpoint `id`'s state (diff against the map; upserts before deletes). */
  sync(
    id: number,
    entries: ReadonlyArray<readonly [PolicyKey, PolicyEntry]>,
    enforcement: PolicyEnforcement,
    revision: number,
  ): PolicyWriteOutcome {
    checkEndpointId(id);
    const state = this.#endpoint(id);
    // Clean: what the map holds is derived from the raw entries before they are replaced.
    const held = state.written ?? this.#derivedPrefixes(state);
    const before = this.#groupsOf(state, held);
    state.raw.clear();
    state.invalid = undefined;
    entries.forEach(([key, entry], i) => this.#upsert(state, key, entry, `entries[${i}]`));
    state.enforcement = enforcement;
    state.revision = revision;
    return this.#realize(id, state, [...this.#groupsOf(state, held, before)], held);
  }

  /**
   * Applies one repository delta (enforcement too when present): only the (direction,
   * identity) groups its keys touch are derived again; an empty delta only records the revision.
   */
  apply(id: number, delta: PolicyDelta): PolicyWriteOutcome {
    checkEndpointId(id);
    const state = this.#endpoint(id);
    state.revision = delta.revision;
    if (delta.enforcement) state.enforcement = delta.enforcement;
    if (delta.upserts.length === 0 && delta.deletes.length === 0) {
      // Nothing to derive; a failed write may heal on a retry, so that failure alone reconciles.
      if (!state.written || (state.failClosed && state.failure !== 'write')) return this.#recordOnly(id, state);
      return this.#realize(id, state, [...this.#groupsOf(state, state.written)], state.written);
    }
    // Clean: each touched group's prefixes as the map holds them, taken before the change.
    const touched = state.written ? undefined : new Set<number>();
    const held = state.written ?? new Map<number, GroupPrefixes>();
    const touch = (direction: number, identity: number): void => {
      const g = groupCode(direction, identity);
      if (!touched || touched.has(g)) return;
      touched.add(g);
      const entries = state.raw.entries(direction, identity);
      if (entries.length > 0) held.set(g, groupPrefixes(entries));
    };
    for (const key of delta.deletes) {
      state.invalid?.delete(invalidId(key));
      const direction = checkKey(key);
      if (typeof direction === 'string') continue;
      touch(direction, key.identity);
      state.raw.delete(direction, key);
    }
    delta.upserts.forEach(([key, entry], i) => {
      const direction = checkKey(key);
      if (typeof direction === 'number') touch(direction, key.identity);
      this.#upsert(state, key, entry, `upserts[${i}]`);
    });
    return this.#realize(id, state, [...(touched ?? this.#groupsOf(state, held))], held);
  }

  /** Stores one raw entry, or keeps it aside with why when it is invalid (replacing a valid one of its key). */
  #upsert(state: EndpointState, key: PolicyKey, entry: PolicyEntry, path: string): void {
    const direction = checkKey(key);
    let problem = typeof direction === 'string' ? direction : undefined;
    if (problem === undefined) {
      try {
        checkPolicyEntry(entry);
      } catch (err) {
        problem = (err as Error).message;
      }
    }
    if (problem !== undefined) {
      (state.invalid ??= new Map()).set(invalidId(key), `${path}.${problem}`);
      if (typeof direction === 'number') state.raw.delete(direction, key);
      return;
    }
    state.invalid?.delete(invalidId(key));
    state.raw.set(direction as number, key, entry);
  }

  /** The prefixes of every raw group (what the map holds for a clean endpoint). */
  #derivedPrefixes(state: EndpointState): Map<number, GroupPrefixes> {
    const out = new Map<number, GroupPrefixes>();
    for (const [direction, identity] of state.raw.groups()) out.set(groupCode(direction, identity), groupPrefixes(state.raw.entries(direction, identity)));
    return out;
  }

  /** The groups of `held`, of the raw entries, and of `also`. */
  #groupsOf(state: EndpointState, held: Map<number, GroupPrefixes>, also: Iterable<number> = []): Set<number> {
    const groups = new Set<number>(held.keys());
    for (const g of also) groups.add(g);
    for (const [direction, identity] of state.raw.groups()) groups.add(groupCode(direction, identity));
    return groups;
  }

  /** Everything the map holds for the endpoint, by group. */
  #held(state: EndpointState): Map<number, GroupPrefixes> {
    return state.written ?? this.#derivedPrefixes(state);
  }

  /** Deletes everything of endpoint `id` from both maps. */
  remove(id: number): void {
    const state = this.#state.get(id);
    if (!state) return;
    for (const [g, group] of this.#held(state)) {
      const { direction, identity } = groupOfCode(g);
      for (const code of group.keys()) {
        try {
          this.#policy.delete(mapKey(id, prefixOfCode(direction, identity, code)));
        } catch (err) {
          this.#log.warn({ endpoint: id, err }, 'could not delete a policy map entry of a removed endpoint');
        }
      }
    }
    try {
      this.#records.delete(id);
    } catch (err) {
      this.#log.warn({ endpoint: id, err }, 'could not delete the policy endpoint entry of a removed endpoint');
    }
    this.#state.delete(id);
  }

  /** What the maps hold for endpoint `id` (entries read back from cilia_policy). */
  dump(id: number): { ingress: PolicyMode; egress: PolicyMode; revision: number; entries: RealizedPolicyEntry[] } | undefined {
    const state = this.#state.get(id);
    if (!state) return undefined;
    const record = this.#records.lookup(id);
    const entries: RealizedPolicyEntry[] = [];
    for (const [g, group] of this.#held(state)) {
      const { direction, identity } = groupOfCode(g);
      for (const code of group.keys()) {
        const prefix = prefixOfCode(direction, identity, code);
        // An exact-length lookup of a stored prefix returns that prefix's own value.
        const value = this.#policy.lookup(mapKey(id, prefix));
        if (!value) continue;
        entries.push({
          identity,
          direction: DIRECTION_NAME[direction] ?? 'ingress',
          ...describePrefix(prefix),
          verdict: value.flags & 1 ? 'deny' : 'allow',
          proxyPort: value.proxyPort,
        });
      }
    }
    entries.sort((a, b) => a.direction.localeCompare(b.direction) || a.identity - b.identity || a.protocol - b.protocol || a.port - b.port || a.endPort - b.endPort);
    return {
      ingress: record ? modeName(record.ingress) : this.#defaultMode,
      egress: record ? modeName(record.egress) : this.#defaultMode,
      revision: record?.revision ?? state.revision,
      entries,
    };
  }

  /** Endpoints the writer knows (synced, or adopted from the maps). */
  endpoints(): number[] {
    return [...this.#state.keys()].sort((a, b) => a - b);
  }

  /** Endpoints failed closed, with the reason. */
  failClosed(): ReadonlyMap<number, string> {
    const out = new Map<number, string>();
    for (const [id, s] of this.#state) if (s.failClosed) out.set(id, s.failClosed);
    return out;
  }

  /**
   * Brings `groups` to the prefixes of their raw entries; `held` is what the map holds of them
   * (no entry: nothing), updated in place as writes succeed. Not clean: `groups` is every group
   * the map or the raw entries have, and the endpoint is clean once it succeeds.
   */
  #realize(id: number, state: EndpointState, groups: readonly number[], held: Map<number, GroupPrefixes>): PolicyWriteOutcome {
    const invalid = state.invalid?.values().next();
    if (invalid && !invalid.done) {
      return this.#failClosed(id, state, groups, held, 'invalid', `invalid policy entry: ${invalid.value}${state.invalid!.size > 1 ? ` (and ${state.invalid!.size - 1} more)` : ''}`);
    }
    const desired: GroupPrefixes[] = [];
    let total = state.writtenCount;
    for (const g of groups) {
      const { direction, identity } = groupOfCode(g);
      const entries = state.raw.entries(direction, identity);
      const prefixes = entries.length > 0 ? groupPrefixes(entries) : NOTHING;
      desired.push(prefixes);
      total += prefixes.size - (held.get(g)?.size ?? 0);
    }
    if (total > this.#quota) {
      return this.#failClosed(id, state, groups, held, 'quota', `${total} policy map entries exceed the per-endpoint quota of ${this.#quota} (maxEntriesPerEndpoint)`);
    }
    let written = 0;
    let deleted = 0;
    try {
      groups.forEach((g, i) => {
        const prefixes = desired[i]!;
        if (prefixes.size === 0) return;
        let had = held.get(g);
        if (!had) held.set(g, (had = new Map()));
        const { direction, identity } = groupOfCode(g);
        for (const [code, value] of prefixes) {
          const before = had.get(code);
          if (before === value) continue;
          this.#policy.update(mapKey(id, prefixOfCode(direction, identity, code)), valueOfCode(value));
          had.set(code, value);
          if (before === undefined) state.writtenCount++;
          written++;
        }
      });
      // Enforcement only after the allows it relies on are in.
      this.#writeRecord(id, state, this.#enforcedRecord(state));
      groups.forEach((g, i) => {
        const prefixes = desired[i]!;
        const had = held.get(g);
        if (!had) return;
        const { direction, identity } = groupOfCode(g);
        for (const code of had.keys()) {
          if (prefixes.has(code)) continue;
          this.#policy.delete(mapKey(id, prefixOfCode(direction, identity, code)));
          had.delete(code);
          state.writtenCount--;
          deleted++;
        }
      });
    } catch (err) {
      return this.#failClosed(id, state, groups, held, 'write', `writing the policy maps failed: ${(err as Error).message}`);
    }
    state.written = undefined;
    if (state.failClosed) this.#log.info({ endpoint: id, revision: state.revision }, 'endpoint policy realized again, no longer failed closed');
    state.failClosed = undefined;
    state.failure = undefined;
    return { failClosed: false, written, deleted };
  }

  /** An empty delta: the record takes the new revision, nothing else changes. */
  #recordOnly(id: number, state: EndpointState): PolicyWriteOutcome {
    const record = state.failClosed ? denyAll(state.revision) : this.#enforcedRecord(state);
    try {
      this.#writeRecord(id, state, record);
    } catch (err) {
      return this.#failClosed(id, state, [], new Map(), 'write', `writing the policy maps failed: ${(err as Error).message}`);
    }
    return state.failClosed ? { failClosed: true, reason: state.failClosed } : { failClosed: false, written: 0, deleted: 0 };
  }

  #enforcedRecord(state: EndpointState): PolicyEndpointRecord {
    const enforcement = state.enforcement ?? enforcementOf(state.record);
    return {
      ingress: enforcement.ingress ? PolicyModeCode.enforce : PolicyModeCode.allowAll,
      egress: enforcement.egress ? PolicyModeCode.enforce : PolicyModeCode.allowAll,
      flags: 0,
      revision: state.revision,
    };
  }

  #writeRecord(id: number, state: EndpointState, record: PolicyEndpointRecord): void {
    const had = state.record;
    if (had && had.ingress === record.ingress && had.egress === record.egress && had.flags === record.flags && had.revision === record.revision) return;
    this.#records.update(id, record);
    state.record = record;
  }

  /**
   * Deny-all for the endpoint. What the map holds becomes explicit (no longer the prefixes of
   * the raw entries): `held` for the `groups` a realization was working on, derived from the
   * raw entries for the rest (untouched, so still what the map holds).
   */
  #failClosed(id: number, state: EndpointState, groups: readonly number[], held: Map<number, GroupPrefixes>, failure: Failure, reason: string): PolicyWriteOutcome {
    if (!state.written) {
      const written = this.#derivedPrefixes(state);
      for (const g of groups) {
        const group = held.get(g);
        if (group) written.set(g, group);
        else written.delete(g);
      }
      state.written = written;
    }
    let why = reason;
    try {
      this.#writeRecord(id, state, denyAll(state.revision));
    } catch (err) {
      // Without its record the endpoint falls back to POLICY_DEFAULT_DENY: say so.
      why = `${reason}; writing deny-all failed too: ${(err as Error).message}`;
      failure = 'write';
    }
    if (state.failClosed !== why) this.#log.error({ endpoint: id, revision: state.revision, reason: why }, 'endpoint policy failed closed (deny-all)');
    state.failClosed = why;
    state.failure = failure;
    return { failClosed: true, reason: why };
  }
}

function denyAll(revision: number): PolicyEndpointRecord {
  return { ingress: PolicyModeCode.denyAll, egress: PolicyModeCode.denyAll, flags: 0, revision };
}

function mapKey(endpointId: number, p: PolicyPrefix): PolicyMapKeyValue {
  return { prefixlen: p.prefixlen, endpointId, direction: p.direction, identity: p.identity, protocol: p.protocol, dport: p.dport };
}

function modeName(code: number): PolicyMode {
  return MODE_NAME[code] ?? 'deny-all';
}

function enforcementOf(record: PolicyEndpointRecord | undefined): PolicyEnforcement {
  // deny-all of a failed-closed record says nothing about enforcement: keep it enforced.
  return { ingress: (record?.ingress ?? 0) !== PolicyModeCode.allowAll, egress: (record?.egress ?? 0) !== PolicyModeCode.allowAll };
}

function checkEndpointId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > 0xffff) throw new RangeError(`endpointId: must be an integer in 1..65535, got ${id}`);
}
