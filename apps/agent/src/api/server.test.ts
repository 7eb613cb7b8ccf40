import { lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineRoute, z } from '@cilia/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiServer } from './server.js';

const handlers = { status: () => ({}) as never, plugins: () => [], config: () => ({ sources: [], config: {} }), metrics: async () => [] };

function call(socket: string, method: string, path: string, body?: unknown): Promise<{ status: number; headers: Record<string, unknown>; body: unknown }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath: socket, method, path, headers: data ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

describe('ApiServer', () => {
  let dir: string;
  let server: ApiServer | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cilia-api-'));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates its socket with mode 0660, owned by the configured group', async () => {
    const socket = join(dir, 'api.sock');
    server = new ApiServer(handlers);
    await server.listen(socket, 4242);
    const st = lstatSync(socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(4242);
    // The process umask is back as it was.
    const umask = process.umask();
    expect(umask).not.toBe(0o117);
  });

  it('refuses a path that holds something other than a socket, and leaves it alone', async () => {
    const socket = join(dir, 'not-a-socket');
    writeFileSync(socket, 'precious');
    server = new ApiServer(handlers);
    await expect(server.listen(socket)).rejects.toThrow(`agent.apiSocket: ${socket} exists and is not a socket`);
    expect(lstatSync(socket).isFile()).toBe(true);
    server = undefined;
  });

  it("parses requests with the route's schemas and answers 400 naming the field; refuses a repeated query key without a schema", async () => {
    const socket = join(dir, 'api.sock');
    const seen: unknown[] = [];
    server = new ApiServer(handlers);
    server.addRoutes(
      [
        defineRoute({
          method: 'POST',
          path: '/v1/things',
          body: z.strictObject({ items: z.array(z.strictObject({ name: z.string().min(1) })), count: z.number().int().default(1) }),
          handler: (req) => {
            seen.push(req.body);
            return { body: { items: req.body.items.length } };
          },
        }),
        defineRoute({
          method: 'GET',
          path: '/v1/things',
          query: z.strictObject({ limit: z.coerce.number().int().positive().optional() }),
          handler: (req) => ({ body: { limit: req.query.limit ?? null } }),
        }),
        { method: 'GET', path: '/v1/raw', handler: (req) => ({ body: req.query }) },
      ],
      () => true,
    );
    await server.listen(socket);
    expect(await call(socket, 'POST', '/v1/things', { items: [{ name: 'a' }] })).toMatchObject({ status: 200, body: { items: 1 } });
    expect(seen).toEqual([{ items: [{ name: 'a' }], count: 1 }]);
    const bad = await call(socket, 'POST', '/v1/things', { items: [{ name: 'a' }, { name: '' }] });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ path: 'items[1].name' });
    expect(await call(socket, 'POST', '/v1/things', { items: [], extra: 1 })).toMatchObject({ status: 400, body: { error: 'unknown key', path: 'extra' } });
    expect(await call(socket, 'POST', '/v1/things', 'not an object')).toMatchObject({ status: 400, body: { path: 'body' } });
    expect(await call(socket, 'GET', '/v1/things?limit=5')).toMatchObject({ status: 200, body: { limit: 5 } });
    expect(await call(socket, 'GET', '/v1/things?limit=-1')).toMatchObject({ status: 400, body: { path: 'limit' } });
    expect(await call(socket, 'GET', '/v1/raw?a=1&a=2')).toMatchObject({ status: 400, body: { error: 'given more than once', path: 'a' } });
    expect(await call(socket, 'GET', '/v1/raw?a=1')).toMatchObject({ status: 200, body: { a: '1' } });
    expect(seen).toHaveLength(1);
  });

  it('answers 429 with Retry-After once its requests in flight reach the limit', async () => {
    const socket = join(dir, 'api.sock');
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    server = new ApiServer(handlers, { maxInFlight: 2 });
    server.addRoutes([{ method: 'GET', path: '/v1/slow', handler: async () => (await held, { body: { ok: true } }) }], () => true);
    await server.listen(socket);
    const first = [call(socket, 'GET', '/v1/slow'), call(socket, 'GET', '/v1/slow')];
    await new Promise((r) => setTimeout(r, 100));
    const refused = await call(socket, 'GET', '/v1/slow');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    release();
    expect((await Promise.all(first)).map((r) => r.status)).toEqual([200, 200]);
    expect((await call(socket, 'GET', '/v1/slow')).status).toBe(200);
  });
});
