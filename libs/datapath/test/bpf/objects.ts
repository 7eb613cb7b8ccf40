// The base objects for the BPF unit tests: @cilia/datapath/testing, from source.
export * from '../../src/testing/index.js';
