import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../src/config.js';
import { parseCniArgs, parseEnvironment } from '../src/environment.js';
import { CniError } from '../src/errors.js';
import { parseResponse } from '../src/http.js';

// The runtime hands the plugin stdin and CNI_* variables, the agent its HTTP answers: whatever
// they hold, the plugin answers with a CNI error (code and message), never a crash.
function cniErrorOnly(run: () => unknown): void {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(CniError);
  }
}

const VALID = {
  cniVersion: '1.0.0',
  name: 'cilia',
  type: 'cilia-cni',
  socket: '/var/run/cilia/cilia.sock',
  timeoutMs: 5000,
  labels: { app: 'web' },
  args: { cni: { labels: { tier: 'front' } } },
  dns: { nameservers: ['10.0.0.10'] },
  prevResult: { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/x' }], ips: [{ address: '10.0.0.5/24', interface: 0 }] },
  'cni.dev/valid-attachments': [{ containerID: 'abc', ifname: 'eth0' }],
};

/** A valid config with one value, somewhere, replaced by anything JSON can hold. */
const mutated = fc
  .tuple(fc.constantFrom(...pathsOf(VALID)), fc.jsonValue())
  .map(([path, value]) => {
    const copy = structuredClone(VALID) as Record<string, unknown>;
    let at: Record<string, unknown> = copy;
    for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
    at[path.at(-1)!] = value;
    return JSON.stringify(copy);
  });

function pathsOf(value: unknown, prefix: string[] = []): string[][] {
  if (typeof value !== 'object' || value === null) return [prefix];
  const children = Object.entries(value).flatMap(([k, v]) => pathsOf(v, [...prefix, k]));
  return prefix.length === 0 ? children : [prefix, ...children];
}

describe('cilia-cni input, fuzzed', () => {
  it('stdin: any text, any JSON, and valid configs with one field replaced give a config or a CniError', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), mutated), (text) => cniErrorOnly(() => parseNetworkConfig(text))), { numRuns: 3000 });
  });

  it('environment: any CNI_* values give an environment or a CniError naming the variable', () => {
    const env = fc.record(
      {
        CNI_COMMAND: fc.oneof(fc.constantFrom('ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'), fc.string()),
        CNI_CONTAINERID: fc.string(),
        CNI_NETNS: fc.oneof(fc.string(), fc.string().map((s) => `/${s}`)),
        CNI_IFNAME: fc.string({ maxLength: 20 }),
        CNI_ARGS: fc.string(),
        CNI_PATH: fc.string(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(env, (e) =>
        cniErrorOnly(() => {
          try {
            parseEnvironment(e);
          } catch (err) {
            expect((err as CniError).message).toMatch(/CNI_[A-Z]+/);
            throw err;
          }
        }),
      ),
      { numRuns: 3000 },
    );
    fc.assert(fc.property(fc.string(), (text) => cniErrorOnly(() => parseCniArgs(text))), { numRuns: 1000 });
  });

  it('the agent\'s HTTP answer: any bytes give a response or an Error saying what was wrong, never a hang', () => {
    const head = fc.constantFrom('HTTP/1.1 200 OK\r\n', 'HTTP/1.0 503 Busy\r\n', 'HTTP/1.1 20 x\r\n', '');
    const headers = fc.array(fc.oneof(fc.constantFrom('Content-Length: 5', 'Content-Length: -1', 'Content-Length: 99999999999', 'Transfer-Encoding: chunked', 'content-length: x'), fc.string()), { maxLength: 4 });
    const body = fc.oneof(fc.string(), fc.constantFrom('5\r\nhello\r\n0\r\n\r\n', 'fffffffffff\r\nx', 'z\r\n', '0\r\n', '3;x\r\nabc\r\n'));
    const response = fc.tuple(head, headers, body).map(([h, hs, b]) => Buffer.from(`${h}${hs.join('\r\n')}\r\n\r\n${b}`, 'latin1'));
    fc.assert(
      fc.property(fc.oneof(response, fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a))), (raw) => {
        try {
          const r = parseResponse(raw);
          expect(r.status).toBeGreaterThanOrEqual(100);
        } catch (err) {
          expect((err as Error).constructor).toBe(Error);
          expect((err as Error).message).toMatch(/agent|HTTP|chunk/);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
