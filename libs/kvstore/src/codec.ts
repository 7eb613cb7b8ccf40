import * as zlib from 'node:zlib';
import { Encoder } from 'cbor-x';

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE) by table, for Node releases before `zlib.crc32` (20.15). */
export function tableCrc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) c = TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const crc32: (data: Uint8Array) => number = (zlib as { crc32?: (data: Uint8Array) => number }).crc32 ?? tableCrc32;

/** Plain CBOR (no cbor-x record extension), so the files stay readable by any CBOR decoder. */
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

export function encodeCbor(value: unknown): Buffer {
  return cbor.encode(value);
}

export function decodeCbor<T>(bytes: Uint8Array): T {
  return cbor.decode(bytes) as T;
}

/** Bytes before each log record: payload length (u32 BE) and CRC-32 of the payload (u32 BE). */
export const FRAME_HEADER = 8;
/** A length above this is treated as corruption rather than a huge record. */
export const MAX_RECORD = 64 * 1024 * 1024;

/** One log record framed as length + checksum + CBOR payload. */
export function frame(record: unknown): Buffer {
  const payload = encodeCbor(record);
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt32BE(crc32(payload), 4);
  payload.copy(out, FRAME_HEADER);
  return out;
}

/**
 * Decodes the records of a log image. Stops at the first torn or corrupt record and reports
 * the offset where the valid prefix ends, so the caller can cut the tail off.
 */
export function unframeAll<T>(image: Buffer, accept: (record: unknown) => boolean = () => true): { records: T[]; validLength: number; problem?: string } {
  const records: T[] = [];
  let offset = 0;
  while (offset < image.length) {
    if (image.length - offset < FRAME_HEADER) return { records, validLength: offset, problem: 'torn record header' };
    const length = image.readUInt32BE(offset);
    const checksum = image.readUInt32BE(offset + 4);
    if (length === 0 || length > MAX_RECORD) return { records, validLength: offset, problem: `implausible record length ${length}` };
    const end = offset + FRAME_HEADER + length;
    if (end > image.length) return { records, validLength: offset, problem: 'torn record payload' };
    const payload = image.subarray(offset + FRAME_HEADER, end);
    if (crc32(payload) !== checksum) return { records, validLength: offset, problem: 'checksum mismatch' };
    let record: unknown;
    try {
      record = decodeCbor<T>(payload);
    } catch (err) {
      return { records, validLength: offset, problem: `undecodable record: ${(err as Error).message}` };
    }
    // A checksummed record of the wrong shape was not written by this code: stop there too.
    if (!accept(record)) return { records, validLength: offset, problem: 'a record of unexpected content' };
    records.push(record as T);
    offset = end;
  }
  return { records, validLength: offset };
}
