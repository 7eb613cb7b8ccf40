import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/** One system call as strace -f -ttt -T printed it (unfinished/resumed halves joined). */
interface Syscall {
  readonly pid: string;
  readonly name: string;
  readonly args: string;
  readonly result: string;
  readonly start: number;
  readonly end: number;
}

/** Parses `strace -f -ttt -T` output. */
function parseStrace(text: string): Syscall[] {
  const out: Syscall[] = [];
  const open = new Map<string, { name: string; args: string; start: number }>();
  for (const line of text.split('\n')) {
    let m = /^(\d+) +(\d+\.\d+) (\w+)\((.*) <unfinished \.\.\.>$/.exec(line);
    if (m) {
      open.set(`${m[1]}:${m[3]}`, { name: m[3]!, args: m[4]!, start: Number(m[2]) });
      continue;
    }
    m = /^(\d+) +(\d+\.\d+) <\.\.\. (\w+) resumed>(.*)\) += (.*) <(\d+\.\d+)>$/.exec(line);
    if (m) {
      const first = open.get(`${m[1]}:${m[3]}`);
      if (!first) continue;
      open.delete(`${m[1]}:${m[3]}`);
      out.push({ pid: m[1]!, name: m[3]!, args: first.args + m[4]!, result: m[5]!, start: first.start, end: first.start + Number(m[6]) });
      continue;
    }
    m = /^(\d+) +(\d+\.\d+) (\w+)\((.*)\) += (.*) <(\d+\.\d+)>$/.exec(line);
    if (m) out.push({ pid: m[1]!, name: m[3]!, args: m[4]!, result: m[5]!, start: Number(m[2]), end: Number(m[2]) + Number(m[6]) });
  }
  return out.sort((a, b) => a.start - b.start);
}

/**
 * Every acknowledgement (a write of `ACK <key>` to stdout) must come after a write of that key's
 * record to the log and a sync of the log that began after that write ended and ended before the
 * acknowledgement. Returns the keys for which that does not hold.
 */
function unsyncedAcks(calls: readonly Syscall[], logPath: string): string[] {
  const logFds = new Set(calls.filter((c) => c.name === 'openat' && c.args.includes(`"${logPath}"`)).map((c) => c.result.split(' ')[0]!));
  const fdOf = (c: Syscall) => c.args.split(',')[0]!.trim();
  const logWrites = calls.filter((c) => /^(write|pwrite64|writev)$/.test(c.name) && logFds.has(fdOf(c)));
  const syncs = calls.filter((c) => /^(fdatasync|fsync)$/.test(c.name) && logFds.has(fdOf(c)) && c.result.startsWith('0'));
  const bad: string[] = [];
  for (const ack of calls.filter((c) => c.name === 'write' && fdOf(c) === '1' && c.args.includes('"ACK '))) {
    const key = /"ACK ([^\\"]+)/.exec(ack.args)![1]!;
    const written = logWrites.find((w) => w.args.includes(key) && w.end <= ack.start);
    const synced = written && syncs.some((s) => s.start >= written.end && s.end <= ack.start);
    if (!synced) bad.push(key);
  }
  return bad;
}

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const WRITER = `
import { writeSync } from 'node:fs';
const { EmbeddedKvStore } = await import(process.argv[2]);
const store = await EmbeddedKvStore.open(process.argv[3], { compactionThreshold: 1_000_000 });
const value = new TextEncoder().encode('v');
for (let i = 0; i < 20; i++) {
  const key = 'seq-key-' + String(i).padStart(3, '0');
  await store.put(key, value);
  writeSync(1, 'ACK ' + key + '\\n');
}
// Concurrent writes: group commit puts several records behind one sync.
await Promise.all(Array.from({ length: 40 }, (_, i) => {
  const key = 'grp-key-' + String(i).padStart(3, '0');
  return store.put(key, value).then(() => writeSync(1, 'ACK ' + key + '\\n'));
}));
await store.delete('seq-key-000').then(() => writeSync(1, 'ACK seq-key-000\\n'));
await store.close();
`;

describe('EmbeddedKvStore durability, traced with strace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-kv-strace-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('syncs the log after every acknowledged write\'s record and before its acknowledgement', () => {
    const script = join(dir, 'writer.mjs');
    const trace = join(dir, 'trace');
    const store = join(dir, 'store');
    writeFileSync(script, WRITER);
    const r = spawnSync('strace', ['-f', '-ttt', '-T', '-s', '4096', '-e', 'trace=openat,write,pwrite64,writev,fdatasync,fsync', '-o', trace, process.execPath, script, DIST, store], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(61);
    const calls = parseStrace(readFileSync(trace, 'utf8'));
    const logPath = join(store, 'log.cbor');
    expect(calls.filter((c) => c.name === 'openat' && c.args.includes(`"${logPath}"`)).length).toBeGreaterThan(0);
    expect(calls.filter((c) => c.name === 'write' && c.args.startsWith('1, "ACK '))).toHaveLength(61);
    expect(unsyncedAcks(calls, logPath)).toEqual([]);
    // Group commit: fewer syncs than acknowledged writes, yet each one covered.
    const syncs = calls.filter((c) => c.name === 'fdatasync').length;
    expect(syncs).toBeLessThan(61);
  });

  it('the checker catches an acknowledgement before the sync, and one whose record was never written', () => {
    const trace = [
      '10 1.000000 openat(AT_FDCWD, "/s/log.cbor", O_RDWR|O_CREAT|O_APPEND, 0644) = 21 <0.000010>',
      '11 1.100000 write(21, "\\x01k1\\x02", 4) = 4 <0.000010>',
      '10 1.200000 write(1, "ACK k1\\n", 7) = 7 <0.000010>',
      '11 1.300000 fdatasync(21 <unfinished ...>',
      '11 1.400000 <... fdatasync resumed>) = 0 <0.100000>',
      '10 1.500000 write(1, "ACK k2\\n", 7) = 7 <0.000010>',
      '11 1.600000 write(21, "\\x01k3\\x02", 4) = 4 <0.000010>',
      '11 1.700000 fdatasync(21) = 0 <0.000100>',
      '10 1.800000 write(1, "ACK k3\\n", 7) = 7 <0.000010>',
    ].join('\n');
    expect(unsyncedAcks(parseStrace(trace), '/s/log.cbor')).toEqual(['k1', 'k2']);
  });
});
