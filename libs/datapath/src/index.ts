/** @cilia/datapath — the core datapath: base programs, pinned maps, ipcache, endpoints. */
export {};
