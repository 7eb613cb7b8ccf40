// Records → flows, filters, the ring and the metrics, on records encoded with the datapath's own
// codecs (the BTF layout test ties those to the C structs; the e2e test reads real ones).
import { invokeRoute, type Endpoint, type EndpointManager, type Flow, type Identity, type IdentityAllocator, type IpCache, type IpCacheEntry } from '@cilia/core';
import { datapathMaps } from '@cilia/datapath';
import { describe, expect, it } from 'vitest';
import { flowRoutes } from './api.js';
import { buildFlow, MonotonicClock } from './build.js';
import { Enricher } from './enrich.js';
import { compileRequest } from './filter.js';
import { HubbleMetrics } from './metrics.js';
import { FlowObserver } from './observer.js';
import { decodeRecord, recordScratch } from './records.js';
import { FlowRing } from './ring.js';

const { PacketEvent, PolicyVerdictEvent, EventType, DropReason, AttachPointIndex, CtStatus, TracePoint, PolicyVerdict, Direction, PolicyMatch } = datapathMaps;

const web: Endpoint = { id: 12, name: 'web-1', namespace: 'shop', labels: { 'k8s:app': 'web' }, ipv4: '10.200.1.5', netns: '', hostInterface: 'lxc1', hostMac: '', interfaceName: 'eth0', mac: '', identity: 300, state: 'ready', policyRevision: 1 };
const identities = new Map<number, Identity>([
  [300, { id: 300, labels: { 'k8s:app': 'web', 'k8s:io.kubernetes.pod.namespace': 'shop' }, scope: 'cluster' }],
  [400, { id: 400, labels: { 'k8s:app': 'db', 'k8s:io.kubernetes.pod.namespace': 'shop' }, scope: 'cluster' }],
]);
const remoteDb: IpCacheEntry = { prefix: '10.200.2.9/32', identity: 400, node: 'node-2', namespace: 'shop', podName: 'db-0', source: 'kvstore' };

function enricher(): Enricher {
  const endpoints = { list: () => [web], get: (id: number) => (id === web.id ? web : undefined), subscribe: () => () => {} } as unknown as EndpointManager;
  const allocator = { lookup: (id: number) => identities.get(id), watch: () => () => {} } as unknown as IdentityAllocator;
  const ipcache = { lookup: (ip: string) => (ip === '10.200.2.9' ? remoteDb : undefined), subscribe: () => () => {} } as unknown as IpCache;
  const e = new Enricher({ endpoints, identities: allocator, ipcache });
  e.start();
  return e;
}

const ctx = { node: 'node-1', enricher: enricher(), clock: new MonotonicClock() };
const scratch = recordScratch();
const now = () => process.hrtime.bigint();

function packet(type: number, subtype: number, source: number, fields: Partial<ReturnType<typeof PacketEvent.decode>>): Buffer {
  const buf = Buffer.alloc(PacketEvent.size);
  PacketEvent.encode(
    {
      hdr: { type, subtype, source, ifindex: 7, tsNs: now() },
      saddr: '10.200.1.5',
      daddr: '10.200.2.9',
      sport: 40000,
      dport: 5432,
      proto: 6,
      ctStatus: CtStatus.new,
      endpointId: 12,
      srcIdentity: 300,
      dstIdentity: 400,
      len: 74,
      targetIfindex: 0,
      tcpFlags: 0x02,
      icmpType: 0,
      ...fields,
    },
    buf,
    0,
  );
  return buf;
}

function flowOf(buf: Buffer, length = buf.length): Flow {
  const record = decodeRecord(buf, 0, length, scratch);
  if (!record) throw new Error('not decoded');
  return buildFlow(record, ctx);
}

