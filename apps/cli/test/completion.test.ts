// The completion scripts, driven by the shells themselves: bash sources `cilia completion bash`
// and its completion function answers what <TAB> would offer.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../src/index.js';

async function cilia(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const code = await run(argv, { stdout: { write: (t: string) => (out.stdout += t) }, stderr: { write: (t: string) => (out.stderr += t) }, env: {} });
  return { code, ...out };
}

describe('cilia completion', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cilia-completion-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('bash: sourced, it completes commands, subcommands, aliases, flags and -o values', async () => {
    const script = await cilia('completion', 'bash');
    expect(script.code).toBe(0);
    const file = join(dir, 'cilia.bash');
    writeFileSync(file, script.stdout);
    // Each line: the words typed so far (the last one being completed) → what <TAB> offers.
    const cases: [string, string][] = [
      ['cilia en', 'endpoint'],
      ['cilia endpoint g', 'get'],
      ['cilia bpf c', 'ct'],
      ['cilia bpf ct l', 'list ls'],
      ['cilia --socket /tmp/x.sock st', 'status'],
      ['cilia status --b', '--brief'],
      ['cilia status -o j', 'json'],
      ['cilia policy list --out', '--output'],
      ['cilia completion z', 'zsh'],
      ['cilia nosuch', ''],
    ];
    const probe = cases
      .map(([line]) => {
        const words = line.split(' ');
        return `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _cilia; echo "\${COMPREPLY[*]}"`;
      })
      .join('\n');
    const r = spawnSync('bash', ['--norc', '--noprofile', '-c', `source ${file}\ncomplete -p cilia\n${probe}`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const [registered, ...answers] = r.stdout.split('\n');
    expect(registered).toBe('complete -F _cilia cilia');
    expect(answers.slice(0, cases.length)).toEqual(cases.map(([, offered]) => offered));
  });

  it('zsh and fish scripts; an unknown shell is a usage error', async () => {
    const zsh = await cilia('completion', 'zsh');
    expect(zsh.stdout).toMatch(/^#compdef cilia\n/);
    expect(zsh.stdout).toContain('bashcompinit');
    const fish = await cilia('completion', 'fish');
    expect(fish.stdout).toContain(`complete -c cilia -n 'test "(__cilia_path)" = ""' -a '`);
    expect(fish.stdout).toContain(`complete -c cilia -n 'test "(__cilia_path)" = "bpf ct"' -a 'list ls'`);
    expect(fish.stdout).toContain(`complete -c cilia -n 'test "(__cilia_path)" = "status"' -l brief`);
    const bad = await cilia('completion', 'tcsh');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("cilia: command-argument value 'tcsh' is invalid for argument 'shell'. Allowed choices are bash, zsh, fish.\n");
  });
});
