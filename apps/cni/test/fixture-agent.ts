import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Endpoint, EndpointCreateRequest, Health } from '@cilia/core';

/** A request the fixture received. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly body: unknown;
}

/** A canned answer that replaces the next response to a route (`METHOD /path`); `hang` never answers. */
export type InjectedResponse = { readonly status: number; readonly body: unknown } | 'hang';

/**
 * A small HTTP server on a unix socket that implements the agent's endpoints API contract
 * (POST/GET/DELETE /v1/endpoints, POST /v1/endpoints/gc, GET /v1/status) in memory. When the
 * requested netns exists under /run/netns it also plumbs a veth pair there with `ip` (MACs,
 * address, up), so CHECK's kernel inspection has something real to look at. It is a fixture for
 * the plugin's own logic; the real agent is exercised by test/e2e/cni.test.ts.
 */
export interface FixtureAgent {
  readonly socket: string;
  readonly endpoints: Map<number, Endpoint>;
  readonly requests: SeenRequest[];
  health: Health;
  problems: string[];
  /** Answers the next request to `route` with `response` instead. */
  inject(route: string, response: InjectedResponse): void;
  close(): Promise<void>;
}

/** Starts the fixture on `socket`. */
export async function startFixtureAgent(socket: string): Promise<FixtureAgent> {
  const endpoints = new Map<number, Endpoint>();
  const requests: SeenRequest[] = [];
  const injected = new Map<string, InjectedResponse>();
  let nextId = 1;
  const prefix = `lxf${randomBytes(2).toString('hex')}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const unplumb = (e: Endpoint) => {
    try {
      if (existsSync(e.netns)) ip('link', 'del', e.hostInterface);
    } catch {
      // gone already (the test removed it)
    }
  };
  const state = { health: 'ok' as Health, problems: [] as string[] };

  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    const body = await readJson(req);
    requests.push({ method: req.method ?? '', url: req.url ?? '', body });
    const send = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    const route = `${req.method} ${url.pathname}`;
    const canned = injected.get(route);
    if (canned) {
      injected.delete(route);
      if (canned === 'hang') return;
      return send(canned.status, canned.body);
    }
    const q = url.searchParams;
    const matches = (e: Endpoint) =>
      (!q.has('containerId') || e.containerId === q.get('containerId')) && (!q.has('interfaceName') || e.interfaceName === q.get('interfaceName'));
    switch (route) {
      case 'GET /v1/status':
        return send(200, { version: '0.0.0-fixture', apiVersion: '1.0.0', node: 'fixture', uptimeSeconds: 1, startedAt: new Date().toISOString(), health: state.health, problems: state.problems, plugins: [] });
      case 'GET /v1/endpoints':
        return send(200, [...endpoints.values()].filter(matches));
      case 'POST /v1/endpoints': {
        const r = body as EndpointCreateRequest;
        if (typeof r?.name !== 'string' || !/^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$/.test(r.name)) {
          return send(400, { error: 'not a valid name', path: 'name' });
        }
        const ifName = r.interfaceName ?? 'eth0';
        if (r.containerId && [...endpoints.values()].some((e) => e.containerId === r.containerId && e.interfaceName === ifName)) {
          return send(409, { error: `container ${r.containerId} interface ${ifName} already has an endpoint`, path: 'containerId' });
        }
        const id = nextId++;
        const hex = id.toString(16).padStart(2, '0');
        const endpoint: Endpoint = {
          id,
          name: r.name,
          namespace: r.namespace,
          labels: r.labels,
          ipv4: `10.200.0.${id + 1}`,
          netns: r.netns ?? `/run/netns/${r.name}`,
          hostInterface: `${prefix}${hex}`,
          hostMac: `02:00:00:00:01:${hex}`,
          interfaceName: ifName,
          mac: `02:00:00:00:02:${hex}`,
          ipv4Gateway: '10.200.0.1',
          ...(r.containerId ? { containerId: r.containerId } : {}),
          identity: 5 as Endpoint['identity'],
          state: 'ready',
          policyRevision: 0 as Endpoint['policyRevision'],
        };
        if (r.netns?.startsWith('/run/netns/') && existsSync(r.netns)) {
          const ns = basename(r.netns);
          ip('link', 'add', endpoint.hostInterface, 'address', endpoint.hostMac, 'type', 'veth', 'peer', 'name', ifName, 'address', endpoint.mac, 'netns', ns);
          ip('link', 'set', endpoint.hostInterface, 'up');
          ip('-n', ns, 'link', 'set', ifName, 'up');
          ip('-n', ns, 'addr', 'add', `${endpoint.ipv4}/32`, 'dev', ifName);
        }
        endpoints.set(id, endpoint);
        return send(201, endpoint);
      }
      case 'DELETE /v1/endpoints': {
        const doomed = [...endpoints.values()].filter(matches);
        for (const e of doomed) {
          unplumb(e);
          endpoints.delete(e.id);
        }
        return send(200, { deleted: doomed.length > 0 });
      }
      case 'POST /v1/endpoints/gc': {
        const valid = new Set((body as { valid: { containerId: string; interfaceName: string }[] }).valid.map((v) => `${v.containerId}/${v.interfaceName}`));
        const deleted = [...endpoints.values()].filter((e) => e.containerId && !valid.has(`${e.containerId}/${e.interfaceName}`)).map((e) => e.id);
        for (const id of deleted) {
          unplumb(endpoints.get(id)!);
          endpoints.delete(id);
        }
        return send(200, { deleted });
      }
      default:
        return send(404, { error: `no such API route: ${route}` });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  return {
    socket,
    endpoints,
    requests,
    get health() {
      return state.health;
    },
    set health(h: Health) {
      state.health = h;
    },
    get problems() {
      return state.problems;
    },
    set problems(p: string[]) {
      state.problems = p;
    },
    inject: (route, response) => injected.set(route, response),
    close: () =>
      new Promise<void>((resolve) => {
        for (const e of endpoints.values()) unplumb(e);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString();
  return text ? JSON.parse(text) : undefined;
}

/** A fresh temp directory. */
export function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'cilia-cni-'));
}

/** Removes a temp directory. */
export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}
