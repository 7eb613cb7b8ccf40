// Frames into a file tshark reads, so that a standard decoder judges what the programs produce.
import { readFileSync, writeFileSync } from 'node:fs';

/** Writes frames as a classic pcap file (Ethernet link type). */
export function writePcap(path: string, frames: readonly Buffer[]): void {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  const records = frames.map((f) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  writeFileSync(path, Buffer.concat([header, ...records]));
}

/** A frame read back from a capture: its first `data.length` bytes, and its length on the wire. */
export interface CapturedFrame {
  readonly data: Buffer;
  readonly length: number;
}

/**
 * Reads a classic little-endian pcap file (this module's, or tshark's `-F pcap`): for frames a
 * decoder will not take apart, e.g. BIG TCP's over 64 KiB whose outer lengths are 0.
 */
export function readPcap(path: string): CapturedFrame[] {
  const file = readFileSync(path);
  const magic = file.readUInt32LE(0);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error(`${path}: not a little-endian classic pcap file (magic ${magic.toString(16)})`);
  const frames: CapturedFrame[] = [];
  for (let at = 24; at + 16 <= file.length; ) {
    const captured = file.readUInt32LE(at + 8);
    frames.push({ data: file.subarray(at + 16, at + 16 + captured), length: file.readUInt32LE(at + 12) });
    at += 16 + captured;
  }
  return frames;
}
