// The loader's policy datapath: BpfDatapath.enablePolicy loads policy.o next to lxc.o, fills
// the policy slot of from-container and to-container, and a packet from one endpoint to
// another runs A's egress check, then B's ingress check, then local delivery. A restarted
// agent (second BpfDatapath on the same pins) adopts the realized policy unchanged.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfMap, BpfObject, codec, ProgramArray } from '@cilia/bpf';
import { compileBpf, makePinRoot, packet, removePinRoot, TC_ACT } from '@cilia/bpf/testing';
import type { Logger, PolicyKey } from '@cilia/core';
import { datapathConfig } from '../../src/config.js';
import { LocalIpCache } from '../../src/ipcache.js';
import { BpfDatapath } from '../../src/loader.js';
import { AttachPointIndex, Direction, DropReason, EndpointInfo, EndpointKey, MetricsKey, MetricsValue, slotIndex } from '../../src/maps/index.js';
import { dummyLinks, metricPackets, run, testEndpoint, type TestEndpoint } from './fixtures.js';
import { BASE_SRC } from './objects.js';

const silent: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent };
const node = { mtu: 1500, hostIPv4: ['192.0.2.1'] };
const key = (k: Partial<PolicyKey>): PolicyKey => ({ identity: 0, direction: 'ingress', protocol: 6, port: 0, endPort: 0, ...k });

