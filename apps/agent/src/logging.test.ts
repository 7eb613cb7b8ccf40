import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, redactPaths } from './logging.js';

describe('the root logger', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('censors secret config fields however a component logs them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cilia-log-'));
    dirs.push(dir);
    const file = join(dir, 'agent.log');
    const log = createLogger('info', file, [['kvstore-etcd', 'auth', 'password'], ['acme', 'tokens', '*', 'value']]);
    log.info({ config: { 'kvstore-etcd': { auth: { username: 'root', password: 'hunter2' } } } }, 'whole config');
    log.child({ subsys: 'etcd' }).info({ auth: { username: 'root', password: 'hunter2' } }, 'own section');
    log.info({ tokens: [{ name: 'a', value: 'tok-1' }, { name: 'b', value: 'tok-2' }] }, 'a list');
    log.info({ password: 'not-a-config-field' }, 'unrelated');
    log.flush();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.msg)).toEqual(['whole config', 'own section', 'a list', 'unrelated']);
    expect(lines[0]!.config).toEqual({ 'kvstore-etcd': { auth: { username: 'root', password: '[redacted]' } } });
    expect(lines[1]!.auth).toEqual({ username: 'root', password: '[redacted]' });
    expect(lines[2]!.tokens).toEqual([{ name: 'a', value: '[redacted]' }, { name: 'b', value: '[redacted]' }]);
    // Only marked paths: a field merely named "password" elsewhere is the caller's business.
    expect(lines[3]!.password).toBe('not-a-config-field');
  });

  it('renders keys that are not identifiers in brackets', () => {
    expect(redactPaths([['kvstore-etcd', 'auth', 'password']])).toEqual([
      '["kvstore-etcd"].auth.password',
      'config["kvstore-etcd"].auth.password',
      'auth.password',
      'config.auth.password',
    ]);
  });
});
