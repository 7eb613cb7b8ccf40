import { join } from 'node:path';
import { BpfMap, codec, type Codec } from '@cilia/bpf';
import { datapathMaps as m } from '@cilia/datapath';

/** `BPF_F_INNER_MAP`: inner maps of one outer map may differ in size. */
const BPF_F_INNER_MAP = 1 << 12;

export type LbServicesMap = BpfMap<m.Lb4KeyValue, m.Lb4ServiceValue>;
export type LbBackendsMap = BpfMap<number, m.Lb4BackendValue>;

/** The load balancer's pinned maps (bpf/include/cilia/lb.h), opened from the pin root. */
export interface LbMaps {
  readonly services: LbServicesMap;
  readonly backends: LbBackendsMap;
  readonly reverseNat: BpfMap<number, ReturnType<typeof m.Lb4ReverseNat.decode>>;
  readonly affinityMatch: BpfMap<ReturnType<typeof m.LbAffinityMatch.decode>, number>;
  /** Outer map: frontend id → inner map (an fd to write, the inner map's id when read). */
  readonly maglev: BpfMap<number, number>;
  readonly flows: BpfMap<m.CtKeyValue, ReturnType<typeof m.Lb4Flow.decode>>;
  readonly affinity: BpfMap<ReturnType<typeof m.LbAffinityKey.decode>, ReturnType<typeof m.LbAffinityValue.decode>>;
  readonly skReverse: BpfMap<ReturnType<typeof m.Lb4SkKey.decode>, ReturnType<typeof m.Lb4SkValue.decode>>;
  close(): void;
}

/**
 * Opens the LB maps pinned under `pinRoot` (made by the plugin's objects when the agent loads
 * them). Throws naming the map when one is missing.
 */
export function openLbMaps(pinRoot: string): LbMaps {
  const opened: Array<BpfMap<never, never>> = [];
  const open = <K, V>(name: string, key: Codec<K>, value: Codec<V>): BpfMap<K, V> => {
    try {
      const map = BpfMap.openPinned(join(pinRoot, name), { key, value });
      opened.push(map as never);
      return map;
    } catch (err) {
      for (const o of opened) o.close();
      throw new Error(`load balancer map ${name} is not pinned under ${pinRoot} (are the plugin's objects loaded?): ${(err as Error).message}`, { cause: err });
    }
  };
  const maps = {
    services: open(m.MapName.lbServices, m.Lb4Key, m.Lb4Service),
    backends: open(m.MapName.lbBackends, codec.u32, m.Lb4Backend),
    reverseNat: open(m.MapName.lbReverseNat, codec.u16, m.Lb4ReverseNat),
    affinityMatch: open(m.MapName.lbAffinityMatch, m.LbAffinityMatch, codec.u32),
    maglev: open(m.MapName.lbMaglev, codec.u32, codec.u32),
    flows: open(m.MapName.lbFlows, m.CtKey, m.Lb4Flow),
    affinity: open(m.MapName.lbAffinity, m.LbAffinityKey, m.LbAffinityValue),
    skReverse: open(m.MapName.lbSkReverse, m.Lb4SkKey, m.Lb4SkValue),
  };
  return {
    ...maps,
    close() {
      for (const o of opened) o.close();
    },
  };
}

/**
 * A Maglev table as an inner map for `cilia_lb4_maglev`: an array of backend ids, written in
 * one batch. The caller stores its fd in the outer map and closes the handle.
 */
export function maglevInnerMap(table: Uint32Array): BpfMap<number, number> {
  const inner = BpfMap.create(
    { type: 'array', name: 'cilia_lb_maglev', keySize: 4, valueSize: 4, maxEntries: table.length, flags: BPF_F_INNER_MAP },
    { key: codec.u32, value: codec.u32 },
  );
  try {
    const keys = Buffer.alloc(table.length * 4);
    const values = Buffer.alloc(table.length * 4);
    for (let i = 0; i < table.length; i++) {
      keys.writeUInt32LE(i, i * 4);
      values.writeUInt32LE(table[i]!, i * 4);
    }
    inner.updateBatchRaw(keys, values, table.length);
    return inner;
  } catch (err) {
    inner.close();
    throw err;
  }
}
