import { isAbsolute } from 'node:path';
import { CniError, ErrorCode } from './errors.js';
import type { CniResult } from './result.js';

/** Where the agent's API listens unless the network config says otherwise. */
export const DEFAULT_SOCKET = '/var/run/cilia/cilia.sock';
/** How long one request to the agent may take unless the network config says otherwise. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** An attachment the runtime still uses (GC input). */
export interface Attachment {
  readonly containerId: string;
  readonly ifName: string;
}

/** The network config on stdin, with the fields this plugin reads validated. */
export interface NetworkConfig {
  readonly cniVersion: string;
  readonly name: string;
  readonly type: string;
  /** Path of the agent's API unix socket (`socket`). */
  readonly socket: string;
  /** Per-request timeout towards the agent (`timeoutMs`). */
  readonly timeoutMs: number;
  /** Endpoint labels: `labels`, then `args.labels`, then `args.cni.labels`. */
  readonly labels: Readonly<Record<string, string>>;
  /** `dns`, echoed into ADD results. */
  readonly dns: Readonly<Record<string, unknown>>;
  /** The previous result (chained ADD, CHECK, DEL). */
  readonly prevResult?: CniResult;
  /** `cni.dev/valid-attachments` (GC). */
  readonly validAttachments?: readonly Attachment[];
  /** Directory for DELs deferred while the agent was unreachable (`pendingDeleteDir`). */
  readonly pendingDeleteDir?: string;
}

/** Parses stdin: not JSON is code 6; a bad field is code 7 naming the field. */
export function parseNetworkConfig(text: string): NetworkConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CniError(ErrorCode.DecodeFailure, `cannot decode the network config on stdin: ${(err as Error).message}`);
  }
  if (!isObject(raw)) throw invalid('(root)', `must be a JSON object, got ${kind(raw)}`);
  const cniVersion = requireString(raw, 'cniVersion');
  const name = requireString(raw, 'name');
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw invalid('name', `${JSON.stringify(name)} must start with a letter or digit, followed by letters, digits, "_", "." or "-"`);
  }
  const type = requireString(raw, 'type');
  const socket = optionalString(raw, 'socket') ?? DEFAULT_SOCKET;
  if (!isAbsolute(socket)) throw invalid('socket', `must be an absolute path, got ${JSON.stringify(socket)}`);
  const timeoutMs = raw['timeoutMs'] ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw invalid('timeoutMs', `must be a positive integer (milliseconds), got ${JSON.stringify(timeoutMs)}`);
  }
  const pendingDeleteDir = optionalString(raw, 'pendingDeleteDir');
  if (pendingDeleteDir !== undefined && !isAbsolute(pendingDeleteDir)) {
    throw invalid('pendingDeleteDir', `must be an absolute path, got ${JSON.stringify(pendingDeleteDir)}`);
  }
  const dns = raw['dns'] ?? {};
  if (!isObject(dns)) throw invalid('dns', `must be an object, got ${kind(dns)}`);
  const prevResult = raw['prevResult'] === undefined ? undefined : readPrevResult(raw['prevResult']);
  return {
    cniVersion,
    name,
    type,
    socket,
    timeoutMs,
    labels: readLabels(raw),
    dns,
    ...(prevResult !== undefined ? { prevResult } : {}),
    ...readValidAttachments(raw),
    ...(pendingDeleteDir !== undefined ? { pendingDeleteDir } : {}),
  };
}

/** The `cniVersion` of stdin if it has one, for error output before the config is validated. */
export function peekVersion(text: string): string | undefined {
  try {
    const raw = JSON.parse(text) as unknown;
    return isObject(raw) && typeof raw['cniVersion'] === 'string' ? raw['cniVersion'] : undefined;
  } catch {
    return undefined;
  }
}

