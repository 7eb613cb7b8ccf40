import { connect } from 'node:net';

/** A response: status code and body text. */
export interface HttpResponse {
  readonly status: number;
  readonly body: string;
}

/**
 * One HTTP/1.1 request over a unix socket (`Connection: close`; the response ends with the
 * connection). Hand-rolled rather than node:http: loading that module is a measurable share of
 * a plugin invocation, and the agent's answers are small JSON documents. Socket failures reject
 * with the errno error; no answer within `timeoutMs` rejects with code ETIMEDOUT.
 */
export function httpRequest(socketPath: string, method: string, path: string, body: string | undefined, timeoutMs: number): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(() => {
      const err = Object.assign(new Error(`no answer to ${method} ${path.split('?')[0]} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
      finish(() => reject(err));
    }, timeoutMs);
    socket.on('error', (err) => finish(() => reject(err)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      finish(() => {
        try {
          resolve(parseResponse(Buffer.concat(chunks)));
        } catch (err) {
          reject(err);
        }
      });
    });
    const payload = body === undefined ? undefined : Buffer.from(body);
    const head = [
      `${method} ${path} HTTP/1.1`,
      'Host: cilia-agent',
      'Accept: application/json',
      'Connection: close',
      ...(payload ? ['Content-Type: application/json', `Content-Length: ${payload.length}`] : []),
      '',
      '',
    ].join('\r\n');
    socket.write(payload ? Buffer.concat([Buffer.from(head), payload]) : head);
  });
}

/** Parses a complete HTTP/1.1 response (status line, headers, body by length or chunks). */
export function parseResponse(raw: Buffer): HttpResponse {
  const split = raw.indexOf('\r\n\r\n');
  if (split < 0) throw new Error('the agent closed the connection before a complete HTTP response');
  const lines = raw.subarray(0, split).toString('latin1').split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!status) throw new Error(`not an HTTP response: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  let body = raw.subarray(split + 4);
  if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) {
    body = dechunk(body);
  } else if (headers.has('content-length')) {
    const length = Number(headers.get('content-length'));
    if (!Number.isInteger(length) || length < 0 || body.length < length) throw new Error('the agent closed the connection in the middle of a response');
    body = body.subarray(0, length);
  }
  return { status: Number(status[1]), body: body.toString('utf8') };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) throw new Error('the agent closed the connection in the middle of a chunked response');
    const size = parseInt(data.subarray(at, eol).toString('latin1').split(';')[0]!, 16);
    if (!Number.isInteger(size) || size < 0) throw new Error('malformed chunk size in the agent\'s response');
    if (size === 0) return Buffer.concat(parts);
    if (eol + 2 + size > data.length) throw new Error('the agent closed the connection in the middle of a chunked response');
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
