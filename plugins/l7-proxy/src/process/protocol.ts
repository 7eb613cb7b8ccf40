// The agent ↔ proxy process protocol: newline-delimited JSON over the proxy's unix socket.
import type { Socket } from 'node:net';
import type { Direction, L7AccessLogRecord, L7RuleSet } from '@cilia/core';
import type { ProxyCounters, ProxyListener } from '../server.js';

/** What the agent tells the proxy. */
export type ToProxy =
  | { readonly op: 'upsert'; readonly set: L7RuleSet }
  | { readonly op: 'remove'; readonly endpointId: number; readonly direction: Direction; readonly port: number }
  /** Drops every rule set but these (`endpointId/direction/port`): what the agent no longer has after it restarted. */
  | { readonly op: 'prune'; readonly keep: readonly string[] }
  | { readonly op: 'shutdown' };

/** What the proxy tells the agent. */
export type FromProxy =
  | { readonly op: 'hello'; readonly pid: number; readonly startedAt: string; readonly listeners: readonly ProxyListener[]; readonly ruleSets: number }
  | { readonly op: 'log'; readonly record: Omit<L7AccessLogRecord, 'time'> & { readonly time: string } }
  | { readonly op: 'counters'; readonly counters: ProxyCounters; readonly ruleSets: number };

/** The proxy process's settings, handed in its environment (`CILIA_L7_PROXY`). */
export interface ProxyProcessConfig {
  readonly bpfRoot: string;
  readonly socket: string;
  readonly pidFile: string;
  readonly address: string;
  readonly listeners: readonly ProxyListener[];
}

export const PROXY_CONFIG_ENV = 'CILIA_L7_PROXY';

export const ruleSetKey = (endpointId: number, direction: Direction, port: number): string => `${endpointId}/${direction}/${port}`;

/** Calls `onMessage` with each JSON line read from `socket` (a line that does not parse is skipped and reported). */
export function readMessages<T>(socket: Socket, onMessage: (m: T) => void, onBad: (line: string) => void = () => {}): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      let message: T;
      try {
        message = JSON.parse(line) as T;
      } catch {
        onBad(line);
        continue;
      }
      onMessage(message);
    }
  });
}

export function send(socket: Socket | undefined, message: ToProxy | FromProxy): void {
  if (socket && !socket.destroyed && socket.writable) socket.write(`${JSON.stringify(message)}\n`);
}
