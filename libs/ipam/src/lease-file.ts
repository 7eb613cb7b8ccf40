import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { IpamLease } from '@cilia/core';

interface LeaseFileV1 {
  readonly version: 1;
  readonly leases: readonly IpamLease[];
}

/**
 * Leases on disk. Writes go to a temporary file that is fsynced and renamed over the old one,
 * so a crash leaves either the old or the new file, never a torn one.
 */
export class LeaseFile {
  constructor(readonly path: string) {}

  /** The stored leases; none if the file does not exist. A damaged file is an error, never "no leases". */
  read(): IpamLease[] {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    let parsed: LeaseFileV1;
    try {
      parsed = JSON.parse(text) as LeaseFileV1;
    } catch (err) {
      throw new Error(`IPAM lease file ${this.path} is damaged (${(err as Error).message}); refusing to start without knowing which addresses are in use`);
    }
    if (parsed?.version !== 1 || !Array.isArray(parsed.leases)) {
      throw new Error(`IPAM lease file ${this.path} has an unknown format (version ${JSON.stringify(parsed?.version)})`);
    }
    return [...parsed.leases];
  }

  write(leases: readonly IpamLease[]): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify({ version: 1, leases } satisfies LeaseFileV1, null, 1));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    const dir = openSync(dirname(this.path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
}
