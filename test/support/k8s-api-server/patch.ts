/** A patch that cannot be applied; the server answers 422 (or 400 when it does not parse). */
export class PatchError extends Error {}

type Json = unknown;
type JsonObject = Record<string, Json>;

function isObject(v: Json): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch (`application/merge-patch+json`). */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

function unescapePointer(part: string): string {
  return part.replace(/~1/g, '/').replace(/~0/g, '~');
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer ${JSON.stringify(path)}`);
  return path.slice(1).split('/').map(unescapePointer);
}

function parentOf(doc: Json, parts: string[], path: string): { parent: JsonObject | Json[]; key: string } {
  let at: Json = doc;
  for (const part of parts.slice(0, -1)) {
    if (Array.isArray(at)) at = at[Number(part)];
    else if (isObject(at)) at = at[part];
    else at = undefined;
    if (at === undefined) throw new PatchError(`doc is missing path: ${path}`);
  }
  if (!Array.isArray(at) && !isObject(at)) throw new PatchError(`doc is missing path: ${path}`);
  return { parent: at, key: parts.at(-1)! };
}

function getAt(doc: Json, path: string): Json {
  let at: Json = doc;
  for (const part of pointer(path)) {
    at = Array.isArray(at) ? at[Number(part)] : isObject(at) ? at[part] : undefined;
    if (at === undefined) throw new PatchError(`doc is missing path: ${path}`);
  }
  return at;
}

function removeAt(doc: Json, path: string): Json {
  const { parent, key } = parentOf(doc, pointer(path), path);
  if (Array.isArray(parent)) {
    const i = Number(key);
    if (!Number.isInteger(i) || i < 0 || i >= parent.length) throw new PatchError(`doc is missing path: ${path}`);
    return parent.splice(i, 1)[0];
  }
  if (!Object.hasOwn(parent, key)) throw new PatchError(`doc is missing path: ${path}`);
  const old = parent[key];
  delete parent[key];
  return old;
}

function addAt(doc: Json, path: string, value: Json, replace: boolean): Json {
  const parts = pointer(path);
  if (parts.length === 0) return value;
  const { parent, key } = parentOf(doc, parts, path);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(i) || i < 0 || i > parent.length || (replace && i >= parent.length)) throw new PatchError(`doc is missing path: ${path}`);
    parent.splice(i, replace ? 1 : 0, value);
  } else {
    if (replace && !Object.hasOwn(parent, key)) throw new PatchError(`doc is missing path: ${path}`);
    parent[key] = value;
  }
  return doc;
}

/** RFC 6902 JSON patch (`application/json-patch+json`). */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be an array of operations');
  let doc = structuredClone(target);
  for (const op of ops as JsonObject[]) {
    const path = op['path'];
    if (typeof path !== 'string') throw new PatchError('operation is missing "path"');
    switch (op['op']) {
      case 'add':
        doc = addAt(doc, path, structuredClone(op['value']), false);
        break;
      case 'replace':
        doc = addAt(doc, path, structuredClone(op['value']), true);
        break;
      case 'remove':
        removeAt(doc, path);
        break;
      case 'move': {
        const value = removeAt(doc, String(op['from']));
        doc = addAt(doc, path, value, false);
        break;
      }
      case 'copy':
        doc = addAt(doc, path, structuredClone(getAt(doc, String(op['from']))), false);
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(op['value'])) throw new PatchError(`testing value ${path} failed`);
        break;
      default:
        throw new PatchError(`unexpected operation ${JSON.stringify(op['op'])}`);
    }
  }
  return doc;
}

/**
 * Lists that a strategic merge patch merges by key (the `patchMergeKey` of the built-in types'
 * Go structs); every other list is replaced. `''` marks a list of scalars merged as a set.
 * Keyed by field name, which is what the built-in types this server knows need.
 */
const MERGE_KEYS: Readonly<Record<string, readonly string[]>> = {
  containers: ['name'],
  initContainers: ['name'],
  ephemeralContainers: ['name'],
  volumes: ['name'],
  volumeMounts: ['mountPath'],
  volumeDevices: ['devicePath'],
  env: ['name'],
  // Container ports merge by containerPort, Service ports by port.
  ports: ['containerPort', 'port'],
  imagePullSecrets: ['name'],
  hostAliases: ['ip'],
  conditions: ['type'],
  ownerReferences: ['uid'],
  finalizers: [''],
  topologySpreadConstraints: ['topologyKey'],
};

function mergeKeyOf(field: string, items: readonly Json[]): string | undefined {
  const keys = MERGE_KEYS[field];
  if (!keys) return undefined;
  if (keys[0] === '') return '';
  return keys.find((k) => items.some((i) => isObject(i) && i[k] !== undefined)) ?? keys[0];
}

function strategicList(field: string, original: Json, patch: Json[]): Json[] {
  const base = Array.isArray(original) ? original : [];
  const key = mergeKeyOf(field, [...base, ...patch]);
  if (key === undefined) return patch.filter((p) => !(isObject(p) && p['$patch'] !== undefined)).map((p) => structuredClone(p));
  if (key === '') return [...new Set([...base, ...patch])];
  if (patch.some((p) => isObject(p) && p['$patch'] === 'replace')) return patch.filter((p) => !(isObject(p) && p['$patch'] === 'replace'));
  const out = base.map((b) => structuredClone(b));
  for (const item of patch) {
    if (!isObject(item)) continue;
    const index = out.findIndex((o) => isObject(o) && o[key] === item[key]);
    if (item['$patch'] === 'delete') {
      if (index >= 0) out.splice(index, 1);
      continue;
    }
    if (index >= 0) out[index] = strategicMerge(out[index], item);
    else out.push(strategicMerge({}, item));
  }
  return out;
}

/**
 * A strategic merge patch (`application/strategic-merge-patch+json`) as kubectl sends them for
 * built-in kinds: maps merge, `null` deletes, the lists of {@link MERGE_KEYS} merge by key,
 * `$patch: replace|delete`, `$retainKeys` and `$deleteFromPrimitiveList/<field>` are honoured,
 * `$setElementOrder/<field>` is accepted (order is not re-applied).
 */
export function strategicMerge(original: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  if (patch['$patch'] === 'replace') {
    const { $patch: _, ...rest } = patch;
    return structuredClone(rest);
  }
  if (patch['$patch'] === 'delete') return undefined;
  let out: JsonObject = isObject(original) ? { ...original } : {};
  const retain = patch['$retainKeys'];
  for (const [field, value] of Object.entries(patch)) {
    if (field === '$patch' || field === '$retainKeys' || field.startsWith('$setElementOrder/')) continue;
    if (field.startsWith('$deleteFromPrimitiveList/')) {
      const name = field.slice('$deleteFromPrimitiveList/'.length);
      const drop = new Set(Array.isArray(value) ? value : []);
      if (Array.isArray(out[name])) out[name] = (out[name] as Json[]).filter((v) => !drop.has(v));
      continue;
    }
    if (value === null) delete out[field];
    else if (Array.isArray(value)) out[field] = strategicList(field, out[field], value);
    else if (isObject(value)) {
      const merged = strategicMerge(out[field], value);
      if (merged === undefined) delete out[field];
      else out[field] = merged;
    } else out[field] = value;
  }
  if (Array.isArray(retain)) out = Object.fromEntries(Object.entries(out).filter(([k]) => retain.includes(k)));
  return out;
}
