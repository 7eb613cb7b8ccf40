import { ApiRequestError, type Logger } from '@cilia/core';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { KvIdentityAllocator } from './allocator.js';
import { identityRoutes } from './api.js';
import { identityConfig } from './plugin.js';
import { MemoryKv } from './testing/memory-kv.js';

describe('identity config', () => {
  it('applies defaults', () => {
    const c = identityConfig.parse({});
    expect(c.prefix).toBe('cilium/state/identities/v1/');
    expect(c.gcGraceSeconds).toBe(900);
    expect(c.labels.exclude).toContain('pod-template-hash$');
  });
  it('names the bad field', () => {
    const bad = identityConfig.safeParse({ labels: { exclude: ['ok', '(unclosed'] } });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path).toEqual(['labels', 'exclude', 1]);
    expect(identityConfig.safeParse({ prefix: 'no-slash' }).error!.issues[0]!.path).toEqual(['prefix']);
    expect(identityConfig.safeParse({ gcGrace: 1 }).success).toBe(false);
  });
});

describe('/v1/identities', () => {
  it('lists, gets, 404s an unknown id and 400s a bad one', async () => {
    const allocator = new KvIdentityAllocator({ kv: new MemoryKv(), node: 'n', logger: pino({ level: 'silent' }) as unknown as Logger });
    const { identity } = await allocator.allocate({ 'k8s:io.kubernetes.pod.namespace': 'x', 'k8s:app': 'a' });
    const [list, get] = identityRoutes(() => allocator);
    const listed = (await list!.handler({ params: {}, query: {}, body: undefined })).body as { id: number }[];
    expect(listed.map((i) => i.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, identity.id]);
    expect((await get!.handler({ params: { id: String(identity.id) }, query: {}, body: undefined })).body).toEqual(identity);
    const missing = (() => get!.handler({ params: { id: '999' }, query: {}, body: undefined })) as () => unknown;
    expect(missing).toThrow(ApiRequestError);
    expect(missing).toThrow(expect.objectContaining({ status: 404, path: 'id' }));
    expect(() => get!.handler({ params: { id: 'abc' }, query: {}, body: undefined })).toThrow(expect.objectContaining({ status: 400, path: 'id' }));
    allocator.stop();
  });
});
