// `POST /v1/flows` and `GET /v1/flows/status` on the agent socket. A followed query answers
// NDJSON, one FlowsStreamItem a line, for as long as the client stays connected; a client
// slower than the flows loses flows (counted, and reported to it once it catches up) instead of
// growing the agent's memory.
import { PassThrough } from 'node:stream';
import { ApiRequestError, defineRoute, z, type ApiRoute, type Flow, type WebPage } from '@cilia/core';
import type { FlowFilterSpec, FlowsRequest, FlowsStatus, LostEvents, ServiceMapResponse } from '@cilia/api-client';
import { buildServiceMap, renderServiceMapHtml, renderServiceMapSvg } from './servicemap.js';
import { bufferQuery, streamFlows } from './stream.js';
import { compileRequest, type FlowPredicate } from './filter.js';
import type { FlowObserver } from './observer.js';

/** One line of a followed query, before JSON turns its flow's time into a string (FlowsStreamItem). */
export type StreamItem = { readonly flow: Flow } | { readonly lostEvents: LostEvents };

/** Flows across the cluster, for `allNodes` (the relay); absent on an agent without one. */
export interface ClusterFlows {
  query(request: FlowsRequest, matches: FlowPredicate): Promise<Flow[]>;
  follow(request: FlowsRequest, matches: FlowPredicate, sink: (item: StreamItem) => boolean): () => void;
}

/** Bytes a follower's stream may hold before its flows are dropped. */
const STREAM_HIGH_WATER = 1 << 20;

