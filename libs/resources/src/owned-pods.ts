import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * The pods whose endpoints the controller manages (`namespace/name`), kept across restarts
 * so that cleaning up after a restart touches only endpoints it made, never one made with
 * the CLI or the API.
 */
export interface OwnedPods {
  load(): Promise<ReadonlySet<string>>;
  save(pods: ReadonlySet<string>): Promise<void>;
}

/** {@link OwnedPods} in a JSON file, replaced atomically (written aside, then renamed). */
export class OwnedPodsFile implements OwnedPods {
  constructor(readonly path: string) {}

  async load(): Promise<ReadonlySet<string>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
      throw err;
    }
    const parsed = JSON.parse(text) as { pods?: unknown };
    if (!Array.isArray(parsed.pods) || parsed.pods.some((p) => typeof p !== 'string')) {
      throw new Error(`${this.path}: pods: expected a list of "namespace/name" strings`);
    }
    return new Set(parsed.pods as string[]);
  }

  async save(pods: ReadonlySet<string>): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const temp = `${this.path}.${process.pid}.tmp`;
    await writeFile(temp, `${JSON.stringify({ pods: [...pods].sort() }, null, 2)}\n`);
    await rename(temp, this.path);
  }
}

/** {@link OwnedPods} in memory (tests). */
export class OwnedPodsMemory implements OwnedPods {
  pods = new Set<string>();
  async load(): Promise<ReadonlySet<string>> {
    return new Set(this.pods);
  }
  async save(pods: ReadonlySet<string>): Promise<void> {
    this.pods = new Set(pods);
  }
}
