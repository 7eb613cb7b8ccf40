import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/process/main.ts'],
  format: ['esm'],
  dts: true,
  // build-bpf runs first and writes dist/bpf/*.o; cleaning must leave those objects alone.
  clean: ['!bpf/**'],
  sourcemap: true,
  target: 'node20',
});