export function flowRoutes(observer: () => FlowObserver, cluster?: () => ClusterFlows | undefined): ApiRoute[] {
  return [
    defineRoute({
      method: 'POST',
      path: '/v1/flows',
      summary: 'the buffered flows matching Hubble-style filters (whitelist, blacklist, number/first, since/until); with follow, NDJSON of flows and lost-event reports as they come; allNodes through the relay',
      body: flowsRequestSchema,
      async handler(req) {
        const request = req.body;
        const matches = compileRequest(request);
        const remote = request.allNodes ? cluster?.() : undefined;
        if (request.allNodes && !remote) throw new ApiRequestError('this agent has no relay: set hubble.relay.enabled', 'allNodes', 501);
        if (!request.follow) {
          const flows = remote ? await remote.query(request, matches) : observer().query({ ...bufferQuery(request), matches });
          return { body: flows };
        }
        return { body: followStream(observer(), request, matches, remote) };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/flows/servicemap',
      summary: 'the service map of the buffered flows matching the filters: workloads, connections with counts and verdicts, drawn as SVG and HTML',
      body: flowsRequestSchema,
      async handler(req) {
        const request = req.body;
        if (request.follow) throw new ApiRequestError('a service map is of the buffered flows: follow is not allowed', 'follow');
        const matches = compileRequest(request);
        const remote = request.allNodes ? cluster?.() : undefined;
        const flows = remote ? await remote.query(request, matches) : observer().query({ ...bufferQuery(request), matches });
        const map = buildServiceMap(flows);
        return { body: { ...map, svg: renderServiceMapSvg(map), html: renderServiceMapHtml(map) } satisfies ServiceMapResponse };
      },
    }),
    {
      method: 'GET',
      path: '/v1/flows/status',
      summary: 'flows buffered and seen, and the events lost in the datapath (ring buffer full) and in the agent (a follower too slow)',
      handler: () => ({ body: observer().status() satisfies FlowsStatus }),
    },
  ];
}

/** The buffered flows, then every new one, as NDJSON until the client goes. */
function followStream(observer: FlowObserver, request: FlowsRequest, matches: FlowPredicate, remote: ClusterFlows | undefined): PassThrough {
  const out = new PassThrough({ highWaterMark: STREAM_HIGH_WATER });
  const stop = streamFlows({
    observer,
    request,
    matches,
    remote,
    sink: {
      write: (item) => out.write(`${JSON.stringify(item)}\n`),
      congested: () => out.destroyed || out.writableLength > STREAM_HIGH_WATER,
      end: () => out.end(),
    },
  });
  out.on('close', stop);
  // The headers go out at once, so the client knows it is following before the first flow.
  out.write('');
  return out;
}

const strings = (what: string) => z.array(z.string(), { error: `expected a list of ${what}` });
const integers = (what: string, max = 0xffff_ffff) => z.array(z.number().int().min(0).max(max), { error: `expected a list of ${what}` });
const sides = (field: string, schema: z.ZodType, what: string) => ({
  [`source${field}`]: schema.optional().describe(`the source's ${what}`),
  [`destination${field}`]: schema.optional().describe(`the destination's ${what}`),
});
const tcpFlags = z.strictObject(Object.fromEntries(['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'].map((f) => [f, z.boolean().optional()])));

/** One Hubble-style filter: the shape here, each value (CIDRs, selectors, ports) checked when compiled. */
const filterSchema = z.strictObject(
  {
    ...sides('Ip', strings('addresses or CIDRs'), 'addresses or CIDRs'),
    ...sides('Pod', strings('pods'), '`namespace/pod-prefix`, `pod-prefix` or `namespace/`'),
    ...sides('Label', strings('label selectors'), 'label selectors (`key=value`, `key`, `!key`)'),
    ...sides('Identity', integers('identities'), 'security identities'),
    ...sides('Port', integers('ports', 65535), 'L4 ports'),
    verdict: z.array(z.enum(['FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED'])).optional(),
    eventType: z.array(z.enum(['drop', 'trace', 'policy-verdict', 'l7'])).optional(),
    protocol: strings('protocols').optional().describe('tcp, udp, icmp (icmpv4), icmpv6, sctp'),
    trafficDirection: z.array(z.enum(['ingress', 'egress'])).optional(),
    reply: z.array(z.boolean()).optional(),
    nodeName: strings('node names').optional().describe('node names, `*` matching any run of characters'),
    endpoint: integers('endpoint ids').optional().describe("either side is this node's endpoint with one of these ids"),
    uuid: strings('flow ids').optional(),
    tcpFlags: z.array(tcpFlags).optional().describe('each set of flags must all be set in the TCP header'),
  },
  { error: 'expected a filter object' },
) as unknown as z.ZodType<FlowFilterSpec>;

const isoTime = z.string().refine((v) => !Number.isNaN(Date.parse(v)), { error: (i) => `${JSON.stringify(i.input)} is not an ISO time` });

/** Body of `POST /v1/flows` and `/v1/flows/servicemap`. */
const flowsRequestSchema = z
  .strictObject(
    {
      whitelist: z.array(filterSchema, { error: 'expected a list of filters' }).optional().describe('a flow matching any of these filters (every one when none)'),
      blacklist: z.array(filterSchema, { error: 'expected a list of filters' }).optional().describe('and none of these'),
      number: z.number().int().min(0).max(0xffff_ffff).optional().describe('at most this many flows from the buffer, the last ones (the first ones with first)'),
      first: z.boolean().optional(),
      since: isoTime.optional().describe('an ISO time: flows from the buffer at or after it'),
      until: isoTime.optional().describe('an ISO time: flows from the buffer at or before it'),
      follow: z.boolean().optional().describe('keep streaming flows as they come (NDJSON of flows and lost-event reports)'),
      allNodes: z.boolean().optional().describe('the flows of every node, through the relay'),
    },
    { error: 'expected a JSON object' },
  )
  .refine((r) => !(r.first && r.follow), { error: 'first cannot be combined with follow', path: ['first'] }) satisfies z.ZodType<FlowsRequest>;

/**
 * The service map pages on the agent's HTTP address: `/servicemap` (HTML) and `/servicemap.svg`,
 * of the buffered flows, optionally of one namespace (`?namespace=`), since an ISO time
 * (`?since=`) or the last N (`?last=`).
 */
export function serviceMapPages(observer: () => FlowObserver): WebPage[] {
  const map = (query: Readonly<Record<string, string | undefined>>) => {
    const spec = query['namespace'] ? [{ sourcePod: [`${query['namespace']}/`] }, { destinationPod: [`${query['namespace']}/`] }] : [];
    const { last, since } = query;
    if (last !== undefined && !/^\d{1,7}$/.test(last)) throw new ApiRequestError(`${JSON.stringify(last)} is not a number of flows`, 'last');
    if (since !== undefined && Number.isNaN(Date.parse(since))) throw new ApiRequestError(`${JSON.stringify(since)} is not an ISO time`, 'since');
    return buildServiceMap(
      observer().query({ matches: compileRequest({ whitelist: spec }), ...(last !== undefined ? { number: Number(last) } : {}), ...(since !== undefined ? { since: new Date(since) } : {}) }),
    );
  };
  const title = (query: Readonly<Record<string, string | undefined>>) => `Cilia service map — ${observer().node}${query['namespace'] ? `, namespace ${query['namespace']}` : ''}`;
  return [
    { path: '/servicemap', contentType: 'text/html; charset=utf-8', render: (q) => renderServiceMapHtml(map(q), title(q)) },
    { path: '/servicemap.svg', contentType: 'image/svg+xml', render: (q) => renderServiceMapSvg(map(q), title(q)) },
  ];
}
