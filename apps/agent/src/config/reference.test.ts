import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { agentSection } from './agent-section.js';
import { renderConfigReference } from './reference.js';

describe('config reference', () => {
  it('docs/config-reference.md is the generated reference (regenerate: npm run config-reference -w @cilia/agent)', () => {
    const committed = readFileSync(new URL('../../../../docs/config-reference.md', import.meta.url), 'utf8');
    expect(committed).toBe(renderConfigReference([]));
  });

  it('documents every key of the agent section with its default', () => {
    const text = renderConfigReference([]);
    for (const key of Object.keys(agentSection.shape)) expect(text).toContain(`| \`agent.${key}\` |`);
    expect(text).toContain('`"/var/run/cilia/cilia.sock"`');
  });
});
