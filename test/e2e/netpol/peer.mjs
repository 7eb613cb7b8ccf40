// One process per network namespace of the netpol e2e suite (pod, host or world client).
// Serves: TCP accept-and-close and UDP echo on every port given as an argument.
// Probes: reads JSON lines `{"id", "timeoutMs", "targets": [{"host", "port", "protocol", "size"?}]}`
// on stdin, probes every target at once, answers `{"id", "results": ["ok" | "timeout" | <errno>]}`.
// A UDP target's `size` makes the datagram that many bytes; only an echo as long counts.
// Every probe leaves from a source port of its own (a counter, never reused in one run), so a
// conntrack entry of an earlier, allowed probe can never stand in for a later one.
import dgram from 'node:dgram';
import net from 'node:net';
import readline from 'node:readline';

const ports = process.argv.slice(2).map(Number);
const FIRST_PORT = 10000;
const LAST_PORT = 32000; // below the kernel's ephemeral range
let nextPort = FIRST_PORT;
const takePort = () => {
  const p = nextPort;
  nextPort = nextPort >= LAST_PORT ? FIRST_PORT : nextPort + 1;
  return p;
};

let listening = 0;
const onListening = () => {
  if (++listening === ports.length * 2) process.stdout.write('ready\n');
};
for (const port of ports) {
  net
    .createServer((s) => {
      s.on('error', () => {});
      s.end();
    })
    .listen(port, '0.0.0.0', onListening);
  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => udp.send(msg, rinfo.port, rinfo.address));
  udp.bind(port, '0.0.0.0', onListening);
}

function probeTcp(host, port, timeoutMs, attempts = 3) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, localPort: takePort() });
    const finish = (result) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('connect', () => finish('ok'));
    socket.on('error', (err) => {
      if (err.code === 'EADDRINUSE' && attempts > 1) {
        clearTimeout(timer);
        socket.destroy();
        resolve(probeTcp(host, port, timeoutMs, attempts - 1));
      } else finish(err.code ?? err.message);
    });
  });
}

// One datagram, one more after half the time if no echo came (a lost first packet is not a denial).
function probeUdp(host, port, timeoutMs, size, attempts = 3) {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const payload = size ? Buffer.alloc(size, 'p') : Buffer.from(`probe ${host}:${port}`);
    let retry;
    const finish = (result) => {
      clearTimeout(timer);
      clearTimeout(retry);
      socket.close();
      resolve(result);
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    socket.on('message', (msg) => msg.length === payload.length && finish('ok'));
    socket.on('error', (err) => {
      if (err.code === 'EADDRINUSE' && attempts > 1) {
        clearTimeout(timer);
        socket.close();
        resolve(probeUdp(host, port, timeoutMs, size, attempts - 1));
      } else finish(err.code ?? err.message);
    });
    socket.bind(takePort(), () => {
      const send = () => socket.send(payload, port, host, () => {});
      send();
      retry = setTimeout(send, timeoutMs / 2);
    });
  });
}

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const { id, timeoutMs, targets } = JSON.parse(line);
  const results = await Promise.all(
    targets.map((t) => (t.protocol === 'UDP' ? probeUdp(t.host, t.port, timeoutMs, t.size) : probeTcp(t.host, t.port, timeoutMs))),
  );
  process.stdout.write(`${JSON.stringify({ id, results })}\n`);
});
process.stdin.on('end', () => process.exit(0));
