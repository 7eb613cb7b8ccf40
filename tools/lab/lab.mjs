#!/usr/bin/env node
// `npm run lab -- up --nodes N [--routing MODE] [--set KEY=VALUE ...] [--prefix P]`, `down [--prefix P]`,
// `status [--prefix P] [-o json]`, `node-down --node K [--prefix P]`, `node-up --node K [--prefix P]`.
import { parseArgs } from 'node:util';
import { down, nodeDown, nodeUp, parseSettings, ROUTING_MODES, status, up } from './lab-core.mjs';

const USAGE = `usage: npm run lab -- <up|down|status|node-down|node-up> [options]
  up --nodes N [--routing MODE] [--prefix P]   create N node namespaces, etcd and one agent per node
     [--set KEY=VALUE ...]                     extra agent config for every node, e.g. --set datapath.bigTcp=true
  down [--prefix P]                            remove everything the lab made (idempotent)
  status [--prefix P] [-o json]                show each node's agent, health and node count
  node-down --node K [--prefix P]              stop node K's agent: the others see it leave
  node-up --node K [--prefix P]                start node K's agent again: it adopts its pods and rejoins
  --routing MODE  how pods on different nodes reach each other: ${Object.keys(ROUTING_MODES).join(' | ')} (default none)
  --prefix P      names: P-1 … P-N (default "node")`;

async function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      nodes: { type: 'string' },
      node: { type: 'string' },
      routing: { type: 'string', default: 'none' },
      set: { type: 'string', multiple: true, default: [] },
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
      await up({ nodes: Number(values.nodes), prefix: values.prefix, routing: values.routing, settings: parseSettings(values.set), log });
      return 0;
    }
    case 'node-down':
    case 'node-up': {
      if (values.node === undefined || !/^\d+$/.test(values.node)) throw new Error(`--node: required, a node number (e.g. --node 2), got '${values.node ?? ''}'`);
      await (command === 'node-down' ? nodeDown : nodeUp)({ prefix: values.prefix, node: Number(values.node), log });
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
        console.log(`routing ${s.routing}`);
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
