import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** A throwaway CA in `dir` (openssl, P-256, valid a day) and what it signed: a server certificate for 127.0.0.1 and a client certificate. */
export function makeCa(dir: string): { ca: string; server: { cert: string; key: string }; client: { cert: string; key: string } } {
  const f = (name: string) => join(dir, name);
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', ...key, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=cilia e2e CA']);
  for (const [who, ext] of [['server', ['-addext', 'subjectAltName=IP:127.0.0.1']], ['client', []]] as const) {
    run(['req', ...key, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who}`, ...ext]);
    run(['x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.pem`), '-days', '1', '-copy_extensions', 'copy']);
  }
  return { ca: f('ca.pem'), server: { cert: f('server.pem'), key: f('server.key') }, client: { cert: f('client.pem'), key: f('client.key') } };
}
