#!/usr/bin/env node
// `npm run lab -- up --nodes N [--routing none] [--prefix P]`, `down [--prefix P]`, `status [--prefix P] [-o json]`.
import { parseArgs } from 'node:util';
import { down, status, up } from './lab-core.mjs';

const USAGE = `usage: npm run lab -- <up|down|status> [options]
  up --nodes N [--routing none] [--prefix P]   create N node namespaces, etcd and one agent per node
  down [--prefix P]                            remove everything the lab made (idempotent)
  status [--prefix P] [-o json]                show each node's agent, health and node count
  --prefix P   names: P-1 … P-N (default "node")`;

const ROUTING_MODES = ['none'];

async function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      nodes: { type: 'string' },
      routing: { type: 'string', default: 'none' },
      prefix: { type: 'string', default: 'node' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...extra] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  if (extra.length) throw new Error(`unexpected argument '${extra[0]}'`);
  const log = (m) => console.log(`[lab] ${m}`);
  switch (command) {
    case 'up': {
      if (values.nodes === undefined) throw new Error('--nodes: required (e.g. --nodes 3)');
      if (!/^\d+$/.test(values.nodes)) throw new Error(`--nodes: must be a positive integer, got '${values.nodes}'`);
      if (!ROUTING_MODES.includes(values.routing)) throw new Error(`--routing: unknown mode '${values.routing}' (supported: ${ROUTING_MODES.join(', ')})`);
      await up({ nodes: Number(values.nodes), prefix: values.prefix, log });
      return 0;
    }
    case 'down':
      await down({ prefix: values.prefix, log });
      return 0;
    case 'status': {
      const s = await status({ prefix: values.prefix });
      if (values.output === 'json') console.log(JSON.stringify(s, null, 2));
      else if (!s.up) console.log(`lab '${s.prefix}' is not up`);
      else {
        console.log(`etcd ${s.etcd.client} pid ${s.etcd.pid} ${s.etcd.running ? 'running' : 'NOT RUNNING'}`);
        for (const n of s.nodes) console.log(`${n.name}\t${n.ip}\t${n.podCidr}\tpid ${n.pid} ${n.running ? 'running' : 'NOT RUNNING'}\thealth ${n.health}\tsees ${n.seesNodes} node(s)`);
      }
      return 0;
    }
    default:
      throw new Error(`unknown command '${command}'\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`lab: ${err.message}`);
    process.exit(1);
  },
);
