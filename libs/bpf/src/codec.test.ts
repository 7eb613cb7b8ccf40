import { describe, expect, it } from 'vitest';
import { array, be16, be32, bytes, i32, ipv4, pad, struct, u16, u32, u64, u8 } from './codec.js';

describe('codecs', () => {
  it('lays out structs with C alignment and zeroes holes', () => {
    const S = struct('s', { a: u8, b: u32, c: u16, d: u64 });
    expect(S.size).toBe(24);
    expect(S.fields.map((f) => [f.name, f.offset, f.size])).toEqual([
      ['a', 0, 1],
      ['b', 4, 4],
      ['c', 8, 2],
      ['d', 16, 8],
    ]);
    const buf = Buffer.alloc(24, 0xff);
    S.encode({ a: 1, b: 2, c: 3, d: 4n }, buf, 0);
    expect([...buf.subarray(0, 12)]).toEqual([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
    expect(buf.subarray(12, 16).every((x) => x === 0)).toBe(true);
    expect(S.decode(buf, 0)).toEqual({ a: 1, b: 2, c: 3, d: 4n });
  });

  it('nests structs, arrays, network-order and address fields, at an offset', () => {
    const Inner = struct('inner', { port: be16, proto: u8, pad: pad(1) });
    const Outer = struct('outer', { addr: ipv4, inner: Inner, ids: array(i32, 2), tag: bytes(3), wide: be32 });
    const buf = Buffer.alloc(Outer.size + 5);
    const value = { addr: '10.1.2.3', inner: { port: 443, proto: 6 }, ids: [-1, 7], tag: Uint8Array.from([1, 2, 3]), wide: 0x01020304 };
    Outer.encode(value, buf, 5);
    expect([...buf.subarray(5, 9)]).toEqual([10, 1, 2, 3]);
    expect([...buf.subarray(9, 11)]).toEqual([0x01, 0xbb]);
    expect(Outer.decode(buf, 5)).toEqual(value);
    expect(Outer.fields.find((f) => f.name === 'wide')?.offset).toBe(20);
    expect(Outer.size).toBe(24);
  });

  it('names the field of a bad value', () => {
    const S = struct('policy_key', { identity: u32, port: u16, proto: u8, dir: u8 });
    const buf = Buffer.alloc(S.size);
    expect(() => S.encode({ identity: 1, port: 70000, proto: 6, dir: 0 }, buf, 0)).toThrow(/^policy_key\.port: /);
    expect(() => S.encode({ identity: 1, port: 1, proto: 6 } as never, buf, 0)).toThrow('policy_key.dir is missing');
    const A = struct('a', { addr: ipv4 });
    expect(() => A.encode({ addr: '1.2.3' }, Buffer.alloc(4), 0)).toThrow("a.addr: not an IPv4 address: '1.2.3'");
  });

  it('maps camelCase fields to snake_case C members unless told otherwise', () => {
    const S = struct('x', { proxyPort: u16, tsNs: u64, odd: u8 }, { odd: 'weird_name' });
    expect(S.fields.map((f) => f.cName)).toEqual(['proxy_port', 'ts_ns', 'weird_name']);
  });
});