// Only the parts CHECK and a chained ADD read are checked; the rest is passed through as is.
function readPrevResult(value: unknown): CniResult {
  if (!isObject(value)) throw invalid('prevResult', `must be an object, got ${kind(value)}`);
  for (const list of ['interfaces', 'ips', 'routes'] as const) {
    const entries = value[list];
    if (entries === undefined) continue;
    if (!Array.isArray(entries)) throw invalid(`prevResult.${list}`, `must be an array, got ${kind(entries)}`);
    entries.forEach((entry: unknown, i) => {
      const at = `prevResult.${list}[${i}]`;
      if (!isObject(entry)) throw invalid(at, `must be an object, got ${kind(entry)}`);
      const key = list === 'interfaces' ? 'name' : list === 'ips' ? 'address' : 'dst';
      if (typeof entry[key] !== 'string') throw invalid(`${at}.${key}`, `must be a string, got ${kind(entry[key])}`);
      for (const optional of ['mac', 'sandbox', 'gateway', 'gw']) {
        if (entry[optional] !== undefined && typeof entry[optional] !== 'string') {
          throw invalid(`${at}.${optional}`, `must be a string, got ${kind(entry[optional])}`);
        }
      }
      if (list === 'ips' && entry['interface'] !== undefined && !Number.isInteger(entry['interface'])) {
        throw invalid(`${at}.interface`, `must be an integer index into prevResult.interfaces, got ${kind(entry['interface'])}`);
      }
    });
  }
  if (value['dns'] !== undefined && !isObject(value['dns'])) throw invalid('prevResult.dns', `must be an object, got ${kind(value['dns'])}`);
  return value as unknown as CniResult;
}

function readLabels(raw: Record<string, unknown>): Record<string, string> {
  const labels: Record<string, string> = {};
  addLabelMap(labels, raw['labels'], 'labels');
  const args = raw['args'];
  // `args` is the runtime's: only the parts this plugin understands are read (and checked).
  if (isObject(args)) {
    addLabelMap(labels, args['labels'], 'args.labels');
    const cni = args['cni'];
    if (isObject(cni) && cni['labels'] !== undefined) {
      // The CONVENTIONS.md form: [{ "key": "...", "value": "..." }].
      const list = cni['labels'];
      if (!Array.isArray(list)) throw invalid('args.cni.labels', `must be an array of {key, value}, got ${kind(list)}`);
      list.forEach((entry: unknown, i) => {
        if (!isObject(entry) || typeof entry['key'] !== 'string' || typeof entry['value'] !== 'string') {
          throw invalid(`args.cni.labels[${i}]`, 'must be an object with string "key" and "value"');
        }
        labels[entry['key']] = entry['value'];
      });
    }
  }
  return labels;
}

function addLabelMap(into: Record<string, string>, value: unknown, field: string): void {
  if (value === undefined) return;
  if (!isObject(value)) throw invalid(field, `must be an object of string values, got ${kind(value)}`);
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalid(`${field}.${key}`, `must be a string, got ${kind(v)}`);
    if (key === '') throw invalid(field, 'has an empty label key');
    into[key] = v;
  }
}

function readValidAttachments(raw: Record<string, unknown>): { validAttachments?: Attachment[] } {
  // Runtimes following the 1.1.0 text send `cni.dev/valid-attachments`; libcni also sends the
  // earlier draft's `cni.dev/attachments` with the same value.
  const field = raw['cni.dev/valid-attachments'] !== undefined ? 'cni.dev/valid-attachments' : 'cni.dev/attachments';
  const value = raw[field];
  if (value === undefined) return {};
  if (!Array.isArray(value)) throw invalid(field, `must be an array of {containerID, ifname}, got ${kind(value)}`);
  return {
    validAttachments: value.map((entry: unknown, i) => {
      if (!isObject(entry) || typeof entry['containerID'] !== 'string' || typeof entry['ifname'] !== 'string') {
        throw invalid(`${field}[${i}]`, 'must be an object with string "containerID" and "ifname"');
      }
      return { containerId: entry['containerID'], ifName: entry['ifname'] };
    }),
  };
}

function requireString(raw: Record<string, unknown>, field: string): string {
  const value = raw[field];
  if (value === undefined) throw invalid(field, 'is required');
  if (typeof value !== 'string' || value === '') throw invalid(field, `must be a non-empty string, got ${kind(value)}`);
  return value;
}

function optionalString(raw: Record<string, unknown>, field: string): string | undefined {
  const value = raw[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw invalid(field, `must be a non-empty string, got ${kind(value)}`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** A code-7 error naming the offending network config field. */
export function invalid(field: string, reason: string): CniError {
  return new CniError(ErrorCode.InvalidNetworkConfig, `invalid network config: ${field} ${reason}`);
}
