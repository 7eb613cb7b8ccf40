import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Endpoint } from '@cilia/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  AgentApiError,
  AgentClient,
  AgentClientError,
  AgentResponseError,
  AgentTimeoutError,
  AgentUnreachableError,
  DEFAULT_SOCKET,
  PolicyWaitTimeoutError,
  type AgentStatus,
  type PolicyTraceResponse,
} from './index.js';

/** What the test server saw of one request. */
interface Seen {
  readonly method: string;
  readonly url: string;
  readonly contentType: string | undefined;
  readonly body: unknown;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: unknown) => void;

let dir: string;
let socketPath: string;
let server: Server | undefined;
let seen: Seen[];

/** A real HTTP server on a real unix socket; `handler` answers every request. */
async function serve(handler: Handler): Promise<AgentClient> {
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body: unknown = text ? JSON.parse(text) : undefined;
    seen.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], body });
    handler(req, res, body);
  });
  server.listen(socketPath);
  await once(server, 'listening');
  return new AgentClient({ socketPath });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

/** The error a call rejects with (the test fails if it resolves). */
async function failure(call: Promise<unknown>): Promise<AgentClientError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentClientError);
  return err as AgentClientError;
}

const endpoint = (id: number, policyRevision: number): Endpoint =>
  ({ id, name: `pod-${id}`, namespace: 'x', labels: {}, policyRevision }) as unknown as Endpoint;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cilia-api-client-'));
  socketPath = join(dir, 'cilia.sock');
  seen = [];
});

afterEach(async () => {
  server?.closeAllConnections();
  if (server?.listening) await new Promise((resolve) => server!.close(resolve));
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('AgentClient: answers', () => {
  it('GETs a route and returns its parsed JSON', async () => {
    const status = { node: 'node-a', health: 'ok', problems: [], plugins: [] } as unknown as AgentStatus;
    const client = await serve((_req, res) => json(res, 200, status));
    expect(await client.status()).toEqual(status);
    expect(seen).toEqual([{ method: 'GET', url: '/v1/status', contentType: undefined, body: undefined }]);
  });

  it('sends each route its method, path, query and JSON body', async () => {
    const trace: PolicyTraceResponse = {
      verdict: 'allowed',
      egress: { enforced: false, verdict: 'allowed', allowedBy: [], deniedBy: [], lines: [] },
      ingress: { enforced: true, verdict: 'allowed', allowedBy: ['shop/web'], deniedBy: [], lines: ['allowed'] },
    };
    const client = await serve((req, res) => json(res, req.method === 'POST' && req.url === '/v1/endpoints' ? 201 : 200, req.url === '/v1/policy/trace' ? trace : { revision: 8, deleted: [] }));
    await client.endpoints.list();
    await client.endpoints.list({ containerId: 'c 1', interfaceName: 'eth0' });
    await client.endpoints.get(12);
    await client.endpoints.create({ name: 'web', namespace: 'shop', labels: { app: 'web' } });
    await client.endpoints.delete(12);
    await client.endpoints.deleteAttachment({ containerId: 'c1' });
    await client.endpoints.gc([{ containerId: 'c1', interfaceName: 'eth0' }]);
    await client.identities.list();
    await client.identities.get(256);
    await client.ipcache.list();
    await client.nodes.list();
    await client.manifests();
    await client.plugins();
    await client.config();
    expect(await client.policy.import([{ kind: 'NetworkPolicy' }])).toEqual({ revision: 8, deleted: [] });
    await client.policy.get();
    await client.policy.delete({ name: 'allow-web', namespace: 'shop' });
    await client.policy.delete({ all: true });
    expect(await client.policy.trace({ src: { labels: { 'k8s:app': 'web' } }, dst: { labels: {} }, dport: 80, protocol: 'TCP' })).toEqual(trace);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET /v1/endpoints',
      'GET /v1/endpoints?containerId=c+1&interfaceName=eth0',
      'GET /v1/endpoints/12',
      'POST /v1/endpoints',
      'DELETE /v1/endpoints/12',
      'DELETE /v1/endpoints?containerId=c1',
      'POST /v1/endpoints/gc',
      'GET /v1/identities',
      'GET /v1/identities/256',
      'GET /v1/ipcache',
      'GET /v1/nodes',
      'GET /v1/manifests',
      'GET /v1/plugins',
      'GET /v1/config',
      'POST /v1/policy',
      'GET /v1/policy',
      'DELETE /v1/policy?name=allow-web&namespace=shop',
      'DELETE /v1/policy?all=true',
      'POST /v1/policy/trace',
    ]);
    const posts = seen.filter((s) => s.method === 'POST');
    expect(posts.map((s) => s.contentType)).toEqual(Array(posts.length).fill('application/json'));
    expect(posts.map((s) => s.body)).toEqual([
      { name: 'web', namespace: 'shop', labels: { app: 'web' } },
      { valid: [{ containerId: 'c1', interfaceName: 'eth0' }] },
      { documents: [{ kind: 'NetworkPolicy' }] },
      { src: { labels: { 'k8s:app': 'web' } }, dst: { labels: {} }, dport: 80, protocol: 'TCP' },
    ]);
  });

  it('uses the default socket when given none', () => {
    expect(new AgentClient().socketPath).toBe(DEFAULT_SOCKET);
  });

  it('reaches any route through request()', async () => {
    const client = await serve((_req, res) => json(res, 200, { hello: 'world' }));
    expect(await client.request('PUT', '/v1/plugin-x/thing', { query: { n: 1, dry: true, skip: undefined }, body: [1] })).toEqual({ hello: 'world' });
    expect(seen).toEqual([{ method: 'PUT', url: '/v1/plugin-x/thing?n=1&dry=true', contentType: 'application/json', body: [1] }]);
  });
});

