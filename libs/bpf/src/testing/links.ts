// Links in the test's own network namespace (BPF_PROG_TEST_RUN runs in it, so
// the FIB lookups of the programs see these), removed again even when a test fails.
import { execFileSync } from 'node:child_process';

const sh = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

let counter = 0;

/** A veth pair; `name` is the side the tests use. */
export interface TestLink {
  readonly name: string;
  readonly ifindex: number;
  readonly mac: string;
}

/** Creates veth pairs and routes, and takes them all away in `remove()`. */
export class TestNetwork {
  readonly #links: string[] = [];
  readonly #routes: string[][] = [];
  readonly #netns: string[] = [];

  /** A veth pair whose peer (`eth0`, with `peerAddress`) lives in a namespace of its own. */
  linkToNetns(address: string, peerAddress: string): TestLink & { netns: string } {
    const link = this.link({ address });
    const netns = `${link.name}ns`;
    sh('netns', 'add', netns);
    this.#netns.push(netns);
    sh('link', 'set', `${link.name}p`, 'netns', netns);
    sh('-n', netns, 'link', 'set', `${link.name}p`, 'name', 'eth0');
    sh('-n', netns, 'addr', 'add', peerAddress, 'dev', 'eth0');
    sh('-n', netns, 'link', 'set', 'eth0', 'up');
    sh('-n', netns, 'link', 'set', 'lo', 'up');
    sh('link', 'set', link.name, 'up');
    return { ...link, netns };
  }

  /** A veth pair, both ends up, with `address` (a.b.c.d/len) on `name` when given. */
  link(options: { address?: string; forwarding?: boolean } = {}): TestLink {
    const name = `tn${process.pid % 100000}x${counter++}`;
    sh('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
    this.#links.push(name);
    if (options.address) sh('addr', 'add', options.address, 'dev', name);
    sh('link', 'set', `${name}p`, 'up');
    sh('link', 'set', name, 'up');
    // The programs route like a router on the pod's veth: the FIB refuses without forwarding.
    if (options.forwarding) execFileSync('sysctl', ['-q', '-w', `net.ipv4.conf.${name}.forwarding=1`]);
    const [info] = JSON.parse(sh('-j', 'link', 'show', name)) as Array<{ ifindex: number; address: string }>;
    return { name, ifindex: info!.ifindex, mac: info!.address };
  }

  /** A permanent neighbour entry: the FIB then knows the next hop's MAC. */
  neighbour(link: TestLink, ip: string, mac: string): void {
    sh('neigh', 'replace', ip, 'lladdr', mac, 'dev', link.name, 'nud', 'permanent');
  }

  /** `ip route add <spec>`, deleted in `remove()`. */
  route(...spec: string[]): void {
    sh('route', 'add', ...spec);
    this.#routes.push(spec);
  }

  remove(): void {
    for (const spec of this.#routes.splice(0)) {
      try {
        sh('route', 'del', ...spec);
      } catch {
        // gone with its link
      }
    }
    for (const netns of this.#netns.splice(0)) {
      try {
        sh('netns', 'del', netns);
      } catch {
        // already gone
      }
    }
    for (const name of this.#links.splice(0)) {
      try {
        sh('link', 'del', name);
      } catch {
        // already gone
      }
    }
  }
}
