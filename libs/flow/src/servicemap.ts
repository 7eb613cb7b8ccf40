// The service map (Hubble UI's): workloads — a namespace and an app label, or a pod without
// one, or a reserved identity (world, host) — as nodes, observed connections between them as
// edges with their count, verdicts and ports (and L7 when flows carry it). Drawn as one
// self-contained SVG, laid out in columns by how far each workload is from the traffic's sources.
import type { Flow, FlowPeer } from '@cilia/core';
import type { FlowRecord } from '@cilia/api-client';

export interface MapNode {
  readonly id: string;
  readonly namespace?: string;
  /** The app label, the pod name without an app label, or the reserved identity's name. */
  readonly name: string;
  readonly kind: 'workload' | 'pod' | 'reserved';
  readonly pods: readonly string[];
}

export interface MapEdge {
  readonly source: string;
  readonly target: string;
  readonly count: number;
  readonly forwarded: number;
  readonly dropped: number;
  /**
   * dropped: flows were dropped and no reply ever came back; mixed: drops, but replies too;
   * forwarded: no drops.
   */
  readonly verdict: 'forwarded' | 'dropped' | 'mixed';
  /** `TCP/80`, `UDP/53`, … of the connections. */
  readonly ports: readonly string[];
  /** L7 summaries (`GET /api 200`), when flows carry L7 records. */
  readonly l7: readonly string[];
}

export interface ServiceMap {
  readonly nodes: readonly MapNode[];
  readonly edges: readonly MapEdge[];
}

const APP_LABELS = ['k8s:app', 'k8s:app.kubernetes.io/name', 'k8s:k8s-app'];

function workload(p: FlowPeer): { id: string; node: Omit<MapNode, 'pods'>; pod?: string } {
  const reserved = Object.keys(p.labels).find((k) => k.startsWith('reserved:'));
  if (reserved) {
    const name = reserved.slice('reserved:'.length);
    return { id: `reserved:${name}`, node: { id: `reserved:${name}`, name, kind: 'reserved' } };
  }
  const app = APP_LABELS.map((k) => p.labels[k]).find((v) => v);
  const ns = p.namespace ?? '';
  const pod = p.podName;
  if (app) return { id: `${ns}/${app}`, node: { id: `${ns}/${app}`, namespace: ns, name: app, kind: 'workload' }, ...(pod ? { pod } : {}) };
  const name = pod ?? p.ip;
  return { id: `${ns}/${name}`, node: { id: `${ns}/${name}`, ...(ns ? { namespace: ns } : {}), name, kind: 'pod' }, ...(pod ? { pod } : {}) };
}

