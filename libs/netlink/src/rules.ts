import { AF_INET, NLM_F, RTM } from './constants.js';
import { NetlinkInputError } from './errors.js';
import type { RouteSocket } from './socket.js';
import { type Message, MessageWriter, attrU32, parseAttrs } from './wire.js';

/** An IPv4 policy routing rule selecting packets by firewall mark (`ip rule add fwmark M/K lookup T pref P`). */
export interface FwmarkRuleSpec {
  /** Mark value, compared after masking. */
  fwmark: number;
  /** Bits of the mark compared; default every bit. */
  mask?: number;
  /** Table looked up for matching packets. */
  table: number;
  /** Priority (lower first); rules with the same priority and selector are one rule. */
  priority: number;
}

/** A rule as the kernel reports it (IPv4 fwmark rules; others with their mark 0). */
export interface FwmarkRule {
  fwmark: number;
  mask: number;
  table: number;
  priority: number;
}

// <linux/fib_rules.h>
const FIB_RULE_HDR_SIZE = 12;
const FR_ACT_TO_TBL = 1;
const FRA = { PRIORITY: 6, FWMARK: 10, TABLE: 15, FWMASK: 16 } as const;

function check(spec: FwmarkRuleSpec): void {
  const u32 = (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
  if (typeof spec !== 'object' || spec === null) throw new NetlinkInputError('rule', 'expected an object');
  if (!u32(spec.fwmark)) throw new NetlinkInputError('fwmark', `${spec.fwmark} is not a 32-bit mark`);
  if (spec.mask !== undefined && !u32(spec.mask)) throw new NetlinkInputError('mask', `${spec.mask} is not a 32-bit mask`);
  if (!u32(spec.table) || spec.table === 0) throw new NetlinkInputError('table', `${spec.table} is not a routing table id (1..2^32-1)`);
  if (!u32(spec.priority)) throw new NetlinkInputError('priority', `${spec.priority} is not a rule priority (0..2^32-1)`);
}

function ruleMessage(type: number, flags: number, spec: FwmarkRuleSpec): MessageWriter {
  const w = new MessageWriter(type, flags).header(FIB_RULE_HDR_SIZE, (h) => {
    h.writeUInt8(AF_INET, 0);
    h.writeUInt8(spec.table < 256 ? spec.table : 0, 4);
    h.writeUInt8(FR_ACT_TO_TBL, 7);
  });
  w.u32(FRA.PRIORITY, spec.priority);
  w.u32(FRA.FWMARK, spec.fwmark);
  w.u32(FRA.FWMASK, spec.mask ?? 0xffffffff);
  w.u32(FRA.TABLE, spec.table);
  return w;
}

const describe = (s: FwmarkRuleSpec) => `fwmark 0x${s.fwmark.toString(16)}/0x${(s.mask ?? 0xffffffff).toString(16)} lookup ${s.table} pref ${s.priority}`;

/** Adds the rule; an identical rule already there is left as it is. */
export async function ensureFwmarkRule(sock: RouteSocket, spec: FwmarkRuleSpec): Promise<void> {
  check(spec);
  const existing = await listFwmarkRules(sock);
  if (existing.some((r) => r.priority === spec.priority && r.fwmark === spec.fwmark && r.mask === (spec.mask ?? 0xffffffff) && r.table === spec.table)) return;
  await sock.request(ruleMessage(RTM.NEWRULE, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE, spec), 'rule add', describe(spec));
}

export async function deleteFwmarkRule(sock: RouteSocket, spec: FwmarkRuleSpec): Promise<void> {
  check(spec);
  await sock.request(ruleMessage(RTM.DELRULE, NLM_F.REQUEST | NLM_F.ACK, spec), 'rule delete', describe(spec));
}

function parseRule(msg: Message): FwmarkRule | undefined {
  const p = msg.payload;
  if (p.readUInt8(0) !== AF_INET) return undefined;
  const attrs = parseAttrs(p, FIB_RULE_HDR_SIZE);
  return {
    fwmark: attrU32(attrs, FRA.FWMARK) ?? 0,
    mask: attrU32(attrs, FRA.FWMASK) ?? 0,
    table: attrU32(attrs, FRA.TABLE) ?? p.readUInt8(4),
    priority: attrU32(attrs, FRA.PRIORITY) ?? 0,
  };
}

/** The IPv4 policy routing rules. */
export async function listFwmarkRules(sock: RouteSocket): Promise<FwmarkRule[]> {
  const w = new MessageWriter(RTM.GETRULE, NLM_F.REQUEST | NLM_F.DUMP).header(FIB_RULE_HDR_SIZE, (h) => h.writeUInt8(AF_INET, 0));
  const messages = await sock.dump(w, 'rule list', 'IPv4');
  return messages.flatMap((m) => (m.type === RTM.NEWRULE ? [parseRule(m)].filter((r): r is FwmarkRule => !!r) : []));
}
