import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { composeConfigSchema } from './config.js';
import { definePlugin } from './plugin.js';
import { REDACTED, redactSecrets, secret, secretPaths } from './secrets.js';

describe('secret config fields', () => {
  const section = z.strictObject({
    auth: z
      .strictObject({ user: z.string(), password: secret(z.string().optional().describe('inline password')) })
      .refine((a) => a.user !== '', { message: 'user empty', path: ['user'] })
      .optional(),
    tokens: z.array(z.strictObject({ name: z.string(), value: secret(z.string()) })).default([]),
    byPeer: z.record(z.string(), secret(z.string())).default({}),
    plain: z.string().default('x'),
  });
  const plugin = definePlugin({ name: '@acme/p', version: '1.0.0', apiVersion: '^1', configKey: 'acme', config: section, register() {} });

  it('finds the marked fields through optional, refine, arrays and records, also inside the composed agent schema', () => {
    expect(secretPaths(section)).toEqual([['auth', 'password'], ['tokens', '*', 'value'], ['byPeer', '*']]);
    const composed = composeConfigSchema(z.strictObject({ logLevel: z.string().default('info') }), [plugin]);
    expect(secretPaths(composed)).toEqual([['acme', 'auth', 'password'], ['acme', 'tokens', '*', 'value'], ['acme', 'byPeer', '*']]);
  });

  it('keeps the description beside the mark', () => {
    const json = z.toJSONSchema(section, { io: 'input' }) as unknown as { properties: { auth: { properties: { password: { description?: string } } } } };
    expect(json.properties.auth.properties.password.description).toBe('inline password');
  });

  it('redacts present values only, in a copy, and leaves the rest alone', () => {
    const value = { acme: { auth: { user: 'u', password: 'hunter2' }, tokens: [{ name: 'a', value: 't1' }, { name: 'b', value: 't2' }], byPeer: { n1: 's' }, plain: 'x' } };
    const paths = secretPaths(composeConfigSchema(z.strictObject({}), [plugin]));
    const out = redactSecrets(value, paths);
    expect(out).toEqual({ acme: { auth: { user: 'u', password: REDACTED }, tokens: [{ name: 'a', value: REDACTED }, { name: 'b', value: REDACTED }], byPeer: { n1: REDACTED }, plain: 'x' } });
    expect(value.acme.auth.password).toBe('hunter2');
    expect(JSON.stringify(out)).not.toMatch(/hunter2|t1|t2/);
    const absent = { acme: { auth: { user: 'u' }, tokens: [], byPeer: {}, plain: 'x' } };
    expect(redactSecrets(absent, paths)).toEqual(absent);
  });
});
