// @cilia/plugin-sdk: what a Cilia plugin needs to build and check its BPF objects.
export { inspectBpfObject } from './elf.mjs';
export { compareLayout, objectLayout } from './layout.mjs';
export { CLANG_FLAGS, clangArgs } from './build.mjs';
export { headerRoot, layoutFile, referenceLayout, sdkName } from './sdk.mjs';
