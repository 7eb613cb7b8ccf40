import type { EndpointCreateRequest, Labels, NamedPort } from '@cilia/core';

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

/** Checks an untrusted create request; names the first bad field. */
export function validateCreateRequest(body: unknown, base = ''): Required<Pick<EndpointCreateRequest, 'name' | 'namespace' | 'labels' | 'interfaceName'>> & EndpointCreateRequest {
  const at = (f: string) => (base ? `${base}.${f}` : f);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new EndpointRequestError('expected an object', base || '(body)');
  const b = body as Record<string, unknown>;
  const known = new Set(['name', 'namespace', 'labels', 'netns', 'interfaceName', 'containerId', 'namedPorts']);
  for (const key of Object.keys(b)) if (!known.has(key)) throw new EndpointRequestError('unknown field', at(key));
  const name = dnsName(b.name, at('name'));
  const namespace = b.namespace === undefined ? 'default' : dnsName(b.namespace, at('namespace'));
  const labels = validateLabels(b.labels ?? {}, at('labels'));
  let netns: string | undefined;
  if (b.netns !== undefined) {
    if (typeof b.netns !== 'string' || !b.netns.startsWith('/') || b.netns.includes('\0')) throw new EndpointRequestError('expected an absolute path of a network namespace', at('netns'));
    netns = b.netns;
  }
  const interfaceName = b.interfaceName ?? 'eth0';
  if (typeof interfaceName !== 'string' || !IFNAME.test(interfaceName)) throw new EndpointRequestError('expected an interface name (1-15 characters, no spaces, "/" or ":")', at('interfaceName'));
  let containerId: string | undefined;
  if (b.containerId !== undefined) {
    if (typeof b.containerId !== 'string' || b.containerId.length === 0 || b.containerId.length > 256) throw new EndpointRequestError('expected a non-empty string of at most 256 characters', at('containerId'));
    containerId = b.containerId;
  }
  const namedPorts = b.namedPorts === undefined ? undefined : validateNamedPorts(b.namedPorts, at('namedPorts'));
  return { name, namespace, labels, interfaceName, ...(netns ? { netns } : {}), ...(containerId ? { containerId } : {}), ...(namedPorts ? { namedPorts } : {}) };
}

/** Kubernetes' IANA_SVC_NAME: what a container port's name may be. */
const PORT_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const PORT_PROTOCOLS: readonly NamedPort['protocol'][] = ['TCP', 'UDP', 'SCTP'];

/** Checks named container ports: `{ <name>: { port, protocol } }`, as rules naming a port resolve them. */
export function validateNamedPorts(value: unknown, path: string): Record<string, NamedPort> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new EndpointRequestError('expected an object of named ports ({ <name>: { port, protocol } })', path);
  const ports: Record<string, NamedPort> = {};
  for (const [name, entry] of Object.entries(value)) {
    const at = `${path}.${name}`;
    if (name.length > 15 || !PORT_NAME.test(name) || !/[a-z]/.test(name) || name.includes('--')) {
      throw new EndpointRequestError('a port name is 1-15 lower-case letters, digits and "-" (at least one letter, no "--"), starting and ending with a letter or digit', at);
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new EndpointRequestError('expected { port, protocol }', at);
    const { port, protocol = 'TCP', ...rest } = entry as { port?: unknown; protocol?: unknown };
    for (const key of Object.keys(rest)) throw new EndpointRequestError('unknown field', `${at}.${key}`);
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new EndpointRequestError('expected a port number from 1 to 65535', `${at}.port`);
    if (typeof protocol !== 'string' || !PORT_PROTOCOLS.includes(protocol as NamedPort['protocol'])) {
      throw new EndpointRequestError(`expected one of ${PORT_PROTOCOLS.join(', ')}`, `${at}.protocol`);
    }
    ports[name] = { port, protocol: protocol as NamedPort['protocol'] };
  }
  return ports;
}

/** Checks a label map: string keys and values. */
export function validateLabels(value: unknown, path: string): Labels {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new EndpointRequestError('expected an object of string labels', path);
  for (const [k, v] of Object.entries(value)) {
    if (k.length === 0 || k.length > 317) throw new EndpointRequestError('label keys must be 1-317 characters', `${path}.${k}`);
    if (typeof v !== 'string') throw new EndpointRequestError('expected a string', `${path}.${k}`);
  }
  return { ...(value as Record<string, string>) };
}

function dnsName(value: unknown, path: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new EndpointRequestError('expected a non-empty name', path);
  if (value.length > 253 || !NAME.test(value)) throw new EndpointRequestError(`${JSON.stringify(value)} is not a valid name (letters, digits, "-" and ".", at most 253 characters, starting and ending with a letter or digit)`, path);
  return value;
}
