// A second object fills slots of the base pipeline (bpf/tests/slot_filler.c, as a plugin
// would): its programs change the verdict while installed, and clearing the slot restores
// the base default for the next packet.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codec, type BpfObject, type BpfProgram, type ProgramArray } from '@cilia/bpf';
import { packet, TC_ACT } from '@cilia/bpf/testing';
import { AttachPointIndex, Direction, DropReason, SLOT_NONE, slotIndex } from '../../src/maps/index.js';
import { datapathMaps, dummyLinks, metricPackets, run, testEndpoint } from './fixtures.js';
import { loadDatapath, type Datapath } from './objects.js';

let dp: Datapath;
let links: ReturnType<typeof dummyLinks>;
let maps: ReturnType<typeof datapathMaps>;
let filler: BpfObject;
let slots: ProgramArray;
let fromContainer: BpfProgram;
let a: ReturnType<typeof testEndpoint>;
let b: ReturnType<typeof testEndpoint>;

beforeAll(() => {
  links = dummyLinks(2);
  try {
    dp = loadDatapath();
    filler = dp.loadMore('slot_filler');
  } catch (err) {
    dp?.dispose();
    links.remove();
    throw err;
  }
  maps = datapathMaps(dp);
  // The plugin reaches the base's program array through the shared pin.
  slots = filler.programArray('cilia_tc_slots');
  fromContainer = dp.lxc.program('cil_from_container');
  const [ifA = 0, ifB = 0] = links.ifindexes;
  a = testEndpoint('10.204.0.10', 51, ifA, 5001);
  b = testEndpoint('10.204.0.20', 52, ifB, 5002);
  maps.endpoints.update(a.ip, a.info);
  maps.endpoints.update(b.ip, b.info);
});
afterAll(() => {
  dp?.dispose();
  links?.remove();
});

const calls = (which: number): number =>
  filler.map('filler_calls', { key: codec.u32, value: codec.u64n }).lookup(which) ?? 0;
const toB = (sport: number): Buffer =>
  packet().eth().ipv4({ src: a.ip, dst: b.ip }).tcp({ sport, dport: 80 }).build();

describe('slots filled by another object', () => {
  it('an empty policy slot falls through to the default (allow, deliver)', () => {
    expect(slots.get(slotIndex('from-container', 'policy'))).toBeUndefined();
    const r = run(fromContainer, toB(46000), a.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context.slot).not.toBe(SLOT_NONE);
  });

  it('a policy program denies through the base (counted as policy-denied) until the slot is cleared', () => {
    const policy = slotIndex('from-container', 'policy');
    const denied = metricPackets(maps.metrics, DropReason.policyDenied, Direction.egress);
    slots.set(policy, filler.program('cil_policy_deny'));
    try {
      const r = run(fromContainer, toB(46001), a.info.hostIfindex);
      expect(r.retval).toBe(TC_ACT.SHOT);
      expect(r.context).toMatchObject({
        slot: 1,
        dropReason: DropReason.policyDenied,
        attachPoint: AttachPointIndex['from-container'],
      });
      expect(calls(0)).toBe(1);
      expect(metricPackets(maps.metrics, DropReason.policyDenied, Direction.egress)).toBe(denied + 1);
    } finally {
      expect(slots.clear(policy)).toBe(true);
    }
    expect(run(fromContainer, toB(46002), a.info.hostIfindex).retval).toBe(TC_ACT.REDIRECT);
    expect(calls(0)).toBe(1);
  });

  it('a forward program replaces the default delivery, and clearing it restores the redirect', () => {
    const forward = slotIndex('from-container', 'forward');
    slots.set(forward, filler.program('cil_forward_to_stack'));
    try {
      const r = run(fromContainer, toB(46003), a.info.hostIfindex);
      expect(r.retval).toBe(TC_ACT.OK);
      expect(r.context).toMatchObject({ slot: 4, targetIfindex: 0 });
      expect(calls(1)).toBe(1);
    } finally {
      slots.clear(forward);
    }
    const r = run(fromContainer, toB(46004), a.info.hostIfindex);
    expect(r.retval).toBe(TC_ACT.REDIRECT);
    expect(r.context.targetIfindex).toBe(b.info.hostIfindex);
    expect(calls(1)).toBe(1);
  });

  it('the to-container slots of the destination run on local delivery', () => {
    // Slot programs are per attach point: the same deny in to-container's policy slot.
    const policy = slotIndex('to-container', 'policy');
    slots.set(policy, filler.program('cil_policy_deny'));
    try {
      const denied = metricPackets(maps.metrics, DropReason.policyDenied, Direction.ingress);
      const r = run(fromContainer, toB(46005), a.info.hostIfindex);
      expect(r.retval).toBe(TC_ACT.SHOT);
      // Back through to-container's resume: dropped as the destination's ingress.
      expect(r.context).toMatchObject({ attachPoint: AttachPointIndex['to-container'], endpointId: b.info.endpointId });
      expect(metricPackets(maps.metrics, DropReason.policyDenied, Direction.ingress)).toBe(denied + 1);
    } finally {
      slots.clear(policy);
    }
    expect(run(fromContainer, toB(46006), a.info.hostIfindex).retval).toBe(TC_ACT.REDIRECT);
  });
});
