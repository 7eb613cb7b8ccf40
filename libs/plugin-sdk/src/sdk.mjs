// Where this copy of the SDK keeps what its build made: the headers (dist/bpf) and the
// reference layout of the ABI types they define (dist/layout.json).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const { name, version } = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));

/** The directory with `include/cilia/*.h` and `lib/*.h`: the include path of every object. */
export const headerRoot = join(packageDir, 'dist', 'bpf');
/** The reference layout of every `cilia_*` type in those headers. */
export const layoutFile = join(packageDir, 'dist', 'layout.json');
/** `@cilia/plugin-sdk 0.1.0`, for messages. */
export const sdkName = `${name} ${version}`;

/**
 * The reference layout, read from this package. Throws, saying what to do, when the package
 * was not built (a checkout of the Cilia repository before `nx run @cilia/plugin-sdk:build`).
 * @returns {{ types: import('./layout.mjs').AbiLayout, name: string }}
 */
export function referenceLayout() {
  if (!existsSync(join(headerRoot, 'include', 'cilia')) || !existsSync(layoutFile)) {
    throw new Error(
      `${sdkName} has no headers or reference layout in ${join(packageDir, 'dist')}: this copy was not built ` +
        '(in the Cilia repository: npx nx run @cilia/plugin-sdk:build; the npm package ships them built)',
    );
  }
  const { types } = JSON.parse(readFileSync(layoutFile, 'utf8'));
  return { types, name: sdkName };
}
