import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', cleanup: 'src/cleanup.ts', 'testing/index': 'src/testing/index.ts' },
  format: ['esm'],
  dts: true,
  // build-bpf runs first and writes dist/bpf/*.o (the base objects); cleaning must leave them alone.
  clean: ['!bpf/**'],
  sourcemap: true,
  target: 'node20',
});
