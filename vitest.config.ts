import { defineConfig } from 'vitest/config';

// One run over the whole workspace: packages resolve each other's TypeScript sources
// through the "@cilia/source" export condition, so tests never wait for a build.
export default defineConfig({
  resolve: { conditions: ['@cilia/source'] },
  ssr: { resolve: { conditions: ['@cilia/source'], externalConditions: ['@cilia/source'] } },
  test: {
    include: ['{libs,plugins,apps,tools,test}/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', 'test/bench/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    env: { NX_DAEMON: 'false' },
  },
});
