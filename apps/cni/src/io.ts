import { readFileSync, writeSync } from 'node:fs';

// Synchronous reads and writes of fd 0/1: a runtime hands the plugin blocking pipes, and this
// skips setting up process.stdin/stdout streams (milliseconds on every invocation). A
// non-blocking descriptor (EAGAIN) falls back to the streams.

/** All of stdin as text ('' when it is a terminal). */
export async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  try {
    return readFileSync(0, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Writes `text` to stdout completely, then calls `done`. */
export function writeStdout(text: string, done: () => void): void {
  const bytes = Buffer.from(text);
  let offset = 0;
  try {
    while (offset < bytes.length) offset += writeSync(1, bytes, offset);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
    process.stdout.write(bytes.subarray(offset), () => done());
    return;
  }
  done();
}
