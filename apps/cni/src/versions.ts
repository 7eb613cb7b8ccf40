import { CniError, ErrorCode } from './errors.js';

/** The CNI operations (`CNI_COMMAND` values). */
export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';

/** Every `CNI_COMMAND` this plugin knows. */
export const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];

/** Specification versions this plugin speaks, oldest first (reported by VERSION). */
export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;

/** The newest version this plugin speaks: used when the input names none it understands. */
export const LATEST_VERSION = SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.length - 1]!;

// The version each operation first appeared in (CHECK in 0.4.0; STATUS and GC in 1.1.0).
const INTRODUCED: Record<CniCommand, string> = {
  ADD: '0.1.0',
  DEL: '0.1.0',
  VERSION: '0.2.0',
  CHECK: '0.4.0',
  STATUS: '1.1.0',
  GC: '1.1.0',
};

/** Whether `version` is one of {@link SUPPORTED_VERSIONS}. */
export function isSupportedVersion(version: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(version);
}

/**
 * Refuses (code 1) a config version this plugin does not speak, or one that predates `command`
 * (a 1.0.0 config cannot ask for STATUS).
 */
export function assertVersionFor(command: CniCommand, version: string): void {
  if (!isSupportedVersion(version)) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `incompatible CNI version: cniVersion ${JSON.stringify(version)} is not supported (supported: ${SUPPORTED_VERSIONS.join(', ')})`,
    );
  }
  if (compareVersions(version, INTRODUCED[command]) < 0) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `incompatible CNI version: ${command} is defined from CNI ${INTRODUCED[command]}, but the network config has cniVersion ${version}`,
    );
  }
}

/** Numeric comparison of dotted versions (`0.4.0` < `1.0.0` < `1.1.0`). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
