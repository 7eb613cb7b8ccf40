import { z } from '@cilia/core';

const port = z.number().int().min(1).max(65535);
const listenerPorts = z.strictObject({ ingress: port, egress: port });

/** The `l7Proxy:` section. */
export const l7ProxyConfig = z.strictObject({
  address: z
    .ipv4()
    .default('127.0.0.1')
    .describe("The address the transparent listeners bind: the datapath assigns redirected connections to them whatever their destination, so loopback keeps them out of anyone's direct reach."),
  ports: z
    .record(z.string(), listenerPorts)
    .default({ http: { ingress: 15001, egress: 15002 } })
    .describe('The listener ports of each parser, per direction: the proxy ports policy entries carry. Keep them stable: pinned policy entries name them across restarts.'),
});

export type L7ProxyConfig = z.infer<typeof l7ProxyConfig>;
