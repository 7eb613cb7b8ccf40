import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** PEM files of a throwaway CA, a server certificate for 127.0.0.1 and a client certificate it signed. */
export interface TestPki {
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

const openssl = (cwd: string, ...args: string[]): void => void execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Makes a CA named `name` in `dir` (P-256 keys, valid a day) with one server and one client certificate. */
export function makeTestPki(dir: string, name = 'ca'): TestPki {
  const file = (f: string) => join(dir, `${name}-${f}`);
  openssl(dir, 'req', '-x509', ...EC, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '1', '-subj', `/CN=cilia test ${name}`);
  const issue = (who: string, subject: string, extensions: string[]) => {
    openssl(dir, 'req', ...EC, '-keyout', file(`${who}.key`), '-out', file(`${who}.csr`), '-subj', subject, ...extensions);
    openssl(dir, 'x509', '-req', '-in', file(`${who}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file(`${who}.pem`), '-days', '1', '-copy_extensions', 'copy');
  };
  issue('server', '/CN=etcd', ['-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'extendedKeyUsage=serverAuth']);
  issue('client', '/CN=cilia', ['-addext', 'extendedKeyUsage=clientAuth']);
  return {
    caFile: file('ca.pem'),
    serverCertFile: file('server.pem'),
    serverKeyFile: file('server.key'),
    clientCertFile: file('client.pem'),
    clientKeyFile: file('client.key'),
  };
}
