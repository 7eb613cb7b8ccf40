import { existsSync, lstatSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { detachTc, detachXdp, listPrograms, queryTc, queryXdp, type TcDirection, type XdpMode } from '@cilia/bpf';
import { deleteNetns, openNetlink, type Link } from '@cilia/netlink';
import { EndpointStore } from './store.js';

/** Where an agent keeps what {@link cleanupNode} removes (its `agent.*` keys). */
export interface CleanupOptions {
  /** `agent.stateDir`. */
  readonly stateDir: string;
  /** `agent.bpfRoot`. */
  readonly bpfRoot: string;
  /** Only say what would be removed. */
  readonly dryRun?: boolean;
}

/** One thing the cleanup removes (or, in a dry run, would remove). */
export interface CleanupItem {
  readonly kind: 'tc-program' | 'xdp-program' | 'link' | 'netns' | 'pins' | 'state';
  /** A device, namespace or path. */
  readonly name: string;
  readonly detail: string;
}

/** What {@link cleanupNode} did: each item removed, and each it could not remove with why. */
export interface CleanupReport {
  readonly removed: readonly CleanupItem[];
  readonly failed: ReadonlyArray<{ readonly item: CleanupItem; readonly error: string }>;
}

/** Host-side veths of endpoints: `lxc` + 12 hex digits (naming.ts). */
const ENDPOINT_VETH = /^lxc[0-9a-f]{12}$/;
/** Devices the overlay plugins create (`cilia_vxlan`, `cilia_geneve` by default). */
const OVERLAY_KINDS = new Set(['vxlan', 'geneve']);
/** Every Cilia program's name starts so (bpf/ and the plugins' bpf/). */
const PROGRAM_PREFIX = 'cil_';
/** What the agent's default plugins keep in the state directory besides its top-level files. */
const STATE_DIRS = ['endpoints', 'ipam', 'kvstore', 'resources'];

/**
 * Removes what an agent left on this node, as `cilium-dbg cleanup` does, in the network
 * namespace the process runs in: Cilia's tc and XDP programs detached from every device; the
 * endpoints' host veths (their pod side and /32 routes go with them) and the overlay devices
 * deleted; the network namespaces the agent created for endpoints (as its state directory
 * records them) deleted; every pin under `bpfRoot` removed (which releases the maps, the slot
 * programs and the pinned cgroup links); the state directory's files and the default plugins'
 * directories removed. Another agent's state directory nested in this one (a lab node's) is
 * left alone. Running it again finds nothing: it is idempotent.
 */
export async function cleanupNode(options: CleanupOptions): Promise<CleanupReport> {
  const plan: Array<{ item: CleanupItem; act: () => Promise<void> | void }> = [];
  const records = new EndpointStore(options.stateDir).readAll().records;
  const recorded = new Set(records.map((r) => r.endpoint.hostInterface));
  const names = new Map(listPrograms().map((p) => [p.id, p.name]));
  const ours = (id: number) => id !== 0 && (names.get(id)?.startsWith(PROGRAM_PREFIX) ?? false);

  const nl = await openNetlink();
  try {
    for (const link of await nl.listLinks()) {
      const tc = (['ingress', 'egress'] as TcDirection[]).filter((direction) => ours(queryTc({ interface: link.index, direction })));
      const xdpIds = queryXdp(link.index);
      const xdp = (['generic', 'native'] as XdpMode[]).filter((mode) => ours(xdpIds[mode]));
      if (createdByAgent(link, recorded, tc.length + xdp.length > 0)) {
        const on = tc.length ? `, its ${tc.join(' and ')} programs with it` : '';
        plan.push({ item: { kind: 'link', name: link.name, detail: `${link.kind ?? 'device'}${on}` }, act: () => nl.deleteLink(link.index) });
        continue;
      }
      for (const direction of tc) {
        const prog = names.get(queryTc({ interface: link.index, direction }));
        plan.push({ item: { kind: 'tc-program', name: link.name, detail: `tc ${direction} ${prog}` }, act: () => void detachTc({ interface: link.index, direction }) });
      }
      for (const mode of xdp) {
        plan.push({ item: { kind: 'xdp-program', name: link.name, detail: `xdp (${mode}) ${names.get(xdpIds[mode])}` }, act: () => detachXdp({ interface: link.index, mode }) });
      }
    }
    for (const r of records) {
      if (!r.createdNetns || !existsSync(r.endpoint.netns)) continue;
      const name = basename(r.endpoint.netns);
      const detail = `endpoint ${r.endpoint.id} (${r.endpoint.namespace}/${r.endpoint.name})`;
      plan.push({ item: { kind: 'netns', name, detail }, act: () => (dirname(r.endpoint.netns) === '/run/netns' ? deleteNetns(name) : rmSync(r.endpoint.netns)) });
    }
    if (existsSync(options.bpfRoot)) {
      plan.push({ item: { kind: 'pins', name: options.bpfRoot, detail: `${countFiles(options.bpfRoot)} pinned maps, programs and links` }, act: () => rmSync(options.bpfRoot, { recursive: true, force: true }) });
    }
    for (const path of stateEntries(options.stateDir)) {
      plan.push({ item: { kind: 'state', name: path, detail: lstatSync(path).isDirectory() ? 'directory' : 'file' }, act: () => rmSync(path, { recursive: true, force: true }) });
    }
    if (options.dryRun) return { removed: plan.map((p) => p.item), failed: [] };
    const removed: CleanupItem[] = [];
    const failed: Array<{ item: CleanupItem; error: string }> = [];
    for (const { item, act } of plan) {
      try {
        await act();
        removed.push(item);
      } catch (err) {
        failed.push({ item, error: (err as Error).message });
      }
    }
    return { removed, failed };
  } finally {
    await nl.close();
  }
}

/** An endpoint's veth (recorded, or named so and carrying our programs) or an overlay device of ours. */
function createdByAgent(link: Link, recorded: ReadonlySet<string>, carriesOurs: boolean): boolean {
  if (ENDPOINT_VETH.test(link.name)) return recorded.has(link.name) || carriesOurs;
  return link.name.startsWith('cilia_') && OVERLAY_KINDS.has(link.kind ?? '');
}

/** The state directory's files (the stale API socket among them) and the default plugins' directories. */
function stateEntries(stateDir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(stateDir);
  } catch {
    return [];
  }
  return entries
    .map((name) => join(stateDir, name))
    .filter((path) => !lstatSync(path).isDirectory() || STATE_DIRS.includes(basename(path)))
    .sort();
}

function countFiles(dir: string): number {
  let n = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) n += entry.isDirectory() ? countFiles(join(dir, entry.name)) : 1;
  return n;
}
