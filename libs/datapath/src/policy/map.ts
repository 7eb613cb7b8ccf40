// The writer of cilia_policy / cilia_policy_endpoints: per endpoint, raw policy entries in,
// the fewest map writes out. It keeps what the maps hold (adopted from the pinned maps when it
// starts, so a restarted agent writes only differences and never flushes live policy) and
// what each endpoint should hold, and fails an endpoint closed (deny-all both directions)
// when its entries exceed the quota or a write fails, until a later write succeeds.
import type { BpfMap } from '@cilia/bpf';
import type { Logger, PolicyDelta, PolicyEnforcement, PolicyEntry, PolicyKey } from '@cilia/core';
import { PolicyModeCode, type PolicyEndpointRecord, type PolicyMapKeyValue, type PolicyMapValueValue } from '../maps/policy.js';
import {
  checkPolicyEntry,
  describePrefix,
  groupCode,
  groupOfCode,
  groupPrefixes,
  keyPrefixes,
  prefixCode,
  prefixOfCode,
  valueCode,
  valueOfCode,
  type PolicyPrefix,
} from './prefixes.js';

/** What a direction of an endpoint does in the datapath. */
export type PolicyMode = 'allow-all' | 'enforce' | 'deny-all';

export type PolicyWriteOutcome =
  | { readonly failClosed: false; readonly written: number; readonly deleted: number }
  | { readonly failClosed: true; readonly reason: string };

/** One map entry read back, a port prefix shown as the range port..endPort. */
export interface RealizedPolicyEntry {
  identity: number;
  direction: 'ingress' | 'egress';
  protocol: number;
  port: number;
  endPort: number;
  verdict: 'allow' | 'deny';
  proxyPort: number;
}

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

/**
 * One (direction, identity) of an endpoint: deny pruning never crosses it, so a delta is
 * realized by recomputing only the groups its keys fall in. Codes (numbers) rather than objects
 * keep the mirror small; see prefixCode/valueCode.
 */
interface Group {
  /** The raw entries, by rawCode of their key. */
  readonly raw: Map<number, PolicyEntry>;
  /** What cilia_policy holds: prefix code → value code. */
  readonly written: Map<number, number>;
}

/** Why an endpoint failed closed: only a failed write may heal without a change of entries. */
type Failure = 'quota' | 'invalid' | 'write';

interface EndpointState {
  readonly groups: Map<number, Group>;
  /** Prefixes in cilia_policy for the endpoint (the sum of every group's written). */
  writtenCount: number;
  /**
   * Every group's written equals the prefixes of its raw entries. False for an endpoint adopted
   * from the maps (its raw entries unknown) and after a failure: the next change reconciles
   * every group rather than the touched ones.
   */
  clean: boolean;
  /** Entries that cannot be written, by key (JSON), with why; the endpoint fails closed while any is left. */
  invalid?: Map<string, string>;
  /** What cilia_policy_endpoints holds for it. */
  record?: PolicyEndpointRecord;
  enforcement?: PolicyEnforcement;
  revision: number;
  failClosed?: string;
  failure?: Failure;
}

const TWO_16 = 2 ** 16;

/** A raw key within its group: protocol, port, endPort as one number. */
const rawCode = (k: PolicyKey): number => (k.protocol * TWO_16 + k.port) * TWO_16 + (k.endPort ?? 0);

