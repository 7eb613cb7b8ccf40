import { describe, expect, it } from 'vitest';
import { agentNetnsName, attachmentKey, hostInterfaceName, leaseOwner, leaseOwnerId } from './naming.js';
import { EndpointRequestError, validateCreateRequest } from './validate.js';

describe('validateCreateRequest', () => {
  it('fills defaults', () => {
    expect(validateCreateRequest({ name: 'web-1' })).toEqual({ name: 'web-1', namespace: 'default', labels: {}, interfaceName: 'eth0' });
  });

  it('takes named ports, protocol TCP unless given', () => {
    const req = validateCreateRequest({ name: 'web-1', namedPorts: { 'serve-80-tcp': { port: 80 }, 'serve-81-udp': { port: 81, protocol: 'UDP' } } });
    expect(req.namedPorts).toEqual({ 'serve-80-tcp': { port: 80, protocol: 'TCP' }, 'serve-81-udp': { port: 81, protocol: 'UDP' } });
  });

  it.each([
    [{ name: '' }, 'name'],
    [{ name: 'a_b' }, 'name'],
    [{ name: 'a', namespace: 7 }, 'namespace'],
    [{ name: 'a', labels: { app: 1 } }, 'labels.app'],
    [{ name: 'a', netns: 'relative/path' }, 'netns'],
    [{ name: 'a', interfaceName: 'much-too-long-name0' }, 'interfaceName'],
    [{ name: 'a', containerId: '' }, 'containerId'],
    [{ name: 'a', colour: 'red' }, 'colour'],
    [{ name: 'a', namedPorts: [] }, 'namedPorts'],
    [{ name: 'a', namedPorts: { HTTP: { port: 80 } } }, 'namedPorts.HTTP'],
    [{ name: 'a', namedPorts: { '8080': { port: 80 } } }, 'namedPorts.8080'],
    [{ name: 'a', namedPorts: { 'much-too-long-port': { port: 80 } } }, 'namedPorts.much-too-long-port'],
    [{ name: 'a', namedPorts: { http: 80 } }, 'namedPorts.http'],
    [{ name: 'a', namedPorts: { http: { port: 0 } } }, 'namedPorts.http.port'],
    [{ name: 'a', namedPorts: { http: { port: 65536 } } }, 'namedPorts.http.port'],
    [{ name: 'a', namedPorts: { http: { port: 8.5 } } }, 'namedPorts.http.port'],
    [{ name: 'a', namedPorts: { http: { port: 80, protocol: 'ICMP' } } }, 'namedPorts.http.protocol'],
    [{ name: 'a', namedPorts: { http: { port: 80, colour: 'red' } } }, 'namedPorts.http.colour'],
  ])('refuses %j naming %s', (body, path) => {
    try {
      validateCreateRequest(body);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(EndpointRequestError);
      expect((err as EndpointRequestError).path).toBe(path);
    }
  });
});

describe('naming', () => {
  it('derives a stable 15-character host interface name from the attachment', () => {
    const key = attachmentKey({ containerId: 'abc', interfaceName: 'eth0', namespace: 'ns', name: 'p' });
    expect(key).toBe('abc/eth0');
    expect(hostInterfaceName(key)).toMatch(/^lxc[0-9a-f]{12}$/);
    expect(hostInterfaceName(key)).toBe(hostInterfaceName('abc/eth0'));
    expect(hostInterfaceName('ns/p')).not.toBe(hostInterfaceName('ns/q'));
    expect(attachmentKey({ interfaceName: 'eth0', namespace: 'ns', name: 'p' })).toBe('ns/p');
  });

  it('names agent-made netns and lease owners unambiguously', () => {
    expect(agentNetnsName('a-b', 'c')).not.toBe(agentNetnsName('a', 'b-c'));
    expect(leaseOwnerId(leaseOwner(42))).toBe(42);
    expect(leaseOwnerId('container:1')).toBeUndefined();
  });
});