/** The map of `flows`: replies and traces of established connections fold into their connection's edge. */
export function buildServiceMap(flows: readonly (Flow | FlowRecord)[]): ServiceMap {
  const nodes = new Map<string, { node: Omit<MapNode, 'pods'>; pods: Set<string> }>();
  const edges = new Map<string, { source: string; target: string; count: number; forwarded: number; dropped: number; replies: number; ports: Set<string>; l7: Set<string> }>();
  for (const f of flows) {
    // A reply travels back along its connection: the connection's client is its destination.
    const [client, server] = f.isReply ? [f.destination, f.source] : [f.source, f.destination];
    const a = workload(client);
    const b = workload(server);
    for (const w of [a, b]) {
      const entry = nodes.get(w.id) ?? { node: w.node, pods: new Set<string>() };
      if (w.pod) entry.pods.add(w.pod);
      nodes.set(w.id, entry);
    }
    if (a.id === b.id && f.eventType !== 'l7') continue;
    const key = `${a.id}\u0000${b.id}`;
    const e = edges.get(key) ?? { source: a.id, target: b.id, count: 0, forwarded: 0, dropped: 0, replies: 0, ports: new Set<string>(), l7: new Set<string>() };
    e.count++;
    if (f.isReply) e.replies++;
    if (f.verdict === 'DROPPED') e.dropped++;
    else e.forwarded++;
    if (server.port !== undefined && f.protocol !== 'ICMPv4') e.ports.add(`${f.protocol}/${server.port}`);
    else e.ports.add(f.protocol);
    if (f.l7) e.l7.add(Object.values(f.l7).filter((v) => typeof v === 'string' || typeof v === 'number').join(' '));
    edges.set(key, e);
  }
  return {
    nodes: [...nodes.values()].map(({ node, pods }) => ({ ...node, pods: [...pods].sort() })).sort((x, y) => x.id.localeCompare(y.id)),
    edges: [...edges.values()]
      .map(({ replies, ...e }) => ({ ...e, verdict: e.dropped === 0 ? ('forwarded' as const) : replies === 0 ? ('dropped' as const) : ('mixed' as const), ports: [...e.ports].sort(), l7: [...e.l7].sort() }))
      .sort((x, y) => `${x.source} ${x.target}`.localeCompare(`${y.source} ${y.target}`)),
  };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Column of each node: its longest distance from a node nothing connects to (cycles broken). */
function columns(map: ServiceMap): Map<string, number> {
  const col = new Map(map.nodes.map((n) => [n.id, 0]));
  for (let round = 0; round < map.nodes.length; round++) {
    let changed = false;
    for (const e of map.edges) {
      if (e.source === e.target) continue;
      const next = (col.get(e.source) ?? 0) + 1;
      if (next > (col.get(e.target) ?? 0) && next < map.nodes.length) {
        col.set(e.target, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return col;
}

const NODE_W = 200;
const NODE_H = 56;
const COL_GAP = 140;
const ROW_GAP = 40;

/** The map as one SVG document: nodes and edges carry data-* attributes for tools and tests. */
export function renderServiceMapSvg(map: ServiceMap, title = 'Cilia service map'): string {
  const col = columns(map);
  const rows = new Map<number, number>();
  const at = new Map<string, { x: number; y: number }>();
  for (const n of map.nodes) {
    const c = col.get(n.id) ?? 0;
    const r = rows.get(c) ?? 0;
    rows.set(c, r + 1);
    at.set(n.id, { x: 20 + c * (NODE_W + COL_GAP), y: 60 + r * (NODE_H + ROW_GAP) });
  }
  const width = 40 + Math.max(1, ...[...col.values()].map((c) => c + 1)) * (NODE_W + COL_GAP) - COL_GAP;
  const height = 100 + Math.max(1, ...rows.values()) * (NODE_H + ROW_GAP) + 2 * NODE_H;
  let bends = 0;
  const edges = map.edges.map((e) => {
    const s = at.get(e.source)!;
    const t = at.get(e.target)!;
    const verdict = e.verdict;
    const [x1, y1, x2, y2] = s.x === t.x && s.y === t.y ? [s.x + NODE_W, s.y + 10, s.x + NODE_W, s.y + NODE_H - 10] : [s.x + NODE_W, s.y + NODE_H / 2, t.x, t.y + NODE_H / 2];
    // An edge between neighbouring columns goes straight; one that skips columns (or goes back)
    // dips below the nodes in between, so it never runs through them.
    const span = (col.get(e.target) ?? 0) - (col.get(e.source) ?? 0);
    const dip = span === 1 ? 0 : NODE_H + 20 * (1 + (bends++ % 3));
    const mx = (x1 + x2) / 2;
    const my = (y1 + y2) / 2 + dip * 0.75;
    const curve = dip === 0 ? `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` : `M${x1},${y1} C${x1 + 60},${y1 + dip} ${x2 - 60},${y2 + dip} ${x2},${y2}`;
    const label = `${e.count}× ${e.ports.join(', ')}${e.dropped ? ` (${e.dropped} dropped)` : ''}`;
    const l7 = e.l7.length ? `<text class="l7" x="${mx}" y="${my + 14}" text-anchor="middle">${esc(e.l7.join('; '))}</text>` : '';
    return (
      `<g class="edge ${verdict}" data-source="${esc(e.source)}" data-target="${esc(e.target)}" data-count="${e.count}" data-forwarded="${e.forwarded}" data-dropped="${e.dropped}" data-verdict="${verdict}">` +
      `<title>${esc(`${e.source} → ${e.target}: ${label}`)}</title>` +
      `<path d="${curve}" marker-end="url(#arrow-${verdict})"/>` +
      `<text x="${mx}" y="${my - 6}" text-anchor="middle">${esc(label)}</text>${l7}</g>`
    );
  });
  const nodes = map.nodes.map((n) => {
    const p = at.get(n.id)!;
    const sub = n.kind === 'reserved' ? 'reserved identity' : `${n.namespace ? `${n.namespace} · ` : ''}${n.pods.length} pod${n.pods.length === 1 ? '' : 's'}`;
    return (
      `<g class="node ${n.kind}" data-id="${esc(n.id)}" data-name="${esc(n.name)}" data-namespace="${esc(n.namespace ?? '')}" transform="translate(${p.x},${p.y})">` +
      `<title>${esc(`${n.id}${n.pods.length ? `: ${n.pods.join(', ')}` : ''}`)}</title>` +
      `<rect width="${NODE_W}" height="${NODE_H}" rx="8"/><text class="name" x="12" y="24">${esc(n.name)}</text><text class="sub" x="12" y="44">${esc(sub)}</text></g>`
    );
  });
  const marker = (v: string) => `<marker id="arrow-${v}" class="${v}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>`;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="service-map" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" data-nodes="${map.nodes.length}" data-edges="${map.edges.length}">` +
    `<style>.node rect{fill:#f4f6fb;stroke:#3b4a6b;stroke-width:1.5}.node.reserved rect{fill:#fff7e6;stroke:#b7791f}.node .name{font:600 15px sans-serif;fill:#1a202c}.node .sub{font:12px sans-serif;fill:#4a5568}` +
    `.edge path{fill:none;stroke-width:2}.edge text{font:12px sans-serif;fill:#2d3748}.edge .l7{fill:#553c9a}.forwarded path,marker.forwarded path{stroke:#2f855a;fill:#2f855a}.edge.forwarded path{fill:none}` +
    `.dropped path,marker.dropped path{stroke:#c53030;fill:#c53030}.edge.dropped path{fill:none;stroke-dasharray:6 4}.mixed path,marker.mixed path{stroke:#c05621;fill:#c05621}.edge.mixed path{fill:none}</style>` +
    `<defs>${['forwarded', 'dropped', 'mixed'].map(marker).join('')}</defs>` +
    `<text x="20" y="30" style="font:600 18px sans-serif">${esc(title)}</text>${edges.join('')}${nodes.join('')}</svg>`
  );
}

/** The map as an HTML page: the SVG, a legend, and the edges as a table. */
export function renderServiceMapHtml(map: ServiceMap, title = 'Cilia service map'): string {
  const rows = map.edges
    .map((e) => `<tr class="${e.dropped ? 'dropped' : 'forwarded'}"><td>${esc(e.source)}</td><td>${esc(e.target)}</td><td>${e.count}</td><td>${e.forwarded}</td><td>${e.dropped}</td><td>${esc(e.ports.join(', '))}</td><td>${esc(e.l7.join('; '))}</td></tr>`)
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>body{font-family:sans-serif;margin:16px}table{border-collapse:collapse;margin-top:16px}td,th{border:1px solid #cbd5e0;padding:4px 8px}tr.dropped td{color:#c53030}.legend span{margin-right:16px}</style></head><body>` +
    `<div class="legend"><span style="color:#2f855a">━ forwarded</span><span style="color:#c53030">╌ dropped</span><span style="color:#c05621">━ both</span></div>` +
    `${renderServiceMapSvg(map, title)}<table class="edges"><thead><tr><th>source</th><th>destination</th><th>flows</th><th>forwarded</th><th>dropped</th><th>ports</th><th>L7</th></tr></thead><tbody>${rows}</tbody></table></body></html>`;
}
