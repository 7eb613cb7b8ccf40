import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { REDACTED, type Logger, type SecretPath } from '@cilia/core';
import { pino } from 'pino';

/**
 * The root logger: JSON lines to standard output or to `file`, each component a child with
 * `subsys`. Secret config fields are censored wherever a log call passes them: the whole config
 * (`config.<section>.…`), a section at the top of the record, or a section's own keys (a plugin
 * logging its `auth` block).
 */
export function createLogger(level: string, file: string, secrets: readonly SecretPath[] = []): Logger & { flush(): void } {
  if (file !== '') mkdirSync(dirname(file), { recursive: true });
  const destination = pino.destination({ dest: file === '' ? 1 : file, sync: true });
  // No subsys on the root: each component's child adds exactly one.
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: redactPaths(secrets), censor: REDACTED } },
    destination,
  ) as unknown as Logger & { flush(): void };
}

/** pino `redact` paths for the config's secret paths (the section key first). */
export function redactPaths(secrets: readonly SecretPath[]): string[] {
  const out = new Set<string>();
  for (const path of secrets) {
    out.add(render(path));
    out.add(render(['config', ...path]));
    if (path.length > 1) {
      out.add(render(path.slice(1)));
      out.add(render(['config', ...path.slice(1)]));
    }
  }
  return [...out];
}

function render(path: readonly string[]): string {
  return path.map((k, i) => (k === '*' ? (i === 0 ? '*' : '.*') : /^[A-Za-z_$][\w$]*$/.test(k) ? `${i === 0 ? '' : '.'}${k}` : `[${JSON.stringify(k)}]`)).join('');
}
