import { describe, expect, it } from 'vitest';
import { agentNetnsName, attachmentKey, hostInterfaceName, leaseOwner, leaseOwnerId } from './naming.js';
import { EndpointRequestError, validateCreateRequest } from './validate.js';

describe('validateCreateRequest', () => {
  it('fills defaults', () => {
    expect(validateCreateRequest({ name: 'web-1' })).toEqual({ name: 'web-1', namespace: 'default', labels: {}, interfaceName: 'eth0' });
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