/** The key's group code, or the reason it is invalid. */
function checkKey(k: PolicyKey): number | string {
  try {
    const [first] = keyPrefixes(k);
    // keyPrefixes ignores endPort without a port; the raw code still needs it to be 16 bits.
    if (!Number.isInteger(k.endPort ?? 0) || (k.endPort ?? 0) < 0 || (k.endPort ?? 0) > 65535) throw new RangeError(`key.endPort: must be an integer in 0..65535, got ${k.endPort}`);
    return groupCode(first!.direction, first!.identity);
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
      const group = this.#group(state, groupCode(key.direction, key.identity));
      group.written.set(prefixCode(key), valueCode(value));
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
      // Unknown raw entries: not clean until a sync (or a first delta) has reconciled it.
      state = { groups: new Map(), writtenCount: 0, clean: false, revision: 0 };
      this.#state.set(id, state);
    }
    return state;
  }

  #group(state: EndpointState, code: number): Group {
    let group = state.groups.get(code);
    if (!group) {
      group = { raw: new Map(), written: new Map() };
      state.groups.set(code, group);
    }
    return group;
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
    for (const group of state.groups.values()) group.raw.clear();
    state.invalid = undefined;
    entries.forEach(([key, entry], i) => this.#upsert(state, key, entry, `entries[${i}]`));
    state.enforcement = enforcement;
    state.revision = revision;
    return this.#realize(id, state, state.groups.keys());
  }

  /**
   * Applies one repository delta (enforcement too when present): only the (direction,
   * identity) groups its keys touch are recomputed; an empty delta only records the revision.
   */
  apply(id: number, delta: PolicyDelta): PolicyWriteOutcome {
    checkEndpointId(id);
    const state = this.#endpoint(id);
    if (delta.upserts.length === 0 && delta.deletes.length === 0 && !delta.enforcement) {
      state.revision = delta.revision;
      // Nothing to derive; a failed write may heal on a retry, so that failure alone reconciles.
      if (state.clean || (state.failClosed && state.failure !== 'write')) return this.#recordRevision(id, state);
      return this.#realize(id, state, state.groups.keys());
    }
    const touched = new Set<number>();
    delta.deletes.forEach((key) => {
      const g = checkKey(key);
      if (typeof g === 'string') state.invalid?.delete(invalidId(key));
      else if (state.groups.get(g)?.raw.delete(rawCode(key))) touched.add(g);
    });
    delta.upserts.forEach(([key, entry], i) => {
      const g = this.#upsert(state, key, entry, `upserts[${i}]`);
      if (g !== undefined) touched.add(g);
    });
    if (delta.enforcement) state.enforcement = delta.enforcement;
    state.revision = delta.revision;
    return this.#realize(id, state, state.clean ? touched : state.groups.keys());
  }

  /** Stores one raw entry; returns its group, or undefined when it is invalid (kept aside with why). */
  #upsert(state: EndpointState, key: PolicyKey, entry: PolicyEntry, path: string): number | undefined {
    let g = checkKey(key);
    if (typeof g === 'number') {
      try {
        checkPolicyEntry(entry);
      } catch (err) {
        g = (err as Error).message;
      }
    }
    if (typeof g === 'string') {
      (state.invalid ??= new Map()).set(invalidId(key), `${path}.${g}`);
      return undefined;
    }
    state.invalid?.delete(invalidId(key));
    this.#group(state, g).raw.set(rawCode(key), entry);
    return g;
  }

  /** Deletes everything of endpoint `id` from both maps. */
  remove(id: number): void {
    const state = this.#state.get(id);
    if (!state) return;
    for (const [g, group] of state.groups) {
      const { direction, identity } = groupOfCode(g);
      for (const code of [...group.written.keys()]) {
        try {
          this.#policy.delete(mapKey(id, prefixOfCode(direction, identity, code)));
          group.written.delete(code);
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
    for (const [g, group] of state.groups) {
      const { direction, identity } = groupOfCode(g);
      for (const code of group.written.keys()) {
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

  /** Brings the groups `touched` to the prefixes of their raw entries (every group when not clean). */
  #realize(id: number, state: EndpointState, touched: Iterable<number>): PolicyWriteOutcome {
    const invalid = state.invalid?.values().next();
    if (invalid && !invalid.done) {
      state.clean = false;
      return this.#failClosed(id, state, 'invalid', `invalid policy entry: ${invalid.value}${state.invalid!.size > 1 ? ` (and ${state.invalid!.size - 1} more)` : ''}`);
    }
    const desired = new Map<number, Map<number, number>>();
    let total = state.writtenCount;
    for (const g of touched) {
      const group = state.groups.get(g);
      if (!group || desired.has(g)) continue;
      const prefixes = groupPrefixes(rawEntries(g, group));
      desired.set(g, prefixes);
      total += prefixes.size - group.written.size;
    }
    if (total > this.#quota) {
      state.clean = false;
      return this.#failClosed(id, state, 'quota', `${total} policy map entries exceed the per-endpoint quota of ${this.#quota} (maxEntriesPerEndpoint)`);
    }
    let written = 0;
    let deleted = 0;
    try {
      for (const [g, prefixes] of desired) {
        const group = state.groups.get(g)!;
        const { direction, identity } = groupOfCode(g);
        for (const [code, value] of prefixes) {
          const had = group.written.get(code);
          if (had === value) continue;
          this.#policy.update(mapKey(id, prefixOfCode(direction, identity, code)), valueOfCode(value));
          group.written.set(code, value);
          if (had === undefined) state.writtenCount++;
          written++;
        }
      }
      // Enforcement only after the allows it relies on are in.
      this.#writeRecord(id, state, this.#enforcedRecord(state));
      for (const [g, prefixes] of desired) {
        const group = state.groups.get(g)!;
        const { direction, identity } = groupOfCode(g);
        for (const code of group.written.keys()) {
          if (prefixes.has(code)) continue;
          this.#policy.delete(mapKey(id, prefixOfCode(direction, identity, code)));
          group.written.delete(code);
          state.writtenCount--;
          deleted++;
        }
        if (group.written.size === 0 && group.raw.size === 0) state.groups.delete(g);
      }
    } catch (err) {
      state.clean = false;
      return this.#failClosed(id, state, 'write', `writing the policy maps failed: ${(err as Error).message}`);
    }
    state.clean = true;
    if (state.failClosed) this.#log.info({ endpoint: id, revision: state.revision }, 'endpoint policy realized again, no longer failed closed');
    state.failClosed = undefined;
    state.failure = undefined;
    return { failClosed: false, written, deleted };
  }

  /** An empty delta: the record takes the new revision, nothing else changes. */
  #recordRevision(id: number, state: EndpointState): PolicyWriteOutcome {
    const record = state.failClosed ? { ingress: PolicyModeCode.denyAll, egress: PolicyModeCode.denyAll, flags: 0, revision: state.revision } : this.#enforcedRecord(state);
    try {
      this.#writeRecord(id, state, record);
    } catch (err) {
      state.clean = false;
      return this.#failClosed(id, state, 'write', `writing the policy maps failed: ${(err as Error).message}`);
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

  #failClosed(id: number, state: EndpointState, failure: Failure, reason: string): PolicyWriteOutcome {
    let why = reason;
    try {
      this.#writeRecord(id, state, { ingress: PolicyModeCode.denyAll, egress: PolicyModeCode.denyAll, flags: 0, revision: state.revision });
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

/** A group's raw entries as keys again (groupPrefixes reads keys). */
function* rawEntries(g: number, group: Group): Generator<readonly [PolicyKey, PolicyEntry]> {
  const { direction, identity } = groupOfCode(g);
  for (const [code, entry] of group.raw) {
    const endPort = code % TWO_16;
    const rest = (code - endPort) / TWO_16;
    const port = rest % TWO_16;
    const protocol = (rest - port) / TWO_16;
    yield [{ identity, direction: DIRECTION_NAME[direction]!, protocol, port, endPort }, entry] as const;
  }
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