describe('AgentClient: errors', () => {
  it("carries the agent's status, error text and field path", async () => {
    const client = await serve((_req, res) => json(res, 400, { error: 'expected a string', path: 'documents[1].metadata.name' }));
    const err = await failure(client.policy.import([{}, {}]));
    expect(err).toBeInstanceOf(AgentApiError);
    expect(err).toMatchObject({
      status: 400,
      error: 'expected a string',
      path: 'documents[1].metadata.name',
      route: 'POST /v1/policy',
      socketPath,
      message: 'expected a string (at documents[1].metadata.name)',
    });
  });

  it('says so when an error answer carries no error text', async () => {
    const client = await serve((_req, res) => json(res, 502, '<html>bad gateway</html>'));
    const err = await failure(client.plugins());
    expect(err).toBeInstanceOf(AgentApiError);
    expect(err).toMatchObject({ status: 502, error: undefined, path: undefined, message: 'the agent answered GET /v1/plugins with HTTP 502 and no error message' });
  });

  it('refuses a 2xx answer that is not JSON', async () => {
    const client = await serve((_req, res) => json(res, 200, 'not json'));
    const err = await failure(client.config());
    expect(err).toBeInstanceOf(AgentResponseError);
    expect(err.message).toBe('the agent answered GET /v1/config with a body that is not JSON');
  });

  it('names the socket when it does not exist', async () => {
    const client = new AgentClient({ socketPath });
    const err = await failure(client.status());
    expect(err).toBeInstanceOf(AgentUnreachableError);
    expect(err).toMatchObject({ code: 'ENOENT', route: 'GET /v1/status', message: `cannot reach the agent at ${socketPath}: no such socket (is cilia-agent running?)` });
  });

  it('names the socket when nobody accepts connections on it', async () => {
    await writeFile(socketPath, '');
    const err = await failure(new AgentClient({ socketPath }).endpoints.list());
    expect(err).toBeInstanceOf(AgentUnreachableError);
    expect(err).toMatchObject({ code: 'ECONNREFUSED', message: `cannot reach the agent at ${socketPath}: connection refused (is cilia-agent running?)` });
  });

  it('gives up after the timeout, reads and writes each with their own', async () => {
    await serve(() => undefined);
    const client = new AgentClient({ socketPath, timeoutMs: 50, writeTimeoutMs: 150 });
    const started = Date.now();
    const read = await failure(client.status());
    expect(read).toBeInstanceOf(AgentTimeoutError);
    expect(read.message).toBe(`the agent at ${socketPath} did not answer GET /v1/status within 50 ms`);
    const write = await failure(client.policy.import([{}]));
    expect(write).toMatchObject({ timeoutMs: 150, message: `the agent at ${socketPath} did not answer POST /v1/policy within 150 ms` });
    expect(await failure(client.request('GET', '/v1/slow', { timeoutMs: 20 }))).toMatchObject({ timeoutMs: 20 });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('AgentClient: policy.wait', () => {
  it('polls the endpoints until all realized the revision, reporting progress as it changes', async () => {
    const answers = [[endpoint(1, 4), endpoint(2, 4)], [endpoint(1, 5), endpoint(2, 4)], [endpoint(1, 5), endpoint(2, 4)], [endpoint(1, 6), endpoint(2, 5)]];
    const client = await serve((_req, res) => json(res, 200, answers.shift() ?? []));
    const progress: string[] = [];
    await client.policy.wait(5, { pollMs: 1, onProgress: (p) => progress.push(`${p.realized}/${p.total}`) });
    expect(progress).toEqual(['0/2', '1/2', '2/2']);
    expect(seen.map((s) => s.url)).toEqual(Array(4).fill('/v1/endpoints'));
  });

  it('names the endpoints behind on timeout', async () => {
    const client = await serve((_req, res) => json(res, 200, [endpoint(1, 7), endpoint(3, 2)]));
    const err = await client.policy.wait(7, { timeoutMs: 100, pollMs: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyWaitTimeoutError);
    expect(err).toMatchObject({ revision: 7, behind: [expect.objectContaining({ id: 3 })], message: 'timed out after 100 ms: 1 endpoint(s) below revision 7: 3 (x/pod-3) at 2' });
  });
});
