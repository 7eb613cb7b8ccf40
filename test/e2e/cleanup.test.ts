// `cilia cleanup` after the example pods of `npm start`, on a node of its own (a network
// namespace whose egress device is one end of a veth pair, so the agent's programs sit on a device as on a real node):
// refused while the agent serves its socket and without a terminal to ask, then with --force it
// leaves no netns, veth, tc program, pin or state file, says what it removed, finds nothing the
// second time, and a new agent with an empty state directory starts on the same names.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { BpfMap, listPrograms } from '@cilia/bpf';
import type { Endpoint } from '@cilia/core';
import { AGENT_MAIN, api, deletePodNetns, REPO, spawnInNetns, testPinRoot, waitHealthy, type NetnsProcess } from '../support/agent.js';

const RUN = randomBytes(3).toString('hex');
const NODE_NS = `cilia-e2e-clean-${RUN}`;
const K8S_NS = `clean${RUN}`;
const CLI = join(REPO, 'apps/cli/bin/cilia.js');

const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
/** Runs `cilia ARGS` on the node (its network namespace, the machine's bpffs and /run/netns). */
const cilia = (...args: string[]) => {
  const r = sh('nsenter', [`--net=/run/netns/${NODE_NS}`, process.execPath, CLI, ...args]);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const podNetns = () => readdirSync('/run/netns').filter((n) => n.startsWith(`cilia_${K8S_NS}_`)).sort();
const nodeLinks = () => sh('ip', ['-n', NODE_NS, '-o', 'link', 'show']).stdout;
const tcFilters = (direction: string) => sh('ip', ['netns', 'exec', NODE_NS, 'tc', 'filter', 'show', 'dev', 'eth0', direction]).stdout.trim();

describe('cilia cleanup after the example pods', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-cleanup-e2e-'));
  const socket = join(dir, 'cilia.sock');
  const stateDir = join(dir, 'state');
  const bpfRoot = testPinRoot(dir);
  const cleanupArgs = ['--socket', socket, '--state-dir', stateDir, '--bpf-root', bpfRoot];
  const configFile = join(dir, 'agent.yaml');
  let agent: NetnsProcess | undefined;

  async function startAgent(): Promise<Endpoint[]> {
    agent = spawnInNetns(NODE_NS, process.execPath, [AGENT_MAIN, '--config', configFile]);
    await waitHealthy(socket, agent);
    let endpoints: Endpoint[] = [];
    await expect
      .poll(async () => (endpoints = (await api<Endpoint[]>(socket, 'GET', '/v1/endpoints')).body).filter((e) => e.state === 'ready').length, { timeout: 20_000 })
      .toBe(2);
    return endpoints;
  }
  async function stopAgent(): Promise<void> {
    agent?.child.kill('SIGTERM');
    expect(await agent?.done).toBe(0);
  }

  beforeAll(() => {
    expect(sh('ip', ['netns', 'add', NODE_NS]).status).toBe(0);
    for (const args of [['link', 'set', 'lo', 'up'], ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0-peer'], ['link', 'set', 'eth0-peer', 'up'], ['addr', 'add', '192.168.77.1/24', 'dev', 'eth0'], ['link', 'set', 'eth0', 'up'], ['route', 'add', 'default', 'via', '192.168.77.254', 'dev', 'eth0', 'onlink']]) {
      expect(sh('ip', ['-n', NODE_NS, ...args]).status).toBe(0);
    }
    // The example manifests of `npm start`, in a namespace of this run.
    const manifests = join(dir, 'manifests');
    mkdirSync(manifests);
    for (const file of readdirSync(join(REPO, 'examples/standalone/manifests'))) {
      writeFileSync(join(manifests, file), readFileSync(join(REPO, 'examples/standalone/manifests', file), 'utf8').replaceAll('shop', K8S_NS));
    }
    writeFileSync(configFile, stringify({ extends: 'standalone', agent: { apiSocket: socket, stateDir, bpfRoot, metricsAddress: '', nodeName: `clean-${RUN}` }, manifests: { directory: manifests } }));
  });

  afterAll(async () => {
    if (agent && agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
    await agent?.done;
    deletePodNetns(K8S_NS);
    sh('ip', ['netns', 'delete', NODE_NS]);
    rmSync(bpfRoot, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('removes every netns, veth, program, pin and state file of the agent; a new agent starts on the same names', async () => {
    const endpoints = await startAgent();
    const netns = podNetns();
    expect(netns).toEqual([`cilia_${K8S_NS}_backend`, `cilia_${K8S_NS}_frontend`]);
    expect(nodeLinks()).toMatch(/lxc[0-9a-f]{12}/);
    expect(tcFilters('ingress')).toContain('cil_from_netdev');
    // The agent's programs: every program using its pinned slot table or endpoints map.
    const mapIds = ['cilia_tc_slots', 'cilia_endpoints'].map((name) => {
      const map = BpfMap.openPinned(join(bpfRoot, name));
      const id = map.id;
      map.close();
      return id;
    });
    const programs = listPrograms().filter((p) => p.mapIds.some((id) => mapIds.includes(id)));
    expect(programs.map((p) => p.name)).toEqual(expect.arrayContaining(['cil_from_contai', 'cil_to_containe', 'cil_from_netdev', 'cil_to_netdev', 'cil_policy']));

    const refused = cilia('cleanup', ...cleanupArgs);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`cilia: an agent is serving ${socket}; stop it first, or pass --force\n`);

    await stopAgent();
    // Endpoints outlive the agent: all of it is still there.
    expect(podNetns()).toEqual(netns);
    const unasked = cilia('cleanup', ...cleanupArgs);
    expect(unasked.code).toBe(1);
    expect(unasked.stderr).toMatch(/^cilia: cleanup asks before it removes anything, and stdin is not a terminal: pass --force/);
    const dry = cilia('cleanup', '--dry-run', '-o', 'json', ...cleanupArgs);
    expect(dry.code).toBe(0);
    expect(podNetns()).toEqual(netns);

    const cleaned = cilia('cleanup', '--force', ...cleanupArgs);
    expect(cleaned.stderr).toBe('');
    expect(cleaned.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toEqual({ removed: expect.any(Array), failed: [] });
    const removed = (JSON.parse(dry.stdout) as { removed: { kind: string; name: string }[] }).removed;
    for (const item of removed) expect(cleaned.stdout).toMatch(new RegExp(`^${item.kind}\\s+${item.name.replace(/[.]/g, '\\.')}\\s`, 'm'));
    expect(removed.filter((i) => i.kind === 'netns').map((i) => i.name).sort()).toEqual(netns);
    expect(removed.filter((i) => i.kind === 'link').map((i) => i.name).sort()).toEqual(endpoints.map((e) => e.hostInterface).sort());
    expect(removed.filter((i) => i.kind === 'tc-program').map((i) => i.name)).toEqual(['eth0', 'eth0']);

    // Listed again: nothing of it is left.
    expect(podNetns()).toEqual([]);
    expect(nodeLinks()).not.toMatch(/lxc/);
    expect(tcFilters('ingress')).toBe('');
    expect(tcFilters('egress')).toBe('');
    const loaded = new Set(listPrograms().map((p) => p.id));
    expect(programs.filter((p) => loaded.has(p.id))).toEqual([]);
    expect(existsSync(bpfRoot)).toBe(false);
    expect(existsSync(stateDir) ? readdirSync(stateDir) : []).toEqual([]);

    const again = cilia('cleanup', '--force', ...cleanupArgs);
    expect([again.code, again.stdout, again.stderr]).toEqual([0, 'Nothing to remove.\n', '']);

    // A new agent, empty state directory, same names: it starts cleanly and makes the pods again.
    const second = await startAgent();
    expect(second.map((e) => e.hostInterface).sort()).toEqual(endpoints.map((e) => e.hostInterface).sort());
    expect(podNetns()).toEqual(netns);
  }, 120_000);
});
