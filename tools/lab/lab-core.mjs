// The multi-node lab: N "node" network namespaces on one underlay bridge, one etcd, one agent
// per node. Everything lives in namespaces the lab creates (the bridge too, in its own
// "underlay" namespace), so nothing touches the host's network; `down` removes it all, guided by
// the state file and, after a crash, by names derived from the prefix.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const AGENT_MAIN = join(REPO, 'apps/agent/dist/main.js');
const ETCD_PLUGIN = join(REPO, 'plugins/kvstore-etcd');
const STATE_ROOT = '/var/run/cilia-lab';
const PIN_ROOT = '/sys/fs/bpf/cilia-lab';
const SOCKET_ROOT = '/var/run/cilia';
const UNDERLAY_NET = '172.30.0';
const UNDERLAY_GW = `${UNDERLAY_NET}.254`;
const ETCD_CLIENT = `http://${UNDERLAY_GW}:2379`;
const ETCD_PEER = `http://${UNDERLAY_GW}:2380`;
const PREFIX = /^[a-z][a-z0-9]{0,7}$/;
const MAX_NODES = 200;
const PRESET_DIR = join(REPO, 'apps/agent/presets');

/**
 * How pods on different nodes reach each other, per `--routing` mode: the agent preset each
 * node's config extends (apps/agent/presets/<preset>.yaml, which lists the routing plugin) and
 * the workspace package that plugin lives in. `none`: no preset, pods stay on their node.
 */
export const ROUTING_MODES = {
  none: undefined,
  vxlan: { preset: 'vxlan', plugin: '@cilia/plugin-overlay-vxlan', dir: 'plugins/overlay-vxlan' },
  geneve: { preset: 'geneve', plugin: '@cilia/plugin-overlay-geneve', dir: 'plugins/overlay-geneve' },
  native: { preset: 'native', plugin: '@cilia/plugin-routing-native', dir: 'plugins/routing-native' },
};

