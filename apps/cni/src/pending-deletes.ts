import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AgentClient } from './agent-client.js';
import type { Attachment } from './config.js';

/**
 * DELs that could not reach the agent. The runtime is told DEL succeeded (so pod teardown is
 * not wedged while the agent restarts); the attachment is written here and deleted by the next
 * invocation that does reach the agent.
 */
export class PendingDeletes {
  constructor(readonly dir: string) {}

  /** The default directory: next to the agent's socket. */
  static forSocket(socket: string): PendingDeletes {
    return new PendingDeletes(join(dirname(socket), 'cni-pending-deletes'));
  }

  async add(attachment: Attachment): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const record = { containerId: attachment.containerId, ifName: attachment.ifName, deferredAt: new Date().toISOString() };
    const file = join(this.dir, fileName(attachment));
    // Written aside and renamed, so a concurrent flush never reads half a record.
    await writeFile(`${file}.${process.pid}.tmp`, `${JSON.stringify(record)}\n`);
    await rename(`${file}.${process.pid}.tmp`, file);
  }

  /** Forgets a deferred delete (the attachment was deleted by other means). */
  async remove(attachment: Attachment): Promise<void> {
    await rm(join(this.dir, fileName(attachment)), { force: true });
  }

  /** Carries out every deferred delete; returns the attachments deleted. Stops at the first failure. */
  async flush(agent: AgentClient): Promise<Attachment[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const done: Attachment[] = [];
    for (const name of names.filter((n) => n.endsWith('.json'))) {
      const file = join(this.dir, name);
      let record: Attachment;
      try {
        record = JSON.parse(await readFile(file, 'utf8')) as Attachment;
      } catch {
        // Another plugin process finished it first, or the record is torn: nothing to replay.
        await rm(file, { force: true });
        continue;
      }
      await agent.deleteAttachment(record.containerId, record.ifName);
      await rm(file, { force: true });
      done.push({ containerId: record.containerId, ifName: record.ifName });
    }
    return done;
  }
}

function fileName(a: Attachment): string {
  return `${a.containerId}@${encodeURIComponent(a.ifName)}.json`;
}
