// Probe a reachability matrix and compare it with the oracle's, printing upstream-style truth
// tables on a mismatch. Cells that disagree are probed again (a slow answer on a loaded machine,
// or policy still propagating after an identity change, is not a verdict); a cell that still
// disagrees at the deadline fails the case.
import type { ClusterPeer, NetpolCluster } from './harness.js';
import { NetpolOracle, type Protocol } from './oracle.js';
import type { ProbeResult } from './peer-process.js';

export interface ProbePort {
  readonly protocol: Protocol;
  readonly port: number;
}

export interface MatrixSpec {
  /** Probe sources (default: the nine pods). */
  readonly from?: readonly ClusterPeer[];
  /** Probe destinations (default: the nine pods). */
  readonly to?: readonly ClusterPeer[];
  /** Default: TCP 80. */
  readonly ports?: readonly ProbePort[];
}

interface Cell {
  readonly from: ClusterPeer;
  readonly to: ClusterPeer;
  readonly port: ProbePort;
  readonly expected: boolean;
  readonly why: string;
  observed: ProbeResult;
  attempts: number;
}

export interface MatrixResult {
  readonly mismatches: readonly string[];
  /** Truth tables and the list of mismatches; empty when everything matched. */
  readonly report: string;
  /** Cells that matched only on a re-probe (for the log: a hint of slowness or flakiness). */
  readonly reprobed: number;
  readonly cells: number;
}

const FIRST_TIMEOUT_MS = 1000;
const REPROBE_TIMEOUT_MS = 2500;

const isOk = (r: ProbeResult) => r === 'ok';

async function probeCells(cells: readonly Cell[], timeoutMs: number): Promise<void> {
  const bySource = new Map<ClusterPeer, Cell[]>();
  for (const c of cells) bySource.set(c.from, [...(bySource.get(c.from) ?? []), c]);
  await Promise.all(
    [...bySource].map(async ([from, list]) => {
      const results = await from.process.probe(
        list.map((c) => ({ host: c.to.ip, port: c.port.port, protocol: c.port.protocol })),
        timeoutMs,
      );
      list.forEach((c, i) => {
        c.observed = results[i]!;
        c.attempts++;
      });
    }),
  );
}

/**
 * Probes every (from, to, port) where at least one end is a pod (host and world clients have no
 * policy between themselves), expecting what the oracle computes for `documents` over the
 * cluster's current labels.
 */
export interface CheckOptions {
  /** How long disagreeing cells are probed again. Default 8 s. */
  readonly settleMs?: number;
  /**
   * Default true: the policy is known to be realized (its revision reached every endpoint), so a
   * cell expected denied that passes on the first probe is a failure at once — only slow answers
   * (expected allowed, timed out) are probed again. False after changes that carry no revision
   * (relabels), where both kinds of disagreement may still be settling.
   */
  readonly strict?: boolean;
}

export async function checkMatrix(cluster: NetpolCluster, documents: readonly unknown[], spec: MatrixSpec = {}, options: CheckOptions = {}): Promise<MatrixResult> {
  const { settleMs = 8_000, strict = true } = options;
  const from = spec.from ?? cluster.podPeers();
  const to = spec.to ?? cluster.podPeers();
  const ports = spec.ports ?? [{ protocol: 'TCP', port: 80 }];
  const oracle = new NetpolOracle(cluster.model(), documents);
  const cells: Cell[] = [];
  for (const port of ports)
    for (const f of from)
      for (const t of to) {
        const src = f.model();
        const dst = t.model();
        if (src.kind !== 'pod' && dst.kind !== 'pod') continue;
        const v = oracle.verdict(src, dst, port.protocol, port.port);
        cells.push({ from: f, to: t, port, expected: v.allowed, why: v.why, observed: '', attempts: 0 });
      }
  const deadline = Date.now() + settleMs;
  await probeCells(cells, FIRST_TIMEOUT_MS);
  const firstWrong = cells.filter((c) => isOk(c.observed) !== c.expected);
  const leaked = strict ? firstWrong.filter((c) => !c.expected) : [];
  let wrong = firstWrong.filter((c) => !leaked.includes(c));
  const reprobing = wrong.length;
  while (wrong.length > 0 && Date.now() < deadline) {
    await probeCells(wrong, REPROBE_TIMEOUT_MS);
    wrong = wrong.filter((c) => isOk(c.observed) !== c.expected);
  }
  const describe = (c: Cell) => `${c.from.name} -> ${c.to.name} ${c.port.protocol}/${c.port.port}: expected ${c.expected ? 'allowed' : 'denied'} (${c.why}), observed ${c.observed}`;
  const mismatches = [
    ...leaked.map((c) => `${describe(c)} on the first probe after every endpoint realized the policy`),
    ...wrong.map((c) => `${describe(c)} after ${c.attempts} probes`),
  ];
  const report = mismatches.length === 0 ? '' : `the probed matrix differs from the oracle's\n${renderTables(cells, from, to, ports)}\nmismatches:\n  ${mismatches.join('\n  ')}`;
  return { mismatches, report, reprobed: reprobing - wrong.length, cells: cells.length };
}

/** Upstream's truth tables: `.` allowed, `X` denied; in the comparison `.` agrees, `X` does not. */
function renderTables(cells: readonly Cell[], from: readonly ClusterPeer[], to: readonly ClusterPeer[], ports: readonly ProbePort[]): string {
  const width = Math.max(...[...from, ...to].map((p) => p.name.length), 4);
  const pad = (s: string) => s.padEnd(width);
  const out: string[] = [];
  for (const port of ports) {
    const at = (f: ClusterPeer, t: ClusterPeer) => cells.find((c) => c.from === f && c.to === t && c.port === port);
    const table = (title: string, mark: (c: Cell) => string) => {
      const lines = [`${title} ${port.protocol}/${port.port} (rows: from, columns: to)`, `${pad('')} ${to.map((t) => pad(t.name)).join(' ')}`];
      for (const f of from) lines.push(`${pad(f.name)} ${to.map((t) => pad((c => (c ? mark(c) : ' '))(at(f, t)))).join(' ')}`);
      return lines.join('\n');
    };
    out.push(table('expected', (c) => (c.expected ? '.' : 'X')));
    out.push(table('observed', (c) => (isOk(c.observed) ? '.' : 'X')));
    out.push(table('comparison', (c) => (isOk(c.observed) === c.expected ? '.' : 'X')));
  }
  return out.join('\n\n');
}
