// Policy routing rules through the API, checked with iproute2 in a scratch namespace.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { NetlinkInputError } from './errors.js';
import { Scratch } from './test-support.js';

describe('fwmark rules', () => {
  const scratch = new Scratch();
  afterEach(() => scratch.cleanup());

  it('adds a rule once (ensure is idempotent), lists and deletes it', async () => {
    const ns = await scratch.netns('rules');
    const spec = { fwmark: 0x200, mask: 0xf00, table: 2004, priority: 9 };
    await ns.nl.ensureFwmarkRule(spec);
    await ns.nl.ensureFwmarkRule(spec);
    const shown = execFileSync('ip', ['-n', ns.name, 'rule', 'show'], { encoding: 'utf8' });
    expect(shown.match(/^9:\s+from all fwmark 0x200\/0xf00 lookup 2004/gm)).toHaveLength(1);
    expect((await ns.nl.listFwmarkRules()).filter((r) => r.priority === 9)).toEqual([{ fwmark: 0x200, mask: 0xf00, table: 2004, priority: 9 }]);
    await ns.nl.deleteFwmarkRule(spec);
    expect(execFileSync('ip', ['-n', ns.name, 'rule', 'show'], { encoding: 'utf8' })).not.toMatch(/fwmark 0x200/);
    await expect(ns.nl.ensureFwmarkRule({ ...spec, table: 0 })).rejects.toThrow(NetlinkInputError);
  });
});
