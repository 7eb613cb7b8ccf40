// Servers and clients for the load-balancer tests, run inside pod or node namespaces.
//   serve NAME TCPPORT UDPPORT   answers each TCP connection and each UDP datagram with NAME
//                                (TCP: "NAME\n" then close; "bulk" as the first bytes: it
//                                streams until the client closes); prints "ready"
//   tcp HOST PORT COUNT [PAR]    COUNT connections, PAR at a time; prints one JSON line
//                                {answers: {NAME: n}, errors: {CODE: n}, peers: [the address
//                                getpeername gave], ms}
//   udp HOST PORT COUNT          COUNT requests on one unconnected socket, one at a time;
//                                {answers, errors, from: ["addr:port" of the replies]}
//   loop HOST PORT               a connection every 20 ms until stdin closes; then the tcp JSON
//   stream HOST PORT MS          one connection reading a stream for MS ms; {bytes, maxGapMs, error}
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const count = (m, k) => (m[k] = (m[k] ?? 0) + 1);

function serve(name, tcpPort, udpPort) {
  const chunk = Buffer.alloc(64 * 1024, 7);
  createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d) => {
      if (!d.toString().startsWith('bulk')) return s.end(`${name}\n`);
      const pump = () => {
        while (!s.destroyed && s.write(chunk));
      };
      s.on('drain', pump);
      pump();
    });
  }).listen(Number(tcpPort), () => {
    const u = createSocket('udp4');
    u.on('message', (m, r) => u.send(`${name}\n`, r.port, r.address));
    u.bind(Number(udpPort), () => console.log('ready'));
  });
}

function once(host, port) {
  return new Promise((resolve) => {
    const s = connect(Number(port), host);
    let data = '';
    let peer;
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ error: 'TIMEOUT' });
    }, 3000);
    s.on('connect', () => {
      peer = s.remoteAddress;
      s.write('hi');
    });
    s.on('data', (d) => (data += d));
    s.on('error', (e) => {
      clearTimeout(timer);
      resolve({ error: e.code ?? e.message });
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ answer: data.trim(), peer });
    });
  });
}

async function tcp(host, port, n, par = 10) {
  const t0 = Date.now();
  const r = { answers: {}, errors: {}, peers: [] };
  let left = Number(n);
  const worker = async () => {
    while (left-- > 0) record(r, await once(host, port));
  };
  await Promise.all(Array.from({ length: Math.min(Number(par), Number(n)) }, worker));
  out({ ...r, ms: Date.now() - t0 });
}

function record(r, x) {
  if (x.error) count(r.errors, x.error);
  else count(r.answers, x.answer);
  if (x.peer && !r.peers.includes(x.peer)) r.peers.push(x.peer);
}

async function udp(host, port, n) {
  const u = createSocket('udp4');
  const r = { answers: {}, errors: {}, from: [] };
  for (let i = 0; i < Number(n); i++) {
    const x = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ error: 'TIMEOUT' }), 2000);
      u.once('message', (m, rinfo) => {
        clearTimeout(timer);
        resolve({ answer: m.toString().trim(), from: `${rinfo.address}:${rinfo.port}` });
      });
      u.send('q', Number(port), host, (err) => {
        if (!err) return;
        clearTimeout(timer);
        resolve({ error: err.code ?? err.message });
      });
    });
    if (x.error) count(r.errors, x.error);
    else count(r.answers, x.answer);
    if (x.from && !r.from.includes(x.from)) r.from.push(x.from);
  }
  u.close();
  out(r);
}

async function loop(host, port) {
  const r = { answers: {}, errors: {}, peers: [] };
  let stop = false;
  process.stdin.on('end', () => (stop = true));
  process.stdin.resume();
  while (!stop) {
    record(r, await once(host, port));
    await new Promise((res) => setTimeout(res, 20));
  }
  out(r);
}

function stream(host, port, ms) {
  const s = connect(Number(port), host, () => s.write('bulk'));
  let bytes = 0;
  let last = Date.now();
  let maxGapMs = 0;
  let error = null;
  s.on('data', (d) => {
    const now = Date.now();
    maxGapMs = Math.max(maxGapMs, now - last);
    last = now;
    bytes += d.length;
  });
  s.on('error', (e) => (error = e.code ?? e.message));
  s.on('close', () => (error ??= 'closed'));
  setTimeout(() => {
    out({ bytes, maxGapMs: Math.max(maxGapMs, Date.now() - last), error });
    s.destroy();
    process.exit(0);
  }, Number(ms));
}

if (mode === 'serve') serve(...args);
else if (mode === 'tcp') tcp(...args);
else if (mode === 'udp') udp(...args);
else if (mode === 'loop') loop(...args);
else if (mode === 'stream') stream(...args);
else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
