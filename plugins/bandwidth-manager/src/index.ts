import { createRequire } from 'node:module';
import { ConfigError, definePlugin, defineToken, Tokens, type ApiRoute } from '@cilia/core';
import { bandwidthConfig, type BandwidthConfig } from './config.js';
import { BandwidthManager } from './manager.js';
import { kernelHasFq, PACING_QDISC, setUpPacing } from './pacing.js';

export { BANDWIDTH_ANNOTATIONS, annotationPath, podBandwidth, type AnnotatedLimit, type BandwidthDirection, type PodBandwidth } from './annotations.js';
export { bandwidthConfig, type BandwidthConfig } from './config.js';
export { BandwidthManager, type BandwidthManagerOptions, type BandwidthModes } from './manager.js';
export { egressDevices, kernelHasFq, PACING_QDISC, setUpPacing } from './pacing.js';
export { parseBandwidth, parseQuantity, MAX_BITS_PER_SECOND, MIN_BITS_PER_SECOND } from './quantity.js';

const { name, version } = createRequire(import.meta.url)('../package.json') as { name: string; version: string };
/** This plugin's own handle on its manager (for its objects' `enabled`). */
const Manager = defineToken<BandwidthManager>(`${name}.Manager`);

/** `bpf/*.c` → `dist/bpf/*.o`; `../` is the package root from src/ and from dist/. */
export const BANDWIDTH_OBJECTS = {
  egress: new URL('../dist/bpf/bandwidth_egress.o', import.meta.url),
  ingress: new URL('../dist/bpf/bandwidth_ingress.o', import.meta.url),
} as const;
export const BANDWIDTH_PROGRAMS = { egress: 'cil_bandwidth_egress', ingress: 'cil_bandwidth_ingress' } as const;

const NO_FQ = `this kernel has no ${PACING_QDISC} qdisc (sch_fq), which egress EDT needs on the node devices to hold packets until their departure time`;

/**
 * The bandwidth manager: Pods' `kubernetes.io/egress-bandwidth` enforced with EDT in the to-netdev
 * shaping slot (departure times in skb->tstamp, for fq on the node device), and — beyond Cilium —
 * `kubernetes.io/ingress-bandwidth` with an eBPF token bucket in the to-container shaping slot,
 * which needs no qdisc. Egress is installed only where the kernel has sch_fq: `enabled: true`
 * refuses to start without it (exit 2), `auto` leaves it off and says so.
 */
export default definePlugin<BandwidthConfig>({
  name,
  version,
  apiVersion: '^1.2',
  description: 'Pod bandwidth annotations: egress EDT (with fq), ingress eBPF token bucket, BBR for pods',
  configKey: 'bandwidth',
  config: bandwidthConfig,
  provides: [Manager, Tokens.ApiRoutes, Tokens.HealthReporters],
  requires: [Tokens.ResourceSource, Tokens.EndpointManager],
  bpf: [
    {
      name: 'bandwidth_egress',
      object: BANDWIDTH_OBJECTS.egress,
      programs: { [BANDWIDTH_PROGRAMS.egress]: { attach: 'to-netdev', slot: 'shaping' } },
      // Decided first: a refusal comes before anything is installed.
      enabled: async ({ config, resolver, logger }) => {
        const manager = resolver.get(Manager);
        if (config.enabled === false) {
          manager.setModes({ egress: false, egressOff: 'bandwidth.enabled is false' });
          return false;
        }
        if (!(await kernelHasFq())) {
          if (config.enabled === true) {
            throw new ConfigError([{ path: 'bandwidth.enabled', reason: `true, but ${NO_FQ}; set it to auto (ingress limits only) or false` }]);
          }
          logger.warn({ qdisc: PACING_QDISC }, `egress bandwidth (EDT) off: ${NO_FQ}; ingress limits are enforced`);
          manager.setModes({ egress: false, egressOff: NO_FQ });
          return false;
        }
        const devices = await setUpPacing(config.devices);
        if (devices.length === 0) {
          const why = 'no node device to pace (no default IPv4 route; name them in bandwidth.devices)';
          if (config.enabled === true) throw new ConfigError([{ path: 'bandwidth.devices', reason: why }]);
          manager.setModes({ egress: false, egressOff: why });
          return false;
        }
        logger.info({ devices, qdisc: PACING_QDISC }, 'egress pacing set up');
        manager.setModes({ egress: true, egressOff: undefined, devices });
        return true;
      },
    },
    {
      name: 'bandwidth_ingress',
      object: BANDWIDTH_OBJECTS.ingress,
      programs: { [BANDWIDTH_PROGRAMS.ingress]: { attach: 'to-container', slot: 'shaping' } },
      enabled: ({ config, resolver }) => {
        resolver.get(Manager).setModes({ ingress: config.enabled !== false });
        return config.enabled !== false;
      },
    },
  ],
  register(bind, { config, logger, resolver, bpf }) {
    let manager: BandwidthManager | undefined;
    const build = (): BandwidthManager =>
      (manager ??= new BandwidthManager({
        source: resolver.get(Tokens.ResourceSource),
        endpoints: resolver.get(Tokens.EndpointManager),
        logger: logger.child({ component: 'bandwidth' }),
        // Both objects share the pinned map: whichever is installed reaches it.
        map: () => bpf.object(manager?.modes.ingress ? 'bandwidth_ingress' : 'bandwidth_egress').map('cilia_bandwidth'),
        horizonMs: config.horizonMs,
        ingressBurstMs: config.ingressBurstMs,
        ingressMinBurstBytes: config.ingressMinBurstBytes,
        bbr: config.bbr,
      }));
    bind(Manager).toFactory(build);
    bind(Tokens.HealthReporters).toFactory(build);
    const routes: ApiRoute[] = [
      { method: 'GET', path: '/v1/bandwidth', summary: "The endpoints' egress and ingress limits as cilia_bandwidth holds them, the modes, refused annotations", handler: () => ({ body: build().report() }) },
    ];
    bind(Tokens.ApiRoutes).toConstant(routes);
    const active = (): boolean => !!manager && (manager.modes.egress || manager.modes.ingress);
    return {
      start: () => (active() ? build().start() : undefined),
      stop: () => manager?.stop(),
    };
  },
});
