import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './agent.js';

/** What one `cilia` run gave. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Several `cilia` runs in one Node process — the built @cilia/cli's `run`, as its bin calls it —
 * so a test pays for one process start, not one per command. `netns`: run inside
 * /run/netns/NAME (through nsenter, keeping the machine's bpffs and /run/netns).
 */
export async function ciliaRuns(runs: readonly (readonly string[])[], options: { netns?: string } = {}): Promise<CliResult[]> {
  const script = `
    const { run } = await import(${JSON.stringify(join(REPO, 'apps/cli/dist/index.js'))});
    const results = [];
    for (const argv of JSON.parse(process.argv[1])) {
      const out = { stdout: '', stderr: '' };
      const io = { stdout: { write: (t) => (out.stdout += t) }, stderr: { write: (t) => (out.stderr += t) }, env: {} };
      results.push({ code: await run(argv, io), ...out });
    }
    process.stdout.write(JSON.stringify(results));`;
  const node = [process.execPath, '--input-type=module', '-e', script, JSON.stringify(runs)];
  const [cmd, ...args] = options.netns ? ['nsenter', `--net=/run/netns/${options.netns}`, ...node] : node;
  const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  let errors = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (errors += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  if (code !== 0) throw new Error(`cilia runs failed (exit ${code}): ${errors}`);
  return JSON.parse(text) as CliResult[];
}
