import { fileURLToPath } from 'node:url';
import { main } from './run.js';

// The ES module entry (bin/cilia-cni.js). Launchers written by `install` load the CommonJS
// bundle built beside it from launch.ts.
await main(process.argv.slice(2), fileURLToPath(new URL('./cilia-cni.cjs', import.meta.url)));
