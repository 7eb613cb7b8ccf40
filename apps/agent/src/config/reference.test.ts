import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultPlugins } from '../builtin.js';
import { agentSection } from './agent-section.js';
import { renderConfigReference } from './reference.js';

describe('config reference', () => {
  it('docs/config-reference.md is the generated reference (regenerate: npm run config-reference -w @cilia/agent)', () => {
    const committed = readFileSync(new URL('../../../../docs/config-reference.md', import.meta.url), 'utf8');
    expect(committed).toBe(renderConfigReference(defaultPlugins().map((c) => c.definition)));
  });

  it('documents every key of the agent section with its default', () => {
    const text = renderConfigReference(defaultPlugins().map((c) => c.definition));
    for (const key of Object.keys(agentSection.shape)) expect(text).toContain(`| \`agent.${key}\` |`);
    expect(text).toContain('`"/var/run/cilia/cilia.sock"`');
    expect(text).toContain('| `ipam.podCIDRs` | list of string | `["10.200.0.0/24"]` |');
  });
});
