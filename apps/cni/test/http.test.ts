import { describe, expect, it } from 'vitest';
import { parseResponse } from '../src/http.js';

// The plugin's small HTTP client: the fixture and the agent answer with Content-Length; a
// chunked answer or a cut-off one must be handled too.
const raw = (text: string) => Buffer.from(text.replace(/\n/g, '\r\n'));

describe('parseResponse', () => {
  it('reads the status and a Content-Length body (ignoring anything after it)', () => {
    expect(parseResponse(raw('HTTP/1.1 201 Created\nContent-Type: application/json\ncontent-length: 8\n\n{"id":1}junk'))).toEqual({ status: 201, body: '{"id":1}' });
  });

  it('decodes a chunked body', () => {
    const text = 'HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n4\n[{"a\n5;ext=1\n":1}]\n0\n\n';
    expect(parseResponse(raw(text))).toEqual({ status: 200, body: '[{"a":1}]' });
  });

  it('takes the body up to the close without a length', () => {
    expect(parseResponse(raw('HTTP/1.0 503 Service Unavailable\n\n{"error":"x"}'))).toEqual({ status: 503, body: '{"error":"x"}' });
  });

  it('refuses cut-off and non-HTTP answers', () => {
    expect(() => parseResponse(raw('HTTP/1.1 200 OK\nContent-Length: 10\n\n{}'))).toThrow(/in the middle of a response/);
    expect(() => parseResponse(raw('HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n10\nabc'))).toThrow(/chunked response/);
    expect(() => parseResponse(raw('HTTP/1.1 200 OK\nContent-Length: 2'))).toThrow(/before a complete HTTP response/);
    expect(() => parseResponse(raw('SSH-2.0-OpenSSH\n\n'))).toThrow(/not an HTTP response: "SSH-2\.0-OpenSSH"/);
  });
});
