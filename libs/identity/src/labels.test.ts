import { describe, expect, it } from 'vitest';
import { IdentityKeys } from './keys.js';
import { checkEncodable, labelFilter, labelsKey, parseLabelsKey } from './labels.js';

describe('label filter', () => {
  const filter = labelFilter();
  it("drops Cilium's churny labels and keeps the rest, the namespace and its labels", () => {
    const kept = filter.apply({
      'k8s:app': 'web',
      'k8s:tier': 'front',
      'k8s:pod-template-hash': '5d8f7c',
      'k8s:controller-revision-hash': 'abc',
      'k8s:statefulset.kubernetes.io/pod-name': 'db-0',
      'k8s:pod-template-generation': '3',
      'k8s:job-name': 'backup-123',
      'k8s:batch.kubernetes.io/job-name': 'backup-123',
      'k8s:batch.kubernetes.io/controller-uid': 'u',
      'k8s:io.kubernetes.pod.name': 'x',
      'k8s:io.kubernetes.pod.namespace': 'prod',
      'k8s:io.cilium.k8s.namespace.labels.team': 'a',
      'k8s:io.cilium.k8s.policy.serviceaccount': 'sa',
      'k8s:app.kubernetes.io/name': 'shop',
      'k8s:kubernetes.io/hostname': 'n1',
      'reserved:host': '',
    });
    expect(Object.keys(kept).sort()).toEqual([
      'k8s:app',
      'k8s:app.kubernetes.io/name',
      'k8s:io.cilium.k8s.namespace.labels.team',
      'k8s:io.cilium.k8s.policy.serviceaccount',
      'k8s:io.kubernetes.pod.namespace',
      'k8s:tier',
      'reserved:host',
    ]);
  });
  it('lets include punch holes into exclude, and keeps mandatory labels under exclude-all', () => {
    const only = labelFilter({ include: ['app$'], exclude: ['.*'] });
    expect(only.apply({ 'k8s:app': 'a', 'k8s:tier': 'b', 'k8s:io.kubernetes.pod.namespace': 'n' })).toEqual({ 'k8s:app': 'a', 'k8s:io.kubernetes.pod.namespace': 'n' });
  });
  it('names the bad pattern', () => {
    expect(() => labelFilter({ exclude: ['ok', '('] })).toThrow(/exclude\[1\]/);
  });
});

describe('key layout', () => {
  const keys = new IdentityKeys('cilium/state/identities/v1/');
  it("follows Cilium's id/ and value/<sorted labels>/<node> layout", () => {
    const k = labelsKey({ 'k8s:b': '2', 'k8s:a': '1' });
    expect(k).toBe('k8s:a=1;k8s:b=2;');
    expect(keys.id(300)).toBe('cilium/state/identities/v1/id/300');
    expect(keys.value(k, 'node-1')).toBe('cilium/state/identities/v1/value/k8s:a=1;k8s:b=2;/node-1');
    expect(keys.parseValue(keys.value('k8s:x.io/y=1;', 'n2'))).toEqual({ labelsKey: 'k8s:x.io/y=1;', node: 'n2' });
    expect(keys.parseId(keys.id(65535))).toBe(65535);
    expect(keys.parseId('cilium/state/identities/v1/id/x')).toBeUndefined();
    expect(parseLabelsKey(k)).toEqual({ 'k8s:a': '1', 'k8s:b': '2' });
    expect(parseLabelsKey('garbage')).toBeUndefined();
    expect(() => new IdentityKeys('no-slash')).toThrow(/prefix/);
  });
  it('refuses labels the layout cannot carry, naming the label', () => {
    expect(() => checkEncodable({ 'k8s:a;b': 'x' })).toThrow(/labels\.k8s:a;b/);
    expect(() => checkEncodable({ 'k8s:a': 'x;y' })).toThrow(/labels\.k8s:a/);
  });
});
