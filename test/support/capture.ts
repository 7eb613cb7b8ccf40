import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';

/**
 * Records what `filter` matches on interface `iface` of network namespace `netns` with tshark
 * while `traffic` runs, and hands the pcap file to `read` (it is removed afterwards).
 * `options` go to tshark before `-w` (e.g. `-F pcap -s 128`).
 */
export async function capturePcap<T>(
  netns: string,
  iface: string,
  filter: string,
  traffic: () => Promise<void>,
  read: (pcap: string) => T,
  options: readonly string[] = [],
): Promise<T> {
  const pcap = `/tmp/cilia-capture-${process.pid}-${randomBytes(3).toString('hex')}.pcap`;
  const child = spawn('ip', ['netns', 'exec', netns, 'tshark', '-q', '-i', iface, '-f', filter, ...options, '-w', pcap, '-a', 'duration:60'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const closed = new Promise((r) => child.once('close', r));
  try {
    try {
      const deadline = Date.now() + 20_000;
      while (!stderr.includes('Capturing on')) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`tshark did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      // dumpcap says "Capturing on" a moment before its filter is attached.
      await new Promise((r) => setTimeout(r, 1000));
      await traffic();
      // Give the last frames time to be written.
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      child.kill('SIGINT');
      await closed;
    }
    return read(pcap);
  } finally {
    rmSync(pcap, { force: true });
  }
}

/** tshark's `fields` of each frame of a pcap file (`decode`: e.g. `udp.port==8472,vxlan`). */
export function pcapFields(pcap: string, fields: readonly string[], decode?: string): string[][] {
  const args = ['-r', pcap, ...(decode ? ['-d', decode] : []), '-T', 'fields', '-E', 'separator=;', ...fields.flatMap((f) => ['-e', f])];
  const out = spawnSync('tshark', args, { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`tshark -r failed: ${out.stderr}`);
  return out.stdout.split('\n').filter(Boolean).map((l) => l.split(';'));
}
