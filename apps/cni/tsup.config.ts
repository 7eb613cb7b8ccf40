import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/main.ts'],
  format: ['esm'],
  // main.ts is the executable; only the library entry has a public type surface.
  dts: { entry: 'src/index.ts' },
  // main.js stands alone: one module to load when a runtime execs the plugin.
  splitting: false,
  clean: true,
  sourcemap: true,
  target: 'node20',
});
