import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: ['src/index.ts', 'src/main.ts'],
    format: ['esm'],
    // main.ts is the executable; only the library entry has a public type surface.
    dts: { entry: 'src/index.ts' },
    // main.js stands alone: one module to load when the bin shim runs it.
    splitting: false,
    clean: true,
    sourcemap: true,
    target: 'node20',
  },
  {
    // What launchers written by `cilia-cni install` require: CommonJS starts without Node's ES
    // module loader. Dependencies stay external and are loaded with import() when needed.
    entry: { 'cilia-cni': 'src/launch.ts' },
    format: ['cjs'],
    outExtension: () => ({ js: '.cjs' }),
    dts: false,
    clean: false,
    sourcemap: true,
    target: 'node20',
  },
]);
