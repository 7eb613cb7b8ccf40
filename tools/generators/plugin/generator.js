// `nx g @cilia/tools:plugin NAME`: creates plugins/NAME, the npm package @cilia/plugin-NAME.
//
// Plain ESM JavaScript on purpose: Nx loads a generator with require(), which handles an ES
// module without a TypeScript loader (swc-node / ts-node are not installed here).

import { generateFiles, joinPathFragments, logger, names, readJson } from '@nx/devkit';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
// Top-level keys of the agent config that are not plugin sections; a plugin's config key is
// its name, so these would clash with them.
const RESERVED = new Set(['agent', 'plugins', 'extends']);
// A generated plugin's own devDependencies, when the workspace's package.json does not name them.
const DEV_DEFAULTS = { '@types/node': '^20.19.0', tsup: '^8.5.0', typescript: '~5.9', vitest: '^4.1.0' };

/**
 * Checks a plugin name and returns the reason it is refused, or `undefined` when it is fine.
 * @param {unknown} name
 * @returns {string | undefined}
 */
export function nameProblem(name) {
  if (typeof name !== 'string' || name === '') return 'name is required';
  if (!NAME.test(name)) {
    return `name ${JSON.stringify(name)} must be lowercase letters and digits in dash-separated words, starting with a letter (e.g. bandwidth-edt)`;
  }
  if (name.length > 50) return `name ${JSON.stringify(name)} is longer than 50 characters`;
  if (name.startsWith('plugin-')) return `name ${JSON.stringify(name)} must not start with "plugin-": the package is already called @cilia/plugin-<name>`;
  if (RESERVED.has(name)) return `name ${JSON.stringify(name)} is reserved: it is a top-level key of the agent config`;
  if (name.startsWith('agent-')) return `name ${JSON.stringify(name)} must not start with "agent-": its metrics would take the agent's own prefix cilia_agent_`;
  return undefined;
}

/**
 * @param {import('@nx/devkit').Tree} tree
 * @param {{ name: string, description?: string }} options
 */
export default async function pluginGenerator(tree, options) {
  const problem = nameProblem(options.name);
  if (problem) throw new Error(`cilia plugin generator: ${problem}`);
  const { name } = options;
  const directory = `plugins/${name}`;
  if (tree.exists(directory)) {
    throw new Error(`cilia plugin generator: ${directory} already exists; pick another name or remove that directory first`);
  }
  const packageName = `@cilia/plugin-${name}`;
  const core = readJson(tree, 'libs/core/package.json');
  const sdk = readJson(tree, 'libs/plugin-sdk/package.json');
  const rootDev = readJson(tree, 'package.json').devDependencies ?? {};

  generateFiles(tree, joinPathFragments(dirname(fileURLToPath(import.meta.url)), 'files'), directory, {
    name,
    packageName,
    className: names(name).className,
    // C identifiers cannot hold dashes.
    cName: name.replaceAll('-', '_'),
    // One line: it lands in package.json, a string literal, a doc comment and the README.
    description: (options.description ?? `Cilia plugin ${name}`).replace(/\s+/g, ' ').trim(),
    // The plugin API it is written against: the current major of @cilia/core.
    coreMajor: core.version.split('.')[0],
    sdkRange: `^${sdk.version}`,
    // What it needs to build and test on its own, outside this repository: the versions this
    // repository uses, so that inside it npm install adds nothing.
    devVersions: Object.fromEntries(Object.entries(DEV_DEFAULTS).map(([pkg, range]) => [pkg, rootDev[pkg] ?? range])),
  });

  return () => {
    logger.info(`Created ${directory} (${packageName}).`);
    logger.info('Next: run `npm install` at the repository root to link the new workspace package,');
    logger.info(`then \`npx nx run-many -t lint typecheck build -p ${packageName}\` and list "${packageName}" under plugins: in an agent config.`);
  };
}
