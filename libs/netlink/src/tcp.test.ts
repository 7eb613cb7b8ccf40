// Real sockets: a transparent listener wrapped by net.Server, a marked client wrapped by
// net.Socket, the mark seen by the kernel (ss), and bad options refused before any syscall.
import { spawnSync } from 'node:child_process';
import { createServer, Socket, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { NetlinkInputError } from './errors.js';
import { openTcpSocket } from './tcp.js';

describe('openTcpSocket', () => {
  it('gives a transparent listener to net.Server and a marked client to net.Socket; the mark is on the connection', async () => {
    const server = createServer((s) => s.end('hi'));
    await new Promise<void>((r) => server.listen({ fd: openTcpSocket({ transparent: true, listen: { address: '127.0.0.1', port: 0 } }) }, r));
    const { port } = server.address() as AddressInfo;
    expect(port).toBeGreaterThan(0);
    try {
      const client = new Socket({ fd: openTcpSocket({ mark: 0x12340b00 }), readable: true, writable: true });
      const text = await new Promise<string>((resolve, reject) => {
        let got = '';
        client.on('error', reject);
        client.on('data', (d: Buffer) => (got += d.toString()));
        client.on('end', () => resolve(got));
        client.connect(port, '127.0.0.1', () => {
          const ss = spawnSync('ss', ['-tenH', 'state', 'all', `dport = :${port}`], { encoding: 'utf8' }).stdout;
          if (!ss.includes('fwmark:0x12340b00')) reject(new Error(`no mark on the connection: ${ss}`));
        });
      });
      expect(text).toBe('hi');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('refuses a bad mark or port naming the field, and reports a failing bind with errno', () => {
    expect(() => openTcpSocket({ mark: -1 })).toThrow(NetlinkInputError);
    expect(() => openTcpSocket({ mark: -1 })).toThrow(/mark/);
    expect(() => openTcpSocket({ listen: { address: '127.0.0.1', port: 70000 } })).toThrow(/listen\.port/);
    // 192.0.2.1 is not this host's: without IP_TRANSPARENT the bind fails.
    expect(() => openTcpSocket({ listen: { address: '192.0.2.1', port: 0 } })).toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL', syscall: expect.stringMatching(/^bind/) }));
  });
});