describe('BpfDatapath.enablePolicy: from-container → to-container with policy', () => {
  let objDir: string;
  let pinRoot: string;
  let links: ReturnType<typeof dummyLinks>;
  let a: TestEndpoint;
  let b: TestEndpoint;
  let entry: BpfObject;

  beforeAll(() => {
    objDir = mkdtempSync(join(tmpdir(), 'cilia-policy-pipeline-'));
    pinRoot = makePinRoot('policy-pipeline');
    links = dummyLinks(2);
    try {
      for (const name of ['lxc', 'policy']) compileBpf(name, { srcDir: BASE_SRC, outDir: objDir });
    } catch (err) {
      links.remove();
      throw err;
    }
    const [ifA = 0, ifB = 0] = links.ifindexes;
    a = testEndpoint('10.207.0.10', 91, ifA, 9001);
    b = testEndpoint('10.207.0.20', 92, ifB, 9002);
  });
  afterAll(() => {
    entry?.close();
    removePinRoot(pinRoot);
    links?.remove();
    rmSync(objDir, { recursive: true, force: true });
  });

  const generation = (): BpfDatapath =>
    new BpfDatapath({ pinRoot, config: datapathConfig.parse({}), ipcache: new LocalIpCache(silent), logger: silent, objectDir: pathToFileURL(`${objDir}/`) });

  it('installs cil_policy in both policy slots; an ingress deny of B drops A → B at B', async () => {
    const datapath = generation();
    try {
      await datapath.ensureNode(node);
      const writer = datapath.enablePolicy({ defaultDeny: false, maxEntries: 1024 });
      expect(datapath.enablePolicy({ defaultDeny: false })).toBe(writer);
      const slotMap = BpfMap.openPinned(join(pinRoot, 'cilia_tc_slots'), { key: codec.u32, value: codec.u32 });
      const slots = new ProgramArray(slotMap);
      const fromPolicy = slots.get(slotIndex('from-container', 'policy'));
      expect(fromPolicy).toBeGreaterThan(0);
      expect(slots.get(slotIndex('to-container', 'policy'))).toBe(fromPolicy);
      slotMap.close();
      const lpm = BpfMap.openPinned(join(pinRoot, 'cilia_policy'));
      expect(lpm.info.maxEntries).toBe(1024);
      lpm.close();

      const endpoints = BpfMap.openPinned(join(pinRoot, 'cilia_endpoints'), { key: EndpointKey, value: EndpointInfo });
      endpoints.update(a.ip, a.info);
      endpoints.update(b.ip, b.info);
      endpoints.close();
      // A may send to B on 80 and 8000-8999; B takes 8000-8999 from A but denies 8443.
      writer.sync(a.info.endpointId, [[key({ identity: b.info.identity, direction: 'egress', port: 80 }), { verdict: 'allow', proxyPort: 0, derivedFrom: [] }], [key({ identity: b.info.identity, direction: 'egress', port: 8000, endPort: 8999 }), { verdict: 'allow', proxyPort: 0, derivedFrom: [] }]], { ingress: false, egress: true }, 1);
      writer.sync(
        b.info.endpointId,
        [
          [key({ identity: a.info.identity, port: 8000, endPort: 8999 }), { verdict: 'allow', proxyPort: 0, derivedFrom: [] }],
          [key({ identity: 0, port: 8443 }), { verdict: 'deny', proxyPort: 0, derivedFrom: [] }],
        ],
        { ingress: true, egress: false },
        1,
      );

      // The entry program of an lxc.o loaded on the same pins: the slots and resume programs it
      // tail-calls are the ones the loader installed.
      entry = BpfObject.open(join(objDir, 'lxc.o'), { pinRoot });
      entry.load();
      const fromContainer = entry.program('cil_from_container');
      const metrics = entry.perCpuMap('cilia_metrics', { key: MetricsKey, value: MetricsValue });
      const send = (sport: number, dport: number) => run(fromContainer, packet().eth().ipv4({ src: a.ip, dst: b.ip }).tcp({ sport, dport }).build(), a.info.hostIfindex);

      const deniedAtB = metricPackets(metrics, DropReason.policyDeny, Direction.ingress);
      const r = send(44000, 8443);
      expect(r.retval).toBe(TC_ACT.SHOT);
      expect(r.context).toMatchObject({ dropReason: DropReason.policyDeny, attachPoint: AttachPointIndex['to-container'], endpointId: b.info.endpointId });
      expect(metricPackets(metrics, DropReason.policyDeny, Direction.ingress)).toBe(deniedAtB + 1);

      // Allowed both ways: delivered to B.
      const ok = send(44001, 8444);
      expect(ok.retval).toBe(TC_ACT.REDIRECT);
      expect(ok.context).toMatchObject({ dropReason: 0, targetIfindex: b.info.hostIfindex });
      // A's egress allows 80, B's ingress does not.
      expect(send(44002, 80).context).toMatchObject({ dropReason: DropReason.policyDenied, attachPoint: AttachPointIndex['to-container'] });
      // A's egress stops 9000 before B is asked.
      expect(send(44003, 9000).context).toMatchObject({ dropReason: DropReason.policyDenied, attachPoint: AttachPointIndex['from-container'], endpointId: a.info.endpointId });
    } finally {
      datapath.close();
    }
  });

  it('a restarted agent adopts the realized policy and rewrites nothing', async () => {
    const datapath = generation();
    try {
      await datapath.ensureNode(node);
      // Another size in the settings does not fail the load: the pinned map keeps its own.
      const writer = datapath.enablePolicy({ defaultDeny: false, maxEntries: 4096 });
      expect(writer.endpoints()).toEqual([a.info.endpointId, b.info.endpointId]);
      const before = writer.dump(b.info.endpointId);
      expect(before).toMatchObject({ ingress: 'enforce', egress: 'allow-all', revision: 1 });
      const [denied, ...allowed] = before?.entries ?? [];
      expect(denied).toEqual({ identity: 0, direction: 'ingress', protocol: 6, port: 8443, endPort: 8443, verdict: 'deny', proxyPort: 0 });
      // 8000-8999 as aligned prefixes, read back as consecutive ranges.
      expect(allowed.every((e) => e.identity === a.info.identity && e.verdict === 'allow')).toBe(true);
      expect(allowed.map((e) => [e.port, e.endPort])).toEqual([
        [8000, 8063],
        [8064, 8191],
        [8192, 8703],
        [8704, 8959],
        [8960, 8991],
        [8992, 8999],
      ]);
      const outcome = writer.sync(
        b.info.endpointId,
        [
          [key({ identity: a.info.identity, port: 8000, endPort: 8999 }), { verdict: 'allow', proxyPort: 0, derivedFrom: [] }],
          [key({ identity: 0, port: 8443 }), { verdict: 'deny', proxyPort: 0, derivedFrom: [] }],
        ],
        { ingress: true, egress: false },
        1,
      );
      expect(outcome).toEqual({ failClosed: false, written: 0, deleted: 0 });
      const r = run(entry.program('cil_from_container'), packet().eth().ipv4({ src: a.ip, dst: b.ip }).tcp({ sport: 44010, dport: 8443 }).build(), a.info.hostIfindex);
      expect(r.context.dropReason).toBe(DropReason.policyDeny);
    } finally {
      datapath.close();
    }
  });
});
