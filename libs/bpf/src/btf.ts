// Struct layouts read from an object's BTF, to prove TS codecs match the C definitions.
import { fileURLToPath } from 'node:url';
import type { StructCodec } from './codec.js';
import { wrap } from './errors.js';
import { native } from './native.js';

export interface StructLayout {
  readonly size: number;
  readonly members: ReadonlyArray<{
    readonly name: string;
    readonly offset: number;
    readonly size: number;
    readonly bitOffset: number;
    readonly bitSize: number;
  }>;
}

/** The layout of `struct <name>` (or union) in the object's BTF, undefined when absent. */
export function btfStructLayout(object: string | URL, name: string): StructLayout | undefined {
  const path = object instanceof URL ? fileURLToPath(object) : object;
  return wrap(() => native().btfStructLayout(path, name)) ?? undefined;
}

/** The constants of `enum <name>` in the object's BTF (name → value), undefined when absent. */
export function btfEnum(object: string | URL, name: string): Record<string, number> | undefined {
  const path = object instanceof URL ? fileURLToPath(object) : object;
  const values = wrap(() => native().btfEnum(path, name));
  return values ? Object.fromEntries(values.map((v) => [v.name, v.value])) : undefined;
}

/**
 * Differences between a struct codec and the C struct in an object's BTF: size, and each
 * member's presence, offset and size (padding fields of the codec are not compared).
 * An empty list means they agree.
 */
export function compareLayout(codec: StructCodec<unknown>, object: string | URL): string[] {
  const layout = btfStructLayout(object, codec.cName);
  if (!layout) return [`struct ${codec.cName} is not in the BTF of ${String(object)}`];
  const problems: string[] = [];
  if (layout.size !== codec.size) problems.push(`struct ${codec.cName}: size ${codec.size} in TS, ${layout.size} in C`);
  const byName = new Map(layout.members.map((m) => [m.name, m]));
  const seen = new Set<string>();
  for (const field of codec.fields) {
    if (field.padding) continue;
    const member = byName.get(field.cName);
    seen.add(field.cName);
    if (!member) {
      problems.push(`struct ${codec.cName}: TS field '${field.name}' has no C member '${field.cName}'`);
      continue;
    }
    if (member.bitSize !== 0) problems.push(`struct ${codec.cName}.${field.cName}: bitfields are not supported`);
    if (member.offset !== field.offset) {
      problems.push(`struct ${codec.cName}.${field.cName}: offset ${field.offset} in TS, ${member.offset} in C`);
    }
    if (member.size !== field.size) {
      problems.push(`struct ${codec.cName}.${field.cName}: size ${field.size} in TS, ${member.size} in C`);
    }
  }
  for (const member of layout.members) {
    if (!seen.has(member.name) && member.name !== '' && !/^(pad|__pad|_pad|reserved)/.test(member.name)) {
      problems.push(`struct ${codec.cName}: C member '${member.name}' has no TS field`);
    }
  }
  return problems;
}
