import { secret, z } from '@cilia/core';

const endpoint = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL of an etcd client endpoint' });

/** Settings of the etcd KvStore (the `kvstore-etcd:` section). */
export const etcdKvStoreConfig = z.strictObject({
  endpoints: z.array(endpoint).min(1).describe('etcd client URLs, e.g. ["https://10.0.0.1:2379"]; https endpoints need tls.caFile.'),
  keyPrefix: z
    .string()
    .default('')
    .describe('Prepended to every key in etcd, so several clusters can share one etcd; invisible to the KvStore user.'),
  dialTimeoutMs: z.int().min(100).default(5000).describe('How long to wait for a connection to an endpoint before trying the next.'),
  retry: z
    .strictObject({
      maxAttempts: z.int().min(0).default(5).describe('Retries of a failed request (with exponential backoff) before it fails.'),
      initialDelayMs: z.int().min(1).default(100),
      maxDelayMs: z.int().min(1).default(5000),
    })
    .prefault({})
    .describe('Reconnect and retry policy for requests and watches while etcd is unreachable.'),
  tls: z
    .strictObject({
      caFile: z.string().min(1).describe('PEM file of the CA that signed the etcd server certificates.'),
      certFile: z.string().min(1).optional().describe('PEM client certificate (mutual TLS); needs keyFile.'),
      keyFile: z.string().min(1).optional().describe('PEM private key of certFile.'),
    })
    .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), { message: 'certFile and keyFile go together', path: ['certFile'] })
    .optional()
    .describe('TLS to etcd; omit for plain http endpoints.'),
  auth: z
    .strictObject({
      username: z.string().min(1),
      password: secret(z.string().optional().describe('The password inline; prefer passwordFile. Shown as [redacted] by the API, the CLI and the logs.')),
      passwordFile: z.string().min(1).optional().describe('A file holding the password (trailing newline ignored).'),
    })
    .refine((a) => (a.password === undefined) !== (a.passwordFile === undefined), { message: 'give exactly one of password and passwordFile', path: ['password'] })
    .optional()
    .describe('etcd username/password authentication.'),
});

/** The validated `kvstore-etcd:` section, defaults applied. */
export type EtcdKvStoreConfig = z.infer<typeof etcdKvStoreConfig>;
