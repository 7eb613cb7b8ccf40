// Helpers for this package's tests: unique names and a scratch area that removes every
// namespace and handle it made, even when a test fails half-way.
import { randomBytes } from 'node:crypto';
import type { NetlinkHandle } from './handle.js';
import { createNetns, deleteNetns, openNetns } from './netns.js';

/** prefix + 6 random hex digits; short enough for an interface name when prefix ≤ 9 chars. */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(3).toString('hex')}`;
}

/** A random 10.x.y.0/24 network (x in 200..249) for one test's addresses. */
export function randomNet(): { prefix: string; host: (n: number) => string } {
  const [a, b] = randomBytes(2);
  const prefix = `10.${200 + (a! % 50)}.${b!}`;
  return { prefix, host: (n) => `${prefix}.${n}` };
}

export class Scratch {
  private readonly namespaces: string[] = [];
  private readonly handles: NetlinkHandle[] = [];

  /** Creates a uniquely named namespace and opens a handle in it. */
  async netns(prefix = 'tnl'): Promise<{ name: string; nl: NetlinkHandle }> {
    const name = uniqueName(`cilia-test-${prefix}-`);
    await createNetns(name);
    this.namespaces.push(name);
    const nl = await openNetns(name);
    this.handles.push(nl);
    return { name, nl };
  }

  /** Records a namespace created elsewhere in the test, for removal. */
  track(name: string): void {
    this.namespaces.push(name);
  }

  async cleanup(): Promise<void> {
    for (const h of this.handles.splice(0)) await h.close().catch(() => undefined);
    for (const n of this.namespaces.splice(0)) await deleteNetns(n).catch(() => undefined);
  }
}
