import { describe, expect, it } from 'vitest';
import { compileHttpRules, judgeHttp, validateHttpRules, type HttpRequestView } from './http-rules.js';

const req = (over: Partial<HttpRequestView> = {}): HttpRequestView => ({ method: 'GET', path: '/public/x', host: 'svc:8080', headers: {}, ...over });
const judge = (rules: unknown[], r: HttpRequestView) => judgeHttp(compileHttpRules(rules), r).allowed;

describe('CNP rules.http', () => {
  it('anchors method, path and host as Cilium does (the whole value must match)', () => {
    const rules = [{ method: 'GET', path: '/public/.*' }];
    expect(judge(rules, req())).toBe(true);
    expect(judge(rules, req({ path: '/x/public/y' }))).toBe(false);
    expect(judge(rules, req({ path: '/public' }))).toBe(false);
    expect(judge(rules, req({ method: 'POST' }))).toBe(false);
    expect(judge(rules, req({ method: 'GETX' }))).toBe(false);
    expect(judge([{ host: 'svc' }], req())).toBe(true); // the port is not part of the host
    expect(judge([{ host: 'sv' }], req())).toBe(false);
  });

  it('ORs rules; an empty rule admits every request; no rule admits none', () => {
    expect(judge([{ method: 'POST' }, { path: '/public/x' }], req())).toBe(true);
    expect(judge([{}], req({ method: 'DELETE', path: '/anything' }))).toBe(true);
    expect(judge([], req())).toBe(false);
  });

  it('headers: presence, and a value matched as an anchored regex', () => {
    const rules = [{ headers: ['X-Token: [0-9]+'] }];
    expect(judge(rules, req({ headers: { 'x-token': '123' } }))).toBe(true);
    expect(judge(rules, req({ headers: { 'x-token': 'abc' } }))).toBe(false);
    expect(judge(rules, req({ headers: { 'x-token': '123abc' } }))).toBe(false);
    expect(judge(rules, req())).toBe(false);
    expect(judge([{ headers: ['X-Present'] }], req({ headers: { 'x-present': '' } }))).toBe(true);
  });

  it('headerMatches: a mismatch fails the rule unless LOG (passes, reported) or a fix (ADD/REPLACE/DELETE)', () => {
    const fail = [{ headerMatches: [{ name: 'X-Env', value: 'prod' }] }];
    expect(judge(fail, req({ headers: { 'x-env': 'prod' } }))).toBe(true);
    expect(judge(fail, req({ headers: { 'x-env': 'dev' } }))).toBe(false);
    const log = judgeHttp(compileHttpRules([{ headerMatches: [{ name: 'X-Env', value: 'prod', mismatch: 'LOG' }] }]), req({ headers: { 'x-env': 'dev' } }));
    expect(log).toMatchObject({ allowed: true, mismatches: [{ name: 'x-env', action: 'LOG' }] });
    const replace = judgeHttp(compileHttpRules([{ headerMatches: [{ name: 'X-Env', value: 'prod', mismatch: 'REPLACE' }] }]), req());
    expect([...replace.rewrite]).toEqual([['x-env', 'prod']]);
    // A value is literal here: "a.b" does not match "axb".
    expect(judge([{ headerMatches: [{ name: 'h', value: 'a.b' }] }], req({ headers: { h: 'axb' } }))).toBe(false);
  });

  it('refuses an invalid regex, an unknown field and a bad mismatch action, naming the field', () => {
    expect(validateHttpRules([{ path: '/ok/.*' }])).toEqual([]);
    expect(validateHttpRules([{ method: 'GET' }, { path: '/(unclosed' }])).toEqual([{ path: '[1].path', reason: expect.stringMatching(/^invalid regular expression "\/\(unclosed"/) }]);
    expect(validateHttpRules([{ verb: 'GET' }])).toEqual([{ path: '[0].verb', reason: expect.stringMatching(/^unknown field/) }]);
    expect(validateHttpRules([{ headerMatches: [{ name: 'a', mismatch: 'FAILX' }] }])).toEqual([{ path: '[0].headerMatches[0].mismatch', reason: expect.stringMatching(/is not one of LOG, ADD, DELETE, REPLACE/) }]);
    expect(validateHttpRules([{ headers: ['bad name: x'] }])).toEqual([{ path: '[0].headers[0]', reason: '"bad name" is not a header name' }]);
    expect(validateHttpRules(['GET'])).toEqual([{ path: '[0]', reason: expect.stringMatching(/must be an object/) }]);
  });
});
