import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { KubeObject, ResourceRef } from '@cilia/core';

/** One object a file contributed, as remembered. */
export interface CachedObject {
  readonly ref: ResourceRef;
  readonly object: KubeObject;
  readonly documentPath: string;
}

/** What each manifest file contributed at the last accepted reading, by relative path. */
export type AcceptedState = ReadonlyMap<string, readonly CachedObject[]>;

/**
 * The last accepted content of every manifest file, kept in the state directory so that
 * "an invalid file changes nothing" holds across agent restarts too: a file broken while the
 * agent was down keeps contributing what it did before, instead of vanishing at start.
 */
export class AcceptedStateFile {
  #last = '';

  constructor(readonly path: string) {}

  /** The remembered state; empty when there is none or it cannot be read (then `problem` says why). */
  async load(): Promise<{ state: AcceptedState; problem?: string }> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: new Map() };
      return { state: new Map(), problem: (err as Error).message };
    }
    try {
      const parsed = JSON.parse(text) as { version?: unknown; files?: Record<string, CachedObject[]> };
      if (parsed.version !== 1 || typeof parsed.files !== 'object' || parsed.files === null) throw new Error('expected { version: 1, files: {...} }');
      this.#last = text;
      return { state: new Map(Object.entries(parsed.files)) };
    } catch (err) {
      return { state: new Map(), problem: `${this.path}: ${(err as Error).message}` };
    }
  }

  /** Writes the state if it differs from what is on disk (written aside, then renamed). */
  async save(state: AcceptedState): Promise<void> {
    const files = Object.fromEntries([...state].sort(([a], [b]) => a.localeCompare(b)));
    const text = `${JSON.stringify({ version: 1, files })}\n`;
    if (text === this.#last) return;
    await mkdir(dirname(this.path), { recursive: true });
    const temp = `${this.path}.${process.pid}.tmp`;
    await writeFile(temp, text);
    await rename(temp, this.path);
    this.#last = text;
  }
}
