import { afterEach, describe, expect, it } from 'vitest';
import { loadTestObject, packet, TC_ACT, type LoadedTestObject } from './testing/index.js';

let loaded: LoadedTestObject | undefined;
afterEach(() => {
  loaded?.dispose();
  loaded = undefined;
});

const frame = packet().eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).udp({ sport: 1, dport: 2 }).build();

/** tailcall.c's cls_base tail-calls this index (CILIA_SLOT_POLICY) of its 5-entry `slots`. */
const POLICY_SLOT = 1;

describe('ProgramArray (tail-call slots)', () => {
  it('falls through while a slot is empty, runs what is installed, swaps and clears', () => {
    loaded = loadTestObject('tailcall');
    const obj = loaded.object;
    const slots = obj.programArray('slots');
    const base = obj.program('cls_base');
    const deny = obj.program('cls_policy_deny');
    const redirect = obj.program('cls_policy_redirect');
    expect(slots.size).toBe(5);

    expect(base.testRun({ data: frame }).retval).toBe(TC_ACT.OK);
    slots.set(POLICY_SLOT, deny);
    expect(slots.get(POLICY_SLOT)).toBe(deny.id);
    expect(base.testRun({ data: frame }).retval).toBe(TC_ACT.SHOT);
    slots.set(POLICY_SLOT, redirect);
    expect(base.testRun({ data: frame }).retval).toBe(TC_ACT.REDIRECT);
    expect(slots.clear(POLICY_SLOT)).toBe(true);
    expect(slots.clear(POLICY_SLOT)).toBe(false);
    expect(slots.get(POLICY_SLOT)).toBeUndefined();
    expect(base.testRun({ data: frame }).retval).toBe(TC_ACT.OK);
  });

  it('refuses slots out of range and maps that are not program arrays', () => {
    loaded = loadTestObject('tailcall');
    const slots = loaded.object.programArray('slots');
    expect(() => slots.set(5, loaded!.object.program('cls_policy_deny'))).toThrow(/slot 5 is outside 0..4/);
    const maps = loadTestObject('counter');
    try {
      expect(() => maps.object.programArray('version_hits')).toThrow(/is not a program array/);
    } finally {
      maps.dispose();
    }
  });
});
