// The alerting rules shipped in examples/prometheus: promtool (Debian's prometheus package)
// accepts them, and their unit tests — one alert firing for each rule that should — pass.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../support/agent.js';

const DIR = join(REPO, 'examples/prometheus');
const promtool = (...args: string[]) => spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8' });

describe('examples/prometheus/cilia.rules.yml', () => {
  it('passes promtool check rules', () => {
    const r = promtool('check', 'rules', 'cilia.rules.yml');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS: 5 rules found');
  });

  it('fires its alerts in promtool test rules (agent down, drops rising, fail closed, lost events), and only those', () => {
    const r = promtool('test', 'rules', 'cilia.rules.test.yml');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  });

  it('promtool notices an alert that does not fire as the test expects (the tests bite)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cilia-rules-'));
    try {
      copyFileSync(join(DIR, 'cilia.rules.yml'), join(dir, 'cilia.rules.yml'));
      // node-1 never goes down: the CiliaAgentDown expectation must fail.
      const tests = readFileSync(join(DIR, 'cilia.rules.test.yml'), 'utf8').replace("values: '1 1 1 0 0 0 0 0 0'", "values: '1x8'");
      writeFileSync(join(dir, 'cilia.rules.test.yml'), tests);
      const r = spawnSync('promtool', ['test', 'rules', 'cilia.rules.test.yml'], { cwd: dir, encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/FAILED:\s+alertname: CiliaAgentDown/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
