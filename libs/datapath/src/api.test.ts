import { ApiRequestError, invokeRoute, type ApiRoute, type Endpoint, type EndpointManager } from '@cilia/core';
import { describe, expect, it } from 'vitest';
import { endpointRoutes } from './api.js';
import { EndpointConflictError } from './manager.js';
import { validateCreateRequest } from './validate.js';

const ep = (id: number, containerId?: string, interfaceName = 'eth0'): Endpoint => ({
  id,
  name: `p${id}`,
  namespace: 'ns',
  labels: {},
  ipv4: `10.0.0.${id}`,
  netns: '/run/netns/x',
  hostInterface: `lxc${id}`,
  hostMac: '',
  interfaceName,
  mac: '',
  ...(containerId ? { containerId } : {}),
  identity: 5,
  state: 'ready',
  policyRevision: 0,
});

function fakeManager(initial: Endpoint[], createError?: Error): EndpointManager & { deleted: number[] } {
  const live = new Map(initial.map((e) => [e.id, e]));
  const deleted: number[] = [];
  return {
    deleted,
    async create(req) {
      validateCreateRequest(req);
      if (createError) throw createError;
      return ep(99);
    },
    async updateLabels() {
      throw new Error('unused');
    },
    async delete(id) {
      deleted.push(id);
      return live.delete(id);
    },
    get: (id) => live.get(id),
    findByContainer: (c, i = 'eth0') => [...live.values()].find((e) => e.containerId === c && e.interfaceName === i),
    list: () => [...live.values()],
    subscribe: () => () => undefined,
  };
}

function route(routes: ApiRoute[], method: string, path: string): ApiRoute {
  return routes.find((r) => r.method === method && r.path === path)!;
}

async function call(r: ApiRoute, req: { params?: Record<string, string>; query?: Record<string, string>; body?: unknown }) {
  return invokeRoute(r, req);
}

async function refusal(p: Promise<unknown> | unknown): Promise<ApiRequestError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ApiRequestError);
    return err as ApiRequestError;
  }
  throw new Error('expected a refusal');
}

describe('/v1/endpoints', () => {
  it('creates (201), and maps bad fields to 400 with the path, conflicts to 409, exhaustion to 507', async () => {
    const routes = endpointRoutes(() => fakeManager([]));
    const post = route(routes, 'POST', '/v1/endpoints');
    expect(await call(post, { body: { name: 'a' } })).toMatchObject({ status: 201, body: { id: 99 } });
    const bad = await refusal(call(post, { body: { name: 'a', labels: { x: 1 } } }));
    expect([bad.status, bad.path, bad.message]).toEqual([400, 'labels.x', 'expected a string']);
    const conflict = await refusal(call(endpointRoutes(() => fakeManager([], new EndpointConflictError('taken', 'containerId', ep(1)))).find((r) => r.method === 'POST' && r.path === '/v1/endpoints')!, { body: { name: 'a' } }));
    expect([conflict.status, conflict.path]).toEqual([409, 'containerId']);
    const full = Object.assign(new Error('ipv4 pools are exhausted (10.0.0.0/30: 1 of 1 leased)'), { name: 'IpamExhaustedError' });
    const exhausted = await refusal(call(route(endpointRoutes(() => fakeManager([], full)), 'POST', '/v1/endpoints'), { body: { name: 'a' } }));
    expect(exhausted.status).toBe(507);
    expect(exhausted.message).toMatch(/exhausted/);
  });

  it('lists with filters, gets by id, 404s a missing one and a malformed id', async () => {
    const routes = endpointRoutes(() => fakeManager([ep(1, 'c1'), ep(2, 'c2'), ep(3, 'c2', 'net1')]));
    const list = route(routes, 'GET', '/v1/endpoints');
    expect(((await call(list, { query: { containerId: 'c2' } })).body as Endpoint[]).map((e) => e.id)).toEqual([2, 3]);
    expect(((await call(list, { query: { containerId: 'c2', interfaceName: 'net1' } })).body as Endpoint[]).map((e) => e.id)).toEqual([3]);
    const get = route(routes, 'GET', '/v1/endpoints/:id');
    expect((await call(get, { params: { id: '2' } })).body).toMatchObject({ id: 2 });
    expect((await refusal(call(get, { params: { id: '7' } }))).status).toBe(404);
    expect((await refusal(call(get, { params: { id: 'x1' } }))).path).toBe('id');
  });

  it("adds one endpoint's realized policy to its get, not to the list", async () => {
    const view = {
      revision: 4,
      enforcement: { ingress: 'enforce' as const, egress: 'allow-all' as const },
      entries: [{ identity: 300, direction: 'ingress' as const, protocol: 6, port: 80, endPort: 80, verdict: 'allow' as const, proxyPort: 0 }],
    };
    const routes = endpointRoutes(
      () => fakeManager([ep(1), ep(2)]),
      () => ({ describe: (id: number) => (id === 1 ? view : undefined) }),
    );
    expect((await call(route(routes, 'GET', '/v1/endpoints/:id'), { params: { id: '1' } })).body).toEqual({ ...ep(1), policy: view });
    expect((await call(route(routes, 'GET', '/v1/endpoints/:id'), { params: { id: '2' } })).body).toEqual(ep(2));
    expect(((await call(route(routes, 'GET', '/v1/endpoints'), {})).body as object[]).every((e) => !('policy' in e))).toBe(true);
  });

  it('deletes by container idempotently (CNI DEL) and garbage-collects unlisted attachments (CNI GC)', async () => {
    const manager = fakeManager([ep(1, 'c1'), ep(2, 'c2'), ep(3), ep(4, 'c4', 'net1')]);
    const routes = endpointRoutes(() => manager);
    const byQuery = route(routes, 'DELETE', '/v1/endpoints');
    expect((await call(byQuery, { query: { containerId: 'c1', interfaceName: 'eth0' } })).body).toEqual({ deleted: true });
    expect((await call(byQuery, { query: { containerId: 'c1', interfaceName: 'eth0' } })).body).toEqual({ deleted: false });
    expect((await refusal(call(byQuery, {}))).path).toBe('containerId');
    const gc = route(routes, 'POST', '/v1/endpoints/gc');
    expect((await call(gc, { body: { valid: [{ containerId: 'c4', interfaceName: 'net1' }] } })).body).toEqual({ deleted: [2] });
    expect(manager.list().map((e) => e.id)).toEqual([3, 4]);
    expect((await refusal(call(gc, { body: { valid: [{}] } }))).path).toBe('valid[0].containerId');
  });
});
