import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** `<kind>/<namespace>/<name>`; cluster-wide kinds have an empty namespace. */
export type PolicyDocumentKey = string;

const CLUSTER_WIDE = new Set(['CiliumClusterwideNetworkPolicy']);

/**
 * The key under which the repository stores a document, or undefined when the document has no
 * kind or name (the parser refuses those anyway). A namespaced policy without a namespace lands
 * in `default`, as kubectl would put it.
 */
export function documentKey(document: unknown): PolicyDocumentKey | undefined {
  if (typeof document !== 'object' || document === null) return undefined;
  const { kind, metadata } = document as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  if (typeof kind !== 'string' || typeof metadata?.name !== 'string') return undefined;
  const namespace = CLUSTER_WIDE.has(kind) ? '' : typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : 'default';
  return `${kind}/${namespace}/${metadata.name}`;
}

/** The key of a stored rule as the repository lists it. */
export function ruleKey(rule: { kind: string; namespace?: string; name: string }): PolicyDocumentKey {
  return `${rule.kind}/${rule.namespace ?? ''}/${rule.name}`;
}

/**
 * Policies imported through the API, kept in `<stateDir>/policies.json` so they survive a
 * restart (manifest policies need no copy: the directory is read again). Every change is
 * written aside, synced and renamed, so a crash leaves the old or the new file, never half.
 */
export class PolicyStateFile {
  readonly #documents = new Map<PolicyDocumentKey, unknown>();
  #writing: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  /**
   * Reads the file. A missing file is an empty store; an unreadable one is reported as
   * `problem` and the store starts empty (the file itself is left alone until the next write).
   */
  async load(): Promise<{ documents: unknown[]; problem?: string }> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { documents: [] };
      return { documents: [], problem: `${this.path}: ${(err as Error).message}` };
    }
    try {
      const parsed = JSON.parse(text) as { version?: unknown; documents?: unknown };
      if (parsed?.version !== 1 || !Array.isArray(parsed.documents)) throw new Error('expected { "version": 1, "documents": [...] }');
      for (const [i, doc] of parsed.documents.entries()) {
        const key = documentKey(doc);
        if (key === undefined) throw new Error(`documents[${i}]: expected a policy with kind and metadata.name`);
        this.#documents.set(key, doc);
      }
      return { documents: [...this.#documents.values()] };
    } catch (err) {
      this.#documents.clear();
      // Set aside, not overwritten by the next import: whoever fixes it can still read it.
      const aside = `${this.path}.unreadable-${Date.now()}`;
      const moved = await rename(this.path, aside).then(
        () => `; moved to ${aside}`,
        () => '',
      );
      return { documents: [], problem: `${this.path}: ${(err as Error).message}${moved}` };
    }
  }

  /** The stored documents, in the order they were first imported. */
  documents(): unknown[] {
    return [...this.#documents.values()];
  }

  /** Remembers documents (replacing any with the same key) and writes the file. */
  put(documents: readonly unknown[]): Promise<void> {
    for (const doc of documents) {
      const key = documentKey(doc);
      if (key !== undefined) this.#documents.set(key, doc);
    }
    return this.#save();
  }

  /** Forgets every document whose key `keep` refuses, and writes the file if that changed it. */
  retain(keep: (key: PolicyDocumentKey) => boolean): Promise<void> {
    let changed = false;
    for (const key of [...this.#documents.keys()]) {
      if (!keep(key)) {
        this.#documents.delete(key);
        changed = true;
      }
    }
    return changed ? this.#save() : this.#writing;
  }

  #save(): Promise<void> {
    const text = `${JSON.stringify({ version: 1, documents: [...this.#documents.values()] })}\n`;
    // Writes are chained so an older snapshot can never be renamed over a newer one.
    this.#writing = this.#writing.catch(() => undefined).then(() => writeAtomically(this.path, text));
    return this.#writing;
  }
}

async function writeAtomically(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  const file = await open(temp, 'w', 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
}
