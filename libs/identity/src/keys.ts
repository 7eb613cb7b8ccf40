/** Cilium's identity key layout below a prefix (default `cilium/state/identities/v1/`). */
export class IdentityKeys {
  constructor(readonly prefix: string) {
    if (!prefix.endsWith('/')) throw new TypeError(`prefix: must end with "/", got ${JSON.stringify(prefix)}`);
  }
  /** `id/` — every master key. */
  get ids(): string {
    return `${this.prefix}id/`;
  }
  /** `id/<id>` → the sorted label list; created once, create-only. */
  id(id: number): string {
    return `${this.prefix}id/${id}`;
  }
  /** `value/` — every node's reference. */
  get values(): string {
    return `${this.prefix}value/`;
  }
  /** `value/<labels>/` — the nodes holding this label set. */
  valuesOf(labelsKey: string): string {
    return `${this.prefix}value/${labelsKey}/`;
  }
  /** `value/<labels>/<node>` → id, under the node's lease. */
  value(labelsKey: string, node: string): string {
    return `${this.prefix}value/${labelsKey}/${node}`;
  }
  /** The lock serializing allocation and collection of one label set across agents. */
  lock(labelsKey: string): string {
    return `${this.prefix}locks/${labelsKey}`;
  }
  /** The id of an `id/<id>` key, or undefined. */
  parseId(key: string): number | undefined {
    if (!key.startsWith(this.ids)) return undefined;
    const rest = key.slice(this.ids.length);
    return /^\d{1,10}$/.test(rest) ? Number(rest) : undefined;
  }
  /** Label list and node of a `value/<labels>/<node>` key, or undefined. */
  parseValue(key: string): { labelsKey: string; node: string } | undefined {
    if (!key.startsWith(this.values)) return undefined;
    const rest = key.slice(this.values.length);
    const slash = rest.lastIndexOf('/');
    if (slash < 0) return undefined;
    return { labelsKey: rest.slice(0, slash), node: rest.slice(slash + 1) };
  }
}
