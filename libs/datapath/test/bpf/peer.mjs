// A tiny traffic peer for the netns tests, run inside a namespace with `ip netns exec`:
//   node peer.mjs tcp-server <port>        echoes "<client address>|<data>" and exits after one connection
//   node peer.mjs udp-server <port>        same for one datagram
//   node peer.mjs tcp-client <host> <port> <message>   prints the answer
//   node peer.mjs udp-client <host> <port> <message>   prints the answer
import { createServer, connect } from 'node:net';
import { createSocket } from 'node:dgram';

const [mode, a, b, c] = process.argv.slice(2);
const fail = (err) => {
  console.error(String(err));
  process.exit(1);
};
setTimeout(() => fail(`${mode}: timed out`), 8000).unref();

if (mode === 'tcp-server') {
  const server = createServer((sock) => {
    sock.once('data', (data) => {
      sock.end(`${sock.remoteAddress}|${data}`);
      server.close();
    });
  });
  server.listen(Number(a), '0.0.0.0', () => console.log('ready'));
} else if (mode === 'udp-server') {
  const sock = createSocket('udp4');
  sock.on('message', (data, rinfo) => {
    sock.send(`${rinfo.address}|${data}`, rinfo.port, rinfo.address, () => sock.close());
  });
  sock.bind(Number(a), () => console.log('ready'));
} else if (mode === 'tcp-client') {
  const sock = connect(Number(b), a, () => sock.write(c));
  let answer = '';
  sock.on('data', (d) => (answer += d));
  sock.on('end', () => {
    console.log(answer);
    process.exit(0);
  });
  sock.on('error', fail);
} else if (mode === 'udp-client') {
  const sock = createSocket('udp4');
  sock.on('message', (data) => {
    console.log(String(data));
    process.exit(0);
  });
  sock.send(c, Number(b), a, (err) => err && fail(err));
} else {
  fail(`unknown mode ${mode}`);
}
