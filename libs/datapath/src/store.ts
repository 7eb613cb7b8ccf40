import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Endpoint } from '@cilia/core';

/** What the agent remembers about an endpoint beyond its API view. */
export interface EndpointRecord {
  readonly endpoint: Endpoint;
  /** The agent created the netns (and deletes it with the endpoint). */
  readonly createdNetns: boolean;
  /** Pod-side ifindex (inside the pod netns). */
  readonly podIfindex?: number;
  /** The lease's pool, for the ipcache and routes. */
  readonly ipv4Pool?: string;
  /** When the endpoint was created (ISO time). */
  readonly createdAt: string;
}

const FILE = /^(\d+)\.json$/;

/**
 * Endpoint state in `<stateDir>/endpoints/<id>.json`, one file per endpoint, each written
 * atomically (temp file, fsync, rename) so a crash leaves either the old or the new file.
 */
export class EndpointStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'endpoints');
  }

  /** Every stored record; a file that cannot be read or parsed is reported (with its id), not fatal. */
  readAll(): { records: EndpointRecord[]; problems: { id: number; message: string }[] } {
    const records: EndpointRecord[] = [];
    const problems: { id: number; message: string }[] = [];
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records, problems };
      throw err;
    }
    for (const name of names) {
      const m = FILE.exec(name);
      if (!m) continue;
      const path = join(this.dir, name);
      try {
        const record = JSON.parse(readFileSync(path, 'utf8')) as EndpointRecord;
        if (record?.endpoint?.id !== Number(m[1])) throw new Error(`endpoint.id does not match the file name`);
        records.push(record);
      } catch (err) {
        problems.push({ id: Number(m[1]), message: `${path}: ${(err as Error).message}` });
      }
    }
    records.sort((a, b) => a.endpoint.id - b.endpoint.id);
    return { records, problems };
  }

  write(record: EndpointRecord): void {
    mkdirSync(this.dir, { recursive: true });
    const path = this.#path(record.endpoint.id);
    const tmp = `${path}.${process.pid}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(record, null, 2) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  }

  remove(id: number): void {
    rmSync(this.#path(id), { force: true });
  }

  #path(id: number): string {
    return join(this.dir, `${id}.json`);
  }
}
