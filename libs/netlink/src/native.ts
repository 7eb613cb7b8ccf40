import { createRequire } from 'node:module';

/** The addon's surface (native/*.cc); everything above it is TypeScript. */
export interface NativeAddon {
  openSocket(netnsPath: string | null): Promise<number>;
  closeSocket(fd: number): void;
  /** Sends one request and resolves with its reply messages (ACK/DONE excluded), 4-byte padded. */
  transact(fd: number, request: Uint8Array, seq: number): Promise<Buffer>;
  createNetns(dir: string, name: string): Promise<string>;
  deleteNetns(path: string): Promise<void>;
  netnsCookie(netnsPath: string | null): Promise<number>;
  readSysctl(path: string, netnsPath: string | null): Promise<string>;
  writeSysctl(path: string, value: string, netnsPath: string | null): Promise<void>;
  openTcpSocket(transparent: boolean, mark: number, listenAddress: string | null, listenPort: number, backlog: number): number;
}

let cached: NativeAddon | undefined;

/** The addon, loaded on first use so that importing the package never fails on its own. */
export function native(): NativeAddon {
  if (cached) return cached;
  // src/ and dist/ both sit one level below the package root, beside build/.
  const require = createRequire(import.meta.url);
  try {
    cached = require('../build/Release/cilia_netlink.node') as NativeAddon;
  } catch (err) {
    throw new Error(
      `@cilia/netlink: native addon not built (${(err as Error).message}); run \`npx nx run @cilia/netlink:build-addon\``,
      { cause: err },
    );
  }
  return cached;
}
