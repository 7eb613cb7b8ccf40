// One endpoint's raw policy entries, grouped by (direction, peer identity) — the unit the writer
// derives prefixes for, since deny pruning never looks beyond it. Stored as small numbers in
// flat arrays, not objects: a node holds hundreds of endpoints with about a thousand entries
// each, and most groups have one to three entries.
import type { PolicyEntry, PolicyKey } from '@cilia/core';

/** Entries a group keeps in its flat array; a larger group becomes a Map so scans stay short. */
const SMALL_GROUP = 12;
const TWO_16 = 65536;
const DIRECTION_NAME = ['ingress', 'egress'] as const;

/** `protocol << 16 | port` then `endPort` then the entry, per entry; or by their joint code. */
type Group = Array<number | PolicyEntry> | Map<number, PolicyEntry>;

const jointCode = (head: number, endPort: number): number => head * TWO_16 + endPort;

export class RawGroups {
  /** By direction (0 ingress, 1 egress), then peer identity. */
  readonly #byDirection: [Map<number, Group>, Map<number, Group>] = [new Map(), new Map()];

  /** Sets the entry of `key` (valid: direction 0|1, 8-bit protocol, 16-bit ports). */
  set(direction: number, key: PolicyKey, entry: PolicyEntry): void {
    const groups = this.#byDirection[direction]!;
    const head = key.protocol * TWO_16 + key.port;
    const end = key.endPort ?? 0;
    const group = groups.get(key.identity);
    if (!group) {
      groups.set(key.identity, [head, end, entry]);
      return;
    }
    if (group instanceof Map) {
      group.set(jointCode(head, end), entry);
      return;
    }
    for (let i = 0; i < group.length; i += 3) {
      if (group[i] === head && group[i + 1] === end) {
        group[i + 2] = entry;
        return;
      }
    }
    if (group.length < SMALL_GROUP * 3) {
      group.push(head, end, entry);
      return;
    }
    const map = new Map<number, PolicyEntry>();
    for (let i = 0; i < group.length; i += 3) map.set(jointCode(group[i] as number, group[i + 1] as number), group[i + 2] as PolicyEntry);
    map.set(jointCode(head, end), entry);
    groups.set(key.identity, map);
  }

  /** Removes the entry of `key`; false when there was none. */
  delete(direction: number, key: PolicyKey): boolean {
    const groups = this.#byDirection[direction]!;
    const group = groups.get(key.identity);
    if (!group) return false;
    const head = key.protocol * TWO_16 + key.port;
    const end = key.endPort ?? 0;
    if (group instanceof Map) {
      if (!group.delete(jointCode(head, end))) return false;
      if (group.size === 0) groups.delete(key.identity);
      return true;
    }
    for (let i = 0; i < group.length; i += 3) {
      if (group[i] !== head || group[i + 1] !== end) continue;
      group.splice(i, 3);
      if (group.length === 0) groups.delete(key.identity);
      return true;
    }
    return false;
  }

  clear(): void {
    for (const groups of this.#byDirection) groups.clear();
  }

  /** The group's entries as keys again (what prefix derivation reads). */
  entries(direction: number, identity: number): Array<readonly [PolicyKey, PolicyEntry]> {
    const group = this.#byDirection[direction]!.get(identity);
    if (!group) return [];
    const dir = DIRECTION_NAME[direction]!;
    const key = (head: number, endPort: number): PolicyKey => ({ identity, direction: dir, protocol: Math.floor(head / TWO_16), port: head % TWO_16, endPort });
    const out: Array<readonly [PolicyKey, PolicyEntry]> = [];
    if (group instanceof Map) {
      for (const [code, entry] of group) out.push([key(Math.floor(code / TWO_16), code % TWO_16), entry]);
    } else {
      for (let i = 0; i < group.length; i += 3) out.push([key(group[i] as number, group[i + 1] as number), group[i + 2] as PolicyEntry]);
    }
    return out;
  }

  /** Every non-empty group as [direction, identity]. */
  *groups(): Generator<readonly [number, number]> {
    for (let direction = 0; direction < 2; direction++) for (const identity of this.#byDirection[direction]!.keys()) yield [direction, identity];
  }
}