/** The routing mode's preset name after checking that its preset and built plugin are there. */
export function routingPreset(routing) {
  if (!Object.hasOwn(ROUTING_MODES, routing)) {
    throw new Error(`--routing: unknown mode '${routing}' (one of ${Object.keys(ROUTING_MODES).join(', ')})`);
  }
  const mode = ROUTING_MODES[routing];
  if (!mode) return undefined;
  const missing = [];
  if (!existsSync(join(PRESET_DIR, `${mode.preset}.yaml`))) missing.push(`the agent preset apps/agent/presets/${mode.preset}.yaml`);
  if (!existsSync(join(REPO, mode.dir, 'package.json'))) missing.push(`the plugin ${mode.plugin} (${mode.dir})`);
  else if (!existsSync(join(REPO, mode.dir, 'dist/index.js'))) missing.push(`a build of ${mode.plugin} (npx nx build ${mode.plugin})`);
  else if (!existsSync(join(REPO, 'node_modules', mode.plugin))) missing.push(`the workspace link node_modules/${mode.plugin} (npm install)`);
  if (missing.length) throw new Error(`--routing ${routing}: missing ${missing.join(', ')}`);
  return mode.preset;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryRun = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8' });

/** Every name the lab derives from its prefix (default `node`). */
export function labNames(prefix = 'node') {
  if (!PREFIX.test(prefix)) throw new Error(`--prefix: invalid '${prefix}' (a lowercase letter, then up to 7 lowercase letters or digits)`);
  const stateDir = join(STATE_ROOT, prefix);
  return {
    prefix,
    stateDir,
    stateFile: join(stateDir, 'lab.json'),
    underlayNetns: `${prefix}-underlay`,
    bridge: `${prefix}-br`,
    node: (k) => `${prefix}-${k}`,
    nodePattern: new RegExp(`^${prefix}-\\d+$`),
    nodeDir: (k) => join(stateDir, `${prefix}-${k}`),
    pinRoot: (k) => join(PIN_ROOT, `${prefix}-${k}`),
    socketDir: (k) => join(SOCKET_ROOT, `${prefix}-${k}`),
    socket: (k) => join(SOCKET_ROOT, `${prefix}-${k}`, 'cilia.sock'),
    nodeIp: (k) => `${UNDERLAY_NET}.${k}`,
    podCidr: (k) => `10.200.${k}.0/24`,
  };
}

/** One JSON request on an agent's API socket. */
export function api(socket, method, path, body) {
  return new Promise((resolveP, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath: socket, path, method, headers: data ? { 'content-type': 'application/json' } : {}, timeout: 3000 }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        try {
          resolveP({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(data);
  });
}

function readState(names) {
  try {
    return JSON.parse(readFileSync(names.stateFile, 'utf8'));
  } catch {
    return undefined;
  }
}

function saveState(names, state) {
  mkdirSync(names.stateDir, { recursive: true });
  writeFileSync(names.stateFile, `${JSON.stringify(state, null, 2)}\n`);
}

/** Starts `cmd` inside netns `ns`, detached, output appended to `logFile`; returns its pid. */
function spawnInNetns(ns, cmd, args, logFile) {
  const fd = openSync(logFile, 'a');
  // nsenter execs the command (no fork for a net namespace alone), so the pid is the command's.
  const child = spawn('nsenter', [`--net=/run/netns/${ns}`, cmd, ...args], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  return child.pid;
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Pids whose command line mentions `needle` (the lab's state dir): the lab's own processes only. */
function pidsMentioning(needle) {
  const found = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmdline.some((a) => a.startsWith(needle))) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function killAll(pids, log) {
  const live = [...new Set(pids)].filter(alive);
  if (live.length === 0) return;
  log(`stopping ${live.length} process(es): ${live.join(' ')}`);
  for (const pid of live) try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && live.some(alive)) await sleep(100);
  for (const pid of live.filter(alive)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  while (live.some(alive)) await sleep(50);
}

const listNetns = () => tryRun('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]).filter(Boolean);

async function waitFor(what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const r = await check();
      if (r === true) return;
      last = r;
    } catch (err) {
      last = err.message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${timeoutMs / 1000} s${last ? ` (${last})` : ''}`);
    await sleep(200);
  }
}

/**
 * `--set KEY=VALUE` arguments as one config object: KEY is a dotted path into the agent config
 * (`datapath.bigTcp`), VALUE is JSON where it parses (true, 3, "x", [1]) and a string otherwise.
 */
export function parseSettings(pairs = []) {
  const out = {};
  for (const pair of pairs) {
    const m = /^([A-Za-z][\w-]*(?:\.[A-Za-z][\w-]*)*)=(.*)$/s.exec(pair);
    if (!m) throw new Error(`--set: expected KEY=VALUE with a dotted KEY (e.g. datapath.bigTcp=true), got '${pair}'`);
    let value;
    try {
      value = JSON.parse(m[2]);
    } catch {
      value = m[2];
    }
    const path = m[1].split('.');
    let at = out;
    for (const key of path.slice(0, -1)) {
      if (typeof at[key] !== 'object' || at[key] === null || Array.isArray(at[key])) at[key] = {};
      at = at[key];
    }
    at[path.at(-1)] = value;
  }
  return out;
}

/** `extra` merged into `base`: objects key by key, anything else replaced. */
function merge(base, extra) {
  const out = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const both = [out[key], value].every((v) => typeof v === 'object' && v !== null && !Array.isArray(v));
    out[key] = both ? merge(out[key], value) : value;
  }
  return out;
}

function agentConfig(names, k, preset, settings = {}) {
  return merge(baseAgentConfig(names, k, preset), settings);
}

function baseAgentConfig(names, k, preset) {
  const dir = names.nodeDir(k);
  return {
    // A built-in preset by name: it adds the routing plugin (plugin lists concatenate).
    ...(preset ? { extends: preset } : {}),
    agent: { apiSocket: names.socket(k), stateDir: join(dir, 'state'), metricsAddress: '', bpfRoot: names.pinRoot(k), nodeName: names.node(k) },
    ipam: { podCIDRs: [names.podCidr(k)] },
    datapath: { egressDevice: 'eth0' },
    plugins: [ETCD_PLUGIN],
    'kvstore-etcd': { endpoints: [ETCD_CLIENT], dialTimeoutMs: 1000 },
    nodes: { leaseTtlSeconds: 10 },
  };
}

/**
 * The underlay stands for a wire between NICs: it must pass whatever GSO packets a node sends
 * (its NIC would segment them), never cut them up itself. The bridge ports' IPv4 GSO limit
 * (64 KiB by default) would make the kernel segment BIG TCP packets in software on their way
 * through the bridge, so it is raised to the most a veth takes. The nodes' own eth0 keep the
 * kernel's default, as a NIC does until the agent (datapath.bigTcp) raises it.
 */
async function wireCarriesAnyGso(names, nodes) {
  const { MAX_GSO_SIZE, openNetns } = await import('@cilia/netlink');
  const ul = await openNetns(names.underlayNetns);
  try {
    for (let k = 1; k <= nodes; k++) await ul.setLink(`v${k}`, { gsoIpv4MaxSize: MAX_GSO_SIZE, groIpv4MaxSize: MAX_GSO_SIZE });
  } finally {
    await ul.close();
  }
}

/**
 * Brings up a lab of `nodes` nodes. Waits until every agent is healthy and sees every node;
 * on failure it tears down what it made and rethrows.
 */
export async function up({ nodes, prefix = 'node', routing = 'none', settings = {}, log = console.log, timeoutMs = 60_000 } = {}) {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) throw new Error(`--nodes: must be an integer from 1 to ${MAX_NODES}, got '${nodes}'`);
  const names = labNames(prefix);
  const preset = routingPreset(routing);
  if (existsSync(names.stateFile) || listNetns().some((n) => names.nodePattern.test(n) || n === names.underlayNetns)) {
    throw new Error(`a lab with prefix '${prefix}' already exists; run 'npm run lab -- down${prefix === 'node' ? '' : ` --prefix ${prefix}`}' first`);
  }
  if (!existsSync(AGENT_MAIN)) throw new Error(`${AGENT_MAIN} is missing: run 'npm run bootstrap' first`);
  const state = { prefix, nodes, routing, createdAt: new Date().toISOString(), netns: [], dirs: [names.stateDir], pins: [], pids: {}, etcd: { client: ETCD_CLIENT } };
  try {
    saveState(names, state);
    log(`underlay: netns ${names.underlayNetns}, bridge ${names.bridge} ${UNDERLAY_GW}/24`);
    sh('ip', ['netns', 'add', names.underlayNetns]);
    state.netns.push(names.underlayNetns);
    saveState(names, state);
    const ul = ['-n', names.underlayNetns];
    sh('ip', [...ul, 'link', 'set', 'lo', 'up']);
    sh('ip', [...ul, 'link', 'add', names.bridge, 'type', 'bridge']);
    sh('ip', [...ul, 'addr', 'add', `${UNDERLAY_GW}/24`, 'dev', names.bridge]);
    sh('ip', [...ul, 'link', 'set', names.bridge, 'up']);
    for (let k = 1; k <= nodes; k++) {
      const ns = names.node(k);
      sh('ip', ['netns', 'add', ns]);
      state.netns.push(ns);
      saveState(names, state);
      // Both ends live in lab namespaces: deleting the namespaces removes the links.
      sh('ip', [...ul, 'link', 'add', `v${k}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      sh('ip', [...ul, 'link', 'set', `v${k}`, 'master', names.bridge, 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', `${names.nodeIp(k)}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', UNDERLAY_GW]);
      log(`node ${ns}: ${names.nodeIp(k)} on eth0, pod CIDR ${names.podCidr(k)}`);
    }
    await wireCarriesAnyGso(names, nodes);
    const etcdDir = join(names.stateDir, 'etcd');
    mkdirSync(names.stateDir, { recursive: true });
    state.pids.etcd = spawnInNetns(names.underlayNetns, 'etcd', [
      '--name', 'lab', '--data-dir', etcdDir,
      '--listen-client-urls', ETCD_CLIENT, '--advertise-client-urls', ETCD_CLIENT,
      '--listen-peer-urls', ETCD_PEER, '--initial-advertise-peer-urls', ETCD_PEER,
      '--initial-cluster', `lab=${ETCD_PEER}`, '--log-level', 'warn',
    ], join(names.stateDir, 'etcd.log'));
    saveState(names, state);
    log(`etcd: pid ${state.pids.etcd}, ${ETCD_CLIENT}, log ${join(names.stateDir, 'etcd.log')}`);
    await waitFor('etcd', 20_000, () => {
      if (!alive(state.pids.etcd)) throw new Error(`etcd exited; see ${join(names.stateDir, 'etcd.log')}`);
      const r = tryRun('ip', ['netns', 'exec', names.node(1), 'curl', '-s', '-m', '1', `${ETCD_CLIENT}/health`]);
      return r.stdout.includes('"health":"true"') || r.stdout.trim() || 'no answer';
    });
    for (let k = 1; k <= nodes; k++) {
      const dir = names.nodeDir(k);
      mkdirSync(dir, { recursive: true });
      mkdirSync(names.socketDir(k), { recursive: true });
      state.dirs.push(names.socketDir(k));
      state.pins.push(names.pinRoot(k));
      const config = join(dir, 'agent.yaml');
      // JSON is YAML: the agent reads it as is.
      writeFileSync(config, `${JSON.stringify(agentConfig(names, k, preset, settings), null, 2)}\n`);
      state.pids[names.node(k)] = spawnInNetns(names.node(k), process.execPath, [AGENT_MAIN, '--config', config], join(dir, 'agent.log'));
      saveState(names, state);
      log(`agent ${names.node(k)}: pid ${state.pids[names.node(k)]}, socket ${names.socket(k)}, log ${join(dir, 'agent.log')}`);
    }
    for (let k = 1; k <= nodes; k++) {
      const node = names.node(k);
      await waitFor(`agent ${node}`, timeoutMs, async () => {
        if (!alive(state.pids[node])) throw new Error(`exited; see ${join(names.nodeDir(k), 'agent.log')}`);
        const s = await api(names.socket(k), 'GET', '/v1/status');
        return s.body?.health === 'ok' || `health ${s.body?.health}: ${JSON.stringify(s.body?.problems ?? [])}`;
      });
      log(`agent ${node}: health ok`);
    }
    for (let k = 1; k <= nodes; k++) {
      const node = names.node(k);
      await waitFor(`node list of ${node}`, timeoutMs, async () => {
        const r = await api(names.socket(k), 'GET', '/v1/nodes');
        const seen = Array.isArray(r.body) ? r.body.length : 0;
        return seen === nodes || `sees ${seen}/${nodes} nodes`;
      });
      log(`agent ${node}: sees all ${nodes} nodes`);
    }
    log(`lab up: ${nodes} node(s), routing ${routing}; try 'cilia --node ${names.node(1)} node list'`);
    return state;
  } catch (err) {
    log(`lab up failed: ${err.message}; cleaning up`);
    await down({ prefix, log });
    throw err;
  }
}

/** Names of the pod namespaces the lab's agents created, from their endpoint records. */
function podNetnsFromAgentState(names) {
  const found = [];
  if (!existsSync(names.stateDir)) return found;
  for (const d of readdirSync(names.stateDir)) {
    if (!names.nodePattern.test(d)) continue;
    const dir = join(names.stateDir, d, 'state', 'endpoints');
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
      try {
        const rec = JSON.parse(readFileSync(join(dir, f), 'utf8'));
        const m = /^\/run\/netns\/([^/]+)$/.exec(rec?.endpoint?.netns ?? '');
        if (rec?.createdNetns === true && m) found.push(m[1]);
      } catch {
        // a torn record names nothing
      }
    }
  }
  return found;
}

/** Removes everything a lab made (state file first, then name patterns); idempotent. */
export async function down({ prefix = 'node', log = console.log } = {}) {
  const names = labNames(prefix);
  const state = readState(names);
  const netns = listNetns();
  const nodeNetns = netns.filter((n) => names.nodePattern.test(n));
  // Pods the agents made live in namespaces of their own: ask each live agent to remove its endpoints.
  for (const ns of nodeNetns) {
    const socket = join(SOCKET_ROOT, ns, 'cilia.sock');
    const list = await api(socket, 'GET', '/v1/endpoints').catch(() => undefined);
    for (const ep of Array.isArray(list?.body) ? list.body : []) {
      if (ep?.id !== undefined) await api(socket, 'DELETE', `/v1/endpoints/${encodeURIComponent(ep.id)}`).catch(() => undefined);
    }
  }
  const pids = Object.values(state?.pids ?? {}).filter((p) => Number.isInteger(p) && pidsMentioning(`${names.stateDir}/`).includes(p));
  for (const ns of [...nodeNetns, names.underlayNetns]) {
    if (netns.includes(ns)) pids.push(...tryRun('ip', ['netns', 'pids', ns]).stdout.split('\n').filter(Boolean).map(Number));
  }
  pids.push(...pidsMentioning(`${names.stateDir}/`));
  // Agents first, while etcd still answers, so they revoke their leases on the way out.
  const etcdPid = state?.pids?.etcd;
  await killAll(pids.filter((p) => p !== etcdPid), log);
  await killAll([...pids, ...pidsMentioning(`${names.stateDir}/`)], log);
  // Pods the agents could not remove (they crashed): their records name the netns each agent made.
  for (const ns of podNetnsFromAgentState(names)) {
    if (listNetns().includes(ns)) {
      await killAll(tryRun('ip', ['netns', 'pids', ns]).stdout.split('\n').filter(Boolean).map(Number), log);
      tryRun('ip', ['netns', 'delete', ns]);
      log(`removed pod netns ${ns}`);
    }
  }
  for (const ns of new Set([...(state?.netns ?? []), ...nodeNetns, names.underlayNetns])) {
    if (listNetns().includes(ns)) {
      tryRun('ip', ['netns', 'delete', ns]);
      log(`removed netns ${ns}`);
    }
  }
  const pinDirs = new Set(state?.pins ?? []);
  const socketDirs = new Set(state?.dirs ?? []);
  if (existsSync(PIN_ROOT)) for (const d of readdirSync(PIN_ROOT)) if (names.nodePattern.test(d)) pinDirs.add(join(PIN_ROOT, d));
  if (existsSync(SOCKET_ROOT)) for (const d of readdirSync(SOCKET_ROOT)) if (names.nodePattern.test(d)) socketDirs.add(join(SOCKET_ROOT, d));
  socketDirs.add(names.stateDir);
  for (const d of [...pinDirs, ...socketDirs]) {
    if (existsSync(d)) {
      rmSync(d, { recursive: true, force: true });
      log(`removed ${d}`);
    }
  }
  for (const d of [PIN_ROOT, STATE_ROOT]) {
    try {
      if (readdirSync(d).length === 0) rmSync(d, { recursive: true });
    } catch {
      // absent
    }
  }
  log(`lab '${prefix}' is down`);
}

/**
 * Takes node K out of the cluster: its agent is stopped with SIGTERM (SIGKILL after 5 s), so it
 * revokes its lease and the other nodes see it leave (its node key and its pods' ipcache entries
 * go with the lease). Its namespaces stay until `down`.
 */
export async function nodeDown({ prefix = 'node', node, log = console.log } = {}) {
  const names = labNames(prefix);
  const state = readState(names);
  if (!state) throw new Error(`lab '${prefix}' is not up`);
  if (!Number.isInteger(node) || node < 1 || node > state.nodes) throw new Error(`--node: must be an integer from 1 to ${state.nodes}, got '${node}'`);
  const pid = state.pids[names.node(node)];
  const pids = [pid, ...tryRun('ip', ['netns', 'pids', names.node(node)]).stdout.split('\n').filter(Boolean).map(Number)];
  await killAll(pids.filter((p) => Number.isInteger(p) && p !== state.pids.etcd), log);
  log(`node ${names.node(node)}: agent stopped`);
}

/**
 * Starts node K's agent again (after `node-down`, or a crash) with its config, state and pins:
 * it adopts its pods and rejoins; waits until it is healthy and every running agent sees it.
 */
export async function nodeUp({ prefix = 'node', node, log = console.log, timeoutMs = 60_000 } = {}) {
  const names = labNames(prefix);
  const state = readState(names);
  if (!state) throw new Error(`lab '${prefix}' is not up`);
  if (!Number.isInteger(node) || node < 1 || node > state.nodes) throw new Error(`--node: must be an integer from 1 to ${state.nodes}, got '${node}'`);
  const name = names.node(node);
  if (alive(state.pids[name] ?? -1)) throw new Error(`node ${name}: its agent is running (pid ${state.pids[name]})`);
  const dir = names.nodeDir(node);
  state.pids[name] = spawnInNetns(name, process.execPath, [AGENT_MAIN, '--config', join(dir, 'agent.yaml')], join(dir, 'agent.log'));
  saveState(names, state);
  log(`agent ${name}: pid ${state.pids[name]}, log ${join(dir, 'agent.log')}`);
  await waitFor(`agent ${name}`, timeoutMs, async () => {
    if (!alive(state.pids[name])) throw new Error(`exited; see ${join(dir, 'agent.log')}`);
    const s = await api(names.socket(node), 'GET', '/v1/status');
    return s.body?.health === 'ok' || `health ${s.body?.health}`;
  });
  for (let k = 1; k <= state.nodes; k++) {
    if (!alive(state.pids[names.node(k)] ?? -1)) continue;
    await waitFor(`node list of ${names.node(k)}`, timeoutMs, async () => {
      const r = await api(names.socket(k), 'GET', '/v1/nodes');
      return (Array.isArray(r.body) && r.body.some((n) => n.name === name)) || `does not see ${name} yet`;
    });
  }
  log(`node ${name}: agent running, seen by every running agent`);
}

/** What is running: per node, the pid, health and how many nodes it sees. */
export async function status({ prefix = 'node' } = {}) {
  const names = labNames(prefix);
  const state = readState(names);
  if (!state) return { prefix, up: false, nodes: [] };
  const nodes = [];
  for (let k = 1; k <= state.nodes; k++) {
    const node = names.node(k);
    const pid = state.pids[node];
    const s = await api(names.socket(k), 'GET', '/v1/status').catch(() => undefined);
    const n = await api(names.socket(k), 'GET', '/v1/nodes').catch(() => undefined);
    nodes.push({ name: node, pid, running: pid !== undefined && alive(pid), health: s?.body?.health ?? 'unreachable', seesNodes: Array.isArray(n?.body) ? n.body.length : 0, socket: names.socket(k), ip: names.nodeIp(k), podCidr: names.podCidr(k) });
  }
  return { prefix, up: true, routing: state.routing ?? 'none', createdAt: state.createdAt, etcd: { pid: state.pids.etcd, running: alive(state.pids.etcd), client: state.etcd.client }, nodes };
}
