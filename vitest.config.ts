import { defineConfig } from 'vitest/config';

// Tests that run Nx, generators, npm pack or the bootstrap change the workspace itself (new
// projects under plugins/, rebuilt dist/): they run after everything else, one file at a time.
const WORKSPACE_TESTS = [
  'test/e2e/generator.test.ts',
  'test/e2e/module-boundaries.test.ts',
  'test/e2e/third-party-plugin.test.ts',
  'test/e2e/plugin-sdk.test.ts',
  'test/e2e/bootstrap.test.ts',
];

// One run over the whole workspace: packages resolve each other's TypeScript sources
// through the "@cilia/source" export condition, so tests never wait for a build.
export default defineConfig({
  resolve: { conditions: ['@cilia/source'] },
  ssr: { resolve: { conditions: ['@cilia/source'], externalConditions: ['@cilia/source'] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    env: { NX_DAEMON: 'false' },
    reporters: ['default', './tools/vitest-summary-reporter.mjs'],
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['{libs,plugins,apps,tools,test}/**/*.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**', 'test/bench/**', ...WORKSPACE_TESTS],
        },
      },
      {
        extends: true,
        test: {
          name: 'workspace',
          include: WORKSPACE_TESTS,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
