import { configProblems, z, type EndpointCreateRequest, type Labels, type NamedPort } from '@cilia/core';

/** A request field that is wrong, with its path. */
export class EndpointRequestError extends Error {
  constructor(
    readonly reason: string,
    readonly path: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'EndpointRequestError';
  }
}

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$/;
const IFNAME = /^[^\s/:]{1,15}$/;
/** Kubernetes' IANA_SVC_NAME: what a container port's name may be. */
const PORT_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const PORT_PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const satisfies readonly NamedPort['protocol'][];

const dnsName = z
  .string({ error: 'expected a non-empty name' })
  .min(1, 'expected a non-empty name')
  .refine((v) => v.length <= 253 && NAME.test(v), { error: (i) => `${JSON.stringify(i.input)} is not a valid name (letters, digits, "-" and ".", at most 253 characters, starting and ending with a letter or digit)` });

/** A label map: string keys of 1-317 characters, string values. */
export const labelsSchema = z
  .record(z.string(), z.string({ error: 'expected a string' }), { error: 'expected an object of string labels' })
  .superRefine((labels, ctx) => {
    for (const key of Object.keys(labels)) if (key.length === 0 || key.length > 317) ctx.addIssue({ code: 'custom', path: [key], message: 'label keys must be 1-317 characters' });
  })
  .describe('labels with their source prefix, e.g. "k8s:app": "web"');

const namedPort = z.strictObject(
  {
    port: z.number({ error: 'expected a port number from 1 to 65535' }).int('expected a port number from 1 to 65535').min(1, 'expected a port number from 1 to 65535').max(65535, 'expected a port number from 1 to 65535'),
    protocol: z.enum(PORT_PROTOCOLS, { error: `expected one of ${PORT_PROTOCOLS.join(', ')}` }).default('TCP'),
  },
  { error: 'expected { port, protocol }' },
);

/** Named container ports: `{ <name>: { port, protocol } }`, as rules naming a port resolve them. */
export const namedPortsSchema = z
  .record(z.string(), namedPort, { error: 'expected an object of named ports ({ <name>: { port, protocol } })' })
  .superRefine((ports, ctx) => {
    for (const name of Object.keys(ports)) {
      if (name.length > 15 || !PORT_NAME.test(name) || !/[a-z]/.test(name) || name.includes('--')) {
        ctx.addIssue({ code: 'custom', path: [name], message: 'a port name is 1-15 lower-case letters, digits and "-" (at least one letter, no "--"), starting and ending with a letter or digit' });
      }
    }
  });

/** `POST /v1/endpoints`: what an endpoint is created from (defaults filled in). */
export const endpointCreateRequestSchema = z.strictObject({
  name: dnsName.describe('the pod name'),
  namespace: dnsName.default('default').describe('the pod namespace'),
  labels: labelsSchema.default({}),
  netns: z
    .string()
    .refine((v) => v.startsWith('/') && !v.includes('\0'), 'expected an absolute path of a network namespace')
    .optional()
    .describe('the pod network namespace to plumb into; default: one the agent creates (/run/netns/cilia_<namespace>_<name>)'),
  interfaceName: z.string().regex(IFNAME, 'expected an interface name (1-15 characters, no spaces, "/" or ":")').default('eth0').describe("the pod's interface"),
  containerId: z.string().min(1, 'expected a non-empty string of at most 256 characters').max(256, 'expected a non-empty string of at most 256 characters').optional().describe('the CNI container id'),
  namedPorts: namedPortsSchema.optional().describe('named container ports { <name>: { port, protocol } }, for rules that name a port'),
});

/** Checks an untrusted create request; names the first bad field (under `base`). */
export function validateCreateRequest(body: unknown, base = ''): Required<Pick<EndpointCreateRequest, 'name' | 'namespace' | 'labels' | 'interfaceName'>> & EndpointCreateRequest {
  return check(endpointCreateRequestSchema, body, base);
}

/** Checks a label map: string keys and values. */
export function validateLabels(value: unknown, path: string): Labels {
  return check(labelsSchema, value, path);
}

function check<T>(schema: z.ZodType<T>, value: unknown, base: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const [first] = configProblems(result.error, base ? [base] : []);
  throw new EndpointRequestError(first!.reason, first!.path || base || '(body)');
}
