import { describe, expect, it } from 'vitest';
import { DEFAULT_SOCKET, formatDuration, renderFields, renderTable, resolveSocketPath, UsageError } from '../src/index.js';

describe('resolveSocketPath', () => {
  it('takes --socket, then --node, then CILIA_SOCKET, then the default', () => {
    const env = { CILIA_SOCKET: '/env.sock' };
    expect(resolveSocketPath({ socket: '/flag.sock', node: 'n1', env })).toBe('/flag.sock');
    expect(resolveSocketPath({ node: 'n1', env })).toBe('/var/run/cilia/n1/cilia.sock');
    expect(resolveSocketPath({ env })).toBe('/env.sock');
    expect(resolveSocketPath({ env: { CILIA_SOCKET: '' } })).toBe(DEFAULT_SOCKET);
    expect(resolveSocketPath({})).toBe('/var/run/cilia/cilia.sock');
  });

  it('refuses an empty --socket and node names that are not one path segment', () => {
    expect(() => resolveSocketPath({ socket: '' })).toThrow(new UsageError('--socket: the path is empty'));
    for (const node of ['', '.', '..', 'a/b', '-x', 'a b']) {
      expect(() => resolveSocketPath({ node })).toThrow(UsageError);
    }
    expect(resolveSocketPath({ node: 'node-2.lab_a' })).toBe('/var/run/cilia/node-2.lab_a/cilia.sock');
  });
});

describe('formatDuration', () => {
  it('reads like kubectl AGE', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(59.9)).toBe('59s');
    expect(formatDuration(60)).toBe('1m');
    expect(formatDuration(725)).toBe('12m5s');
    expect(formatDuration(3600)).toBe('1h');
    expect(formatDuration(5 * 3600 + 7 * 60 + 59)).toBe('5h7m');
    expect(formatDuration(86_400)).toBe('1d');
    expect(formatDuration(3 * 86_400 + 4 * 3600 + 30)).toBe('3d4h');
    expect(formatDuration(-5)).toBe('0s');
  });
});

describe('renderTable', () => {
  it('pads every column but the last to its widest cell, three spaces apart', () => {
    expect(renderTable(['name', 'state'], [['a', 'started'], ['longer-name', '']])).toBe(
      ['NAME          STATE', 'a             started', 'longer-name   <none>', ''].join('\n'),
    );
  });

  it('prints only the header for no rows', () => {
    expect(renderTable(['NAME', 'STATE'], [])).toBe('NAME   STATE\n');
  });
});

describe('renderFields', () => {
  it('aligns values and continues a list under its first line', () => {
    expect(renderFields([['Node', 'a'], ['Problems', ['one', 'two']], ['Empty', []]])).toBe(
      ['Node:      a', 'Problems:  one', '           two', 'Empty:     <none>', ''].join('\n'),
    );
  });
});
