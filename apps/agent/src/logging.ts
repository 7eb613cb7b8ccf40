import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '@cilia/core';
import { pino } from 'pino';

/** The root logger: JSON lines to standard output or to `file`, each component a child with `subsys`. */
export function createLogger(level: string, file: string): Logger & { flush(): void } {
  if (file !== '') mkdirSync(dirname(file), { recursive: true });
  const destination = pino.destination({ dest: file === '' ? 1 : file, sync: true });
  // No subsys on the root: each component's child adds exactly one.
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination) as unknown as Logger & {
    flush(): void;
  };
}