describe('records → flows', () => {
  it('a policy drop: DROPPED with Cilium\'s number, name and text, both sides enriched (remote pod through the ipcache)', () => {
    const flow = flowOf(packet(EventType.drop, DropReason.policyDenied, AttachPointIndex['from-container'], {}));
    expect(flow).toMatchObject({
      verdict: 'DROPPED',
      dropReason: 'POLICY_DENIED',
      dropReasonCode: 133,
      dropReasonText: 'Policy denied',
      eventType: 'drop',
      direction: 'egress',
      isReply: false,
      protocol: 'TCP',
      node: 'node-1',
      interface: { index: 7 },
      l4: { tcp: { sourcePort: 40000, destinationPort: 5432, flags: { SYN: true } } },
      source: { ip: '10.200.1.5', port: 40000, identity: 300, id: 12, namespace: 'shop', podName: 'web-1', labels: { 'k8s:app': 'web', 'k8s:io.kubernetes.pod.namespace': 'shop' } },
      destination: { ip: '10.200.2.9', port: 5432, identity: 400, namespace: 'shop', podName: 'db-0', labels: { 'k8s:app': 'db', 'k8s:io.kubernetes.pod.namespace': 'shop' } },
    });
    expect(flow.destination.id).toBeUndefined();
    expect(Math.abs(flow.time.getTime() - Date.now())).toBeLessThan(1000);
    expect(flow.uuid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a reply traced into an endpoint: the connection\'s direction (egress), is_reply, observation point; world for an unknown address', () => {
    const flow = flowOf(packet(EventType.trace, TracePoint.toEndpoint, AttachPointIndex['to-container'], { saddr: '1.1.1.1', daddr: '10.200.1.5', sport: 443, dport: 40000, srcIdentity: 0, dstIdentity: 300, ctStatus: CtStatus.reply, tcpFlags: 0x12 }));
    expect(flow).toMatchObject({ verdict: 'FORWARDED', eventType: 'trace', traceObservationPoint: 'TO_ENDPOINT', direction: 'egress', isReply: true });
    expect(flow.source).toMatchObject({ ip: '1.1.1.1', identity: 2, labels: { 'reserved:world': '' } });
    expect(flow.l4?.tcp?.flags).toEqual({ SYN: true, ACK: true });
    expect(flow.dropReason).toBeUndefined();
  });

  it('a record of the previous layout (without TCP flags) still decodes; an unknown type does not', () => {
    const flow = flowOf(packet(EventType.trace, TracePoint.toStack, AttachPointIndex['from-container'], {}), PacketEvent.size - 8);
    expect(flow).toMatchObject({ traceObservationPoint: 'TO_STACK', l4: { tcp: { flags: {} } } });
    const debug = packet(EventType.debug, 0, 0, {});
    expect(decodeRecord(debug, 0, debug.length, scratch)).toBeUndefined();
    expect(decodeRecord(debug, 0, 10, scratch)).toBeUndefined();
  });

  it('a policy verdict: direction and match type from the record, the local side from the endpoint id', () => {
    const buf = Buffer.alloc(PolicyVerdictEvent.size);
    PolicyVerdictEvent.encode(
      {
        hdr: { type: EventType.policyVerdict, subtype: PolicyVerdict.denied, source: AttachPointIndex['to-container'], ifindex: 7, tsNs: now() },
        saddr: '10.200.2.9',
        daddr: '10.200.1.5',
        sport: 5555,
        dport: 80,
        proto: 6,
        direction: Direction.ingress,
        matchType: PolicyMatch.none,
        dropReason: DropReason.policyDenied,
        endpointId: 12,
        proxyPort: 0,
        remoteIdentity: 400,
      },
      buf,
      0,
    );
    const flow = flowOf(buf);
    expect(flow).toMatchObject({ eventType: 'policy-verdict', verdict: 'DROPPED', direction: 'ingress', policyMatchType: 0, dropReasonText: 'Policy denied' });
    expect(flow.source).toMatchObject({ identity: 400, podName: 'db-0' });
    expect(flow.destination).toMatchObject({ identity: 300, id: 12, podName: 'web-1' });
  });
});

describe('filters', () => {
  const drop = flowOf(packet(EventType.drop, DropReason.policyDenied, AttachPointIndex['from-container'], {}));
  const trace = flowOf(packet(EventType.trace, TracePoint.toEndpoint, AttachPointIndex['to-container'], { ctStatus: CtStatus.established, proto: 17, dport: 53 }));
  const pass = (req: Parameters<typeof compileRequest>[0]) => [drop, trace].map(compileRequest(req));

  it('matches Hubble\'s fields: pods by namespace/prefix, labels, identities, verdicts, ports, protocols, CIDRs, event types', () => {
    expect(pass({ whitelist: [{ sourcePod: ['shop/web'] }] })).toEqual([true, true]);
    expect(pass({ whitelist: [{ destinationPod: ['shop/db-'], verdict: ['DROPPED'] }] })).toEqual([true, false]);
    expect(pass({ whitelist: [{ sourcePod: ['other/'] }] })).toEqual([false, false]);
    expect(pass({ whitelist: [{ destinationLabel: ['app=db'] }] })).toEqual([true, true]);
    expect(pass({ whitelist: [{ destinationLabel: ['k8s:app=web'] }] })).toEqual([false, false]);
    expect(pass({ whitelist: [{ sourceIdentity: [300], protocol: ['udp'] }] })).toEqual([false, true]);
    expect(pass({ whitelist: [{ destinationPort: [5432] }] })).toEqual([true, false]);
    expect(pass({ whitelist: [{ destinationIp: ['10.200.2.0/24'], eventType: ['trace'] }] })).toEqual([false, true]);
    expect(pass({ whitelist: [{ endpoint: [12] }] })).toEqual([true, true]);
    expect(pass({ whitelist: [{ endpoint: [13] }] })).toEqual([false, false]);
  });

  it('whitelist filters are alternatives; a blacklist takes away', () => {
    expect(pass({ whitelist: [{ verdict: ['DROPPED'] }, { protocol: ['UDP'] }] })).toEqual([true, true]);
    expect(pass({ blacklist: [{ verdict: ['DROPPED'] }] })).toEqual([false, true]);
  });

  it('refuses a bad filter naming the field', () => {
    expect(() => compileRequest({ whitelist: [{ verdict: ['MAYBE' as 'DROPPED'] }] })).toThrow(expect.objectContaining({ path: 'whitelist[0].verdict[0]' }));
    expect(() => compileRequest({ whitelist: [{ sourceIp: ['10.0.0.300'] }] })).toThrow(expect.objectContaining({ path: 'whitelist[0].sourceIp[0]' }));
    expect(() => compileRequest({ blacklist: [{ colour: ['red'] } as never] })).toThrow(expect.objectContaining({ path: 'blacklist[0].colour' }));
  });

  it('POST /v1/flows: its body schema refuses a request that does not fit, naming the field; the filter values are checked too', async () => {
    const observer = new FlowObserver({ node: 'node-1', capacity: 4, metrics: new HubbleMetrics() });
    observer.publish(drop);
    const flows = flowRoutes(() => observer).find((r) => r.path === '/v1/flows')!;
    const refusal = (body: unknown) => invokeRoute(flows, { body }).then(() => undefined, (err: { path?: string; message: string }) => `${err.path}: ${err.message}`);
    expect(await refusal({ number: -1 })).toMatch(/^number: /);
    expect(await refusal({ whitelist: [{ verdict: ['MAYBE'] }] })).toMatch(/^whitelist\[0\]\.verdict\[0\]: /);
    expect(await refusal({ blacklist: [{ colour: ['red'] }] })).toBe('blacklist[0].colour: unknown key');
    expect(await refusal({ since: 'yesterday' })).toBe('since: "yesterday" is not an ISO time');
    expect(await refusal({ first: true, follow: true })).toBe('first: first cannot be combined with follow');
    expect(await refusal({ whitelist: [{ sourceIp: ['10.0.0.300'] }] })).toMatch(/^whitelist\[0\]\.sourceIp\[0\]: /);
    expect(await refusal({ allNodes: true })).toBe('allNodes: this agent has no relay: set hubble.relay.enabled');
    const ok = await invokeRoute(flows, { body: { whitelist: [{ verdict: ['DROPPED'], destinationPort: [5432] }] } });
    expect((ok.body as Flow[]).map((f) => f.verdict)).toEqual(['DROPPED']);
  });
});

describe('the flow ring and the observer', () => {
  it('keeps the last `capacity` items, oldest overwritten first', () => {
    const ring = new FlowRing<number>(3);
    for (let i = 1; i <= 5; i++) ring.push(i);
    expect([...ring.values()]).toEqual([3, 4, 5]);
    expect(ring.last(2)).toEqual([4, 5]);
    expect(ring.last(5, (n) => n % 2 === 1)).toEqual([3, 5]);
    expect(() => new FlowRing(0)).toThrow(RangeError);
  });

  it('answers queries from the buffer, hands new flows to followers and counts Hubble\'s metrics', () => {
    const metrics = new HubbleMetrics();
    const observer = new FlowObserver({ node: 'node-1', capacity: 4, metrics });
    const seen: Flow[] = [];
    const stop = observer.follow({ verdict: ['DROPPED'] }, (f) => seen.push(f));
    for (let i = 0; i < 6; i++) observer.publish(flowOf(packet(i % 2 ? EventType.drop : EventType.trace, i % 2 ? DropReason.policyDenied : TracePoint.toEndpoint, AttachPointIndex['from-container'], { sport: 1000 + i })));
    stop();
    observer.publish(flowOf(packet(EventType.drop, DropReason.policyDeny, AttachPointIndex['from-container'], {})));
    expect(seen.map((f) => f.source.port)).toEqual([1001, 1003, 1005]);
    expect(observer.recent(10).map((f) => f.source.port)).toEqual([1003, 1004, 1005, 40000]);
    expect(observer.recent(2, { verdict: ['DROPPED'] }).map((f) => f.dropReason)).toEqual(['POLICY_DENIED', 'POLICY_DENY']);
    expect(observer.query({ matches: () => true, number: 1, first: true })[0]!.source.port).toBe(1003);
    observer.lostInDatapath(5);
    expect(observer.status()).toMatchObject({ numFlows: 4, maxFlows: 4, seenFlows: 7, lostDatapathEvents: 5 });
    const families = new Map(metrics.families().map((f) => [f.name, f.samples]));
    expect(families.get('hubble_drop_total')).toEqual([
      { labels: { reason: 'POLICY_DENIED', protocol: 'TCP' }, value: 3 },
      { labels: { reason: 'POLICY_DENY', protocol: 'TCP' }, value: 1 },
    ]);
    expect(families.get('hubble_flows_processed_total')).toContainEqual({ labels: { protocol: 'TCP', type: 'Trace', subtype: 'to-endpoint', verdict: 'FORWARDED' }, value: 3 });
    expect(families.get('hubble_tcp_flags_total')).toEqual([{ labels: { flag: 'SYN', family: 'IPv4' }, value: 3 }]);
    expect(families.get('hubble_port_distribution_total')).toEqual([{ labels: { protocol: 'TCP', port: '5432' }, value: 3 }]);
    expect(families.get('hubble_lost_events_total')).toEqual([
      { labels: { source: 'perf_event_ring_buffer' }, value: 5 },
      { labels: { source: 'observer_events_queue' }, value: 0 },
    ]);
  });
});
