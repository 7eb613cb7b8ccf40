// compareLayout and btfEnum on the test objects: each test codec against the BTF of a compiled
// object, so a C change the TS side missed fails here. (The datapath's own codecs and numbers
// are checked the same way by libs/datapath/test/bpf/layout.test.ts.)
import { describe, expect, it } from 'vitest';
import { btfEnum, btfStructLayout, compareLayout } from './btf.js';
import { struct, u16, u32, u64n, u8, type StructCodec } from './codec.js';
import { DenyKey, LpmV4Key, TestAction, TestEvent, TestEventHeader, TestKey, TestValue } from './testing/fixtures.js';
import { compileBpf } from './testing/index.js';

const checks: Array<[string, StructCodec<unknown>, string]> = [
  ['test: struct cilia_event_hdr as used by a producer', TestEventHeader as StructCodec<unknown>, 'ringbuf'],
  ['test: struct test_event', TestEvent as StructCodec<unknown>, 'ringbuf'],
  ['test: struct test_key', TestKey as StructCodec<unknown>, 'maps'],
  ['test: struct test_value', TestValue as StructCodec<unknown>, 'maps'],
  ['test: struct lpm_v4_key', LpmV4Key as StructCodec<unknown>, 'maps'],
  ['test: struct deny_key', DenyKey as StructCodec<unknown>, 'packet'],
];

describe('codec layouts match BTF', () => {
  it.each(checks)('%s', (_label, codec, object) => {
    expect(compareLayout(codec, compileBpf(object))).toEqual([]);
  });

  it('reads an enum anchored in BTF', () => {
    const maps = compileBpf('maps');
    const fromTs = Object.fromEntries(Object.entries(TestAction).map(([k, v]) => [`TEST_ACTION_${k}`, v]));
    expect(btfEnum(maps, 'test_action')).toEqual(fromTs);
    expect(btfEnum(maps, 'no_such_enum')).toBeUndefined();
  });

  it('reads member offsets and sizes from BTF', () => {
    const layout = btfStructLayout(compileBpf('ringbuf'), 'cilia_event_hdr');
    expect(layout).toEqual({
      size: 16,
      members: [
        { name: 'type', offset: 0, size: 1, bitOffset: 0, bitSize: 0 },
        { name: 'subtype', offset: 1, size: 1, bitOffset: 8, bitSize: 0 },
        { name: 'source', offset: 2, size: 2, bitOffset: 16, bitSize: 0 },
        { name: 'ifindex', offset: 4, size: 4, bitOffset: 32, bitSize: 0 },
        { name: 'ts_ns', offset: 8, size: 8, bitOffset: 64, bitSize: 0 },
      ],
    });
    expect(btfStructLayout(compileBpf('ringbuf'), 'no_such_struct')).toBeUndefined();
  });

  it('catches a codec that drifted from C', () => {
    // As if someone widened `source` in TS only, and forgot `ts_ns`.
    const drifted = struct('cilia_event_hdr', { type: u8, subtype: u8, source: u32, ifindex: u32 });
    const problems = compareLayout(drifted as StructCodec<unknown>, compileBpf('ringbuf'));
    expect(problems).toEqual([
      'struct cilia_event_hdr: size 12 in TS, 16 in C',
      'struct cilia_event_hdr.source: offset 4 in TS, 2 in C',
      'struct cilia_event_hdr.source: size 4 in TS, 2 in C',
      'struct cilia_event_hdr.ifindex: offset 8 in TS, 4 in C',
      "struct cilia_event_hdr: C member 'ts_ns' has no TS field",
    ]);
    const renamed = struct('test_key', { address: u32, port: u16, proto: u8, dir: u8 });
    expect(compareLayout(renamed as StructCodec<unknown>, compileBpf('maps'))).toContain(
      "struct test_key: TS field 'address' has no C member 'address'",
    );
    expect(compareLayout(struct('nope', { a: u64n }) as StructCodec<unknown>, compileBpf('maps'))[0]).toMatch(
      /struct nope is not in the BTF/,
    );
  });
});
