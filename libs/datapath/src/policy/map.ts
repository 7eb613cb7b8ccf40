// The writer of cilia_policy / cilia_policy_endpoints: per endpoint, raw policy entries in,
// the fewest map writes out. It keeps what the maps hold (adopted from the pinned maps when it
// starts, so a restarted agent writes only differences and never flushes live policy) and
// what each endpoint should hold, and fails an endpoint closed (deny-all both directions)
// when its entries exceed the quota or a write fails, until a later write succeeds.
import type { BpfMap } from '@cilia/bpf';
import type { Logger, PolicyDelta, PolicyEnforcement, PolicyEntry, PolicyKey } from '@cilia/core';
import { PolicyModeCode, type PolicyEndpointRecord, type PolicyMapKeyValue, type PolicyMapValueValue } from '../maps/policy.js';
import { describePrefix, policyPrefixes, prefixId, type PolicyPrefix, type PolicyPrefixEntry } from './prefixes.js';

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

interface EndpointState {
  /** What cilia_policy holds for the endpoint, by prefix id. */
  readonly written: Map<string, PolicyPrefixEntry>;
  /** What cilia_policy_endpoints holds for it. */
  record?: PolicyEndpointRecord;
  /** The raw entries last synced, by key; undefined for an adopted endpoint not synced yet. */
  raw?: Map<string, readonly [PolicyKey, PolicyEntry]>;
  enforcement?: PolicyEnforcement;
  revision: number;
  failClosed?: string;
}

const rawKeyId = (k: PolicyKey): string => `${k.direction}/${k.identity}/${k.protocol}/${k.port}/${k.endPort}`;

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
      const { endpointId, prefixlen, direction, identity, protocol, dport } = key;
      const prefix: PolicyPrefix = { direction, identity, prefixlen, protocol, dport };
      this.#endpoint(endpointId).written.set(prefixId(prefix), { prefix, value: { flags: value.flags, proxyPort: value.proxyPort } });
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
      state = { written: new Map(), revision: 0 };
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
    state.raw = new Map(entries.map((e) => [rawKeyId(e[0]), e] as const));
    state.enforcement = enforcement;
    state.revision = revision;
    return this.#realize(id, state);
  }

  /** Applies one repository delta (enforcement too when present). */
  apply(id: number, delta: PolicyDelta): PolicyWriteOutcome {
    checkEndpointId(id);
    const state = this.#endpoint(id);
    // An endpoint adopted but never synced: its raw entries are unknown, the delta starts them.
    state.raw ??= new Map();
    for (const key of delta.deletes) state.raw.delete(rawKeyId(key));
    for (const e of delta.upserts) state.raw.set(rawKeyId(e[0]), e);
    if (delta.enforcement) state.enforcement = delta.enforcement;
    state.revision = delta.revision;
    return this.#realize(id, state);
  }

  /** Deletes everything of endpoint `id` from both maps. */
  remove(id: number): void {
    const state = this.#state.get(id);
    if (!state) return;
    for (const [pid, e] of [...state.written]) {
      try {
        this.#policy.delete(mapKey(id, e.prefix));
        state.written.delete(pid);
      } catch (err) {
        this.#log.warn({ endpoint: id, err }, 'could not delete a policy map entry of a removed endpoint');
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
    for (const { prefix } of state.written.values()) {
      // An exact-length lookup of a stored prefix returns that prefix's own value.
      const value = this.#policy.lookup(mapKey(id, prefix));
      if (!value) continue;
      entries.push({
        identity: prefix.identity,
        direction: DIRECTION_NAME[prefix.direction] ?? 'ingress',
        ...describePrefix(prefix),
        verdict: value.flags & 1 ? 'deny' : 'allow',
        proxyPort: value.proxyPort,
      });
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

  #realize(id: number, state: EndpointState): PolicyWriteOutcome {
    let desired: Map<string, PolicyPrefixEntry>;
    try {
      desired = policyPrefixes([...(state.raw?.values() ?? [])]);
    } catch (err) {
      return this.#failClosed(id, state, `invalid policy entry: ${(err as Error).message}`);
    }
    if (desired.size > this.#quota) {
      return this.#failClosed(id, state, `${desired.size} policy map entries exceed the per-endpoint quota of ${this.#quota} (maxEntriesPerEndpoint)`);
    }
    let written = 0;
    let deleted = 0;
    try {
      for (const [pid, e] of desired) {
        const had = state.written.get(pid);
        if (had && had.value.flags === e.value.flags && had.value.proxyPort === e.value.proxyPort) continue;
        this.#policy.update(mapKey(id, e.prefix), e.value);
        state.written.set(pid, e);
        written++;
      }
      // Enforcement only after the allows it relies on are in.
      const enforcement = state.enforcement ?? enforcementOf(state.record);
      this.#writeRecord(id, state, {
        ingress: enforcement.ingress ? PolicyModeCode.enforce : PolicyModeCode.allowAll,
        egress: enforcement.egress ? PolicyModeCode.enforce : PolicyModeCode.allowAll,
        flags: 0,
        revision: state.revision,
      });
      for (const [pid, e] of [...state.written]) {
        if (desired.has(pid)) continue;
        this.#policy.delete(mapKey(id, e.prefix));
        state.written.delete(pid);
        deleted++;
      }
    } catch (err) {
      return this.#failClosed(id, state, `writing the policy maps failed: ${(err as Error).message}`);
    }
    if (state.failClosed) this.#log.info({ endpoint: id, revision: state.revision }, 'endpoint policy realized again, no longer failed closed');
    state.failClosed = undefined;
    return { failClosed: false, written, deleted };
  }

  #writeRecord(id: number, state: EndpointState, record: PolicyEndpointRecord): void {
    const had = state.record;
    if (had && had.ingress === record.ingress && had.egress === record.egress && had.flags === record.flags && had.revision === record.revision) return;
    this.#records.update(id, record);
    state.record = record;
  }

  #failClosed(id: number, state: EndpointState, reason: string): PolicyWriteOutcome {
    let why = reason;
    try {
      this.#writeRecord(id, state, { ingress: PolicyModeCode.denyAll, egress: PolicyModeCode.denyAll, flags: 0, revision: state.revision });
    } catch (err) {
      // Without its record the endpoint falls back to POLICY_DEFAULT_DENY: say so.
      why = `${reason}; writing deny-all failed too: ${(err as Error).message}`;
    }
    if (state.failClosed !== why) this.#log.error({ endpoint: id, revision: state.revision, reason: why }, 'endpoint policy failed closed (deny-all)');
    state.failClosed = why;
    return { failClosed: true, reason: why };
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
