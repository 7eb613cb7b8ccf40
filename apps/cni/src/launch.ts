import { main } from './run.js';

// The CommonJS entry (dist/cilia-cni.cjs) that launchers written by `install` require: it
// starts without Node's ES module loader, a few milliseconds on every CNI invocation.
void main(process.argv.slice(2), __filename);
