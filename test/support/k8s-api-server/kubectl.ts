import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's kubectl (`kubernetes-client`), unpacked by the bootstrap (tools/bootstrap.mjs, UNPACKED_DEBIAN_PACKAGES). */
export const KUBECTL = '/var/cache/cilia/debian/kubernetes-client/usr/bin/kubectl';

export interface KubectlResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs kubectl against `kubeconfig` with `args`, `stdin` piped in (for `-f -`). Each run has a
 * discovery cache of its own, so a CRD created a moment ago is known to the next command.
 */
export function kubectl(kubeconfig: string, args: readonly string[], stdin?: string): Promise<KubectlResult> {
  const home = mkdtempSync(join(tmpdir(), 'cilia-kubectl-'));
  return new Promise<KubectlResult>((resolve, reject) => {
    const child = spawn(KUBECTL, ['--kubeconfig', kubeconfig, '--cache-dir', join(home, 'cache'), ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  }).finally(() => rmSync(home, { recursive: true, force: true }));
}
