import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { frame, tableCrc32, unframeAll } from './codec.js';

describe('log record framing', () => {
  it('computes the same CRC-32 by table as zlib', () => {
    const zlibCrc = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
    expect(zlibCrc, 'this Node has zlib.crc32 to compare against').toBeTypeOf('function');
    for (let i = 0; i < 64; i++) {
      const data = randomBytes(i * 37);
      expect(tableCrc32(data)).toBe(zlibCrc!(data));
    }
    expect(tableCrc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('round-trips records and reports where a damaged tail begins', () => {
    const records = [{ op: 'put', key: '/a', value: new Uint8Array([1, 2, 3]) }, { op: 'del', keys: ['/a'] }];
    const image = Buffer.concat(records.map((r) => frame(r)));
    const whole = unframeAll<Record<string, unknown>>(image);
    expect(whole.problem).toBeUndefined();
    expect(whole.validLength).toBe(image.length);
    expect(whole.records[1]).toEqual({ op: 'del', keys: ['/a'] });
    const firstLength = frame(records[0]).length;
    expect(unframeAll(image.subarray(0, image.length - 1))).toMatchObject({ validLength: firstLength, problem: 'torn record payload' });
    expect(unframeAll(image.subarray(0, firstLength + 3))).toMatchObject({ validLength: firstLength, problem: 'torn record header' });
    const flipped = Buffer.from(image);
    flipped.writeUInt8(flipped.readUInt8(firstLength + 9) ^ 1, firstLength + 9);
    expect(unframeAll(flipped)).toMatchObject({ validLength: firstLength, problem: 'checksum mismatch' });
    const zeros = Buffer.concat([image.subarray(0, firstLength), Buffer.alloc(16)]);
    expect(unframeAll(zeros)).toMatchObject({ validLength: firstLength, problem: 'implausible record length 0' });
  });
});
