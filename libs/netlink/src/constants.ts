// Numbers from <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>,
// <linux/neighbour.h> and <linux/veth.h>: the stable user ABI of rtnetlink.

export const NLM_F = {
  REQUEST: 0x1,
  ACK: 0x4,
  DUMP: 0x300,
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
} as const;

export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNEIGH: 28,
  DELNEIGH: 29,
  GETNEIGH: 30,
  NEWRULE: 32,
  DELRULE: 33,
  GETRULE: 34,
  NEWQDISC: 36,
  DELQDISC: 37,
  GETQDISC: 38,
} as const;

/** TCA_* attributes of a qdisc message (<linux/rtnetlink.h>). */
export const TCA = { KIND: 1, OPTIONS: 2 } as const;
/** The parent of a root qdisc (<linux/pkt_sched.h>). */
export const TC_H_ROOT = 0xffffffff;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

export const IFLA = {
  ADDRESS: 1,
  IFNAME: 3,
  MTU: 4,
  LINK: 5,
  MASTER: 10,
  OPERSTATE: 16,
  LINKINFO: 18,
  NET_NS_FD: 28,
  EXT_MASK: 29,
  NUM_TX_QUEUES: 31,
  LINK_NETNSID: 37,
  TSO_MAX_SIZE: 59,
  /** Largest GSO packet the stack builds for this device, IPv4 (BIG TCP above 65536; kernel ≥ 6.3). */
  GSO_IPV4_MAX_SIZE: 63,
  /** Largest packet GRO assembles on this device, IPv4. */
  GRO_IPV4_MAX_SIZE: 64,
} as const;

export const IFLA_INFO = { KIND: 1, DATA: 2 } as const;
export const VETH_INFO_PEER = 1;
/** IFLA_VXLAN_* attributes inside IFLA_INFO_DATA of a "vxlan" link. */
export const IFLA_VXLAN = { LEARNING: 7, PORT: 15, COLLECT_METADATA: 25 } as const;
/** IFLA_EXT_MASK bit: leave per-link counters out of replies (most of their bytes). */
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

export const IFF = {
  UP: 0x1,
  LOOPBACK: 0x8,
  NOARP: 0x80,
  LOWER_UP: 0x10000,
} as const;

export const OPER_STATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;

export const IFA = { ADDRESS: 1, LOCAL: 2, LABEL: 3, FLAGS: 8 } as const;
export const IFA_F = { NODAD: 0x02, NOPREFIXROUTE: 0x200 } as const;

export const RTA = {
  DST: 1,
  OIF: 4,
  GATEWAY: 5,
  PRIORITY: 6,
  PREFSRC: 7,
  METRICS: 8,
  TABLE: 15,
} as const;
export const RTAX_MTU = 2;

export const RTN = {
  UNSPEC: 0,
  UNICAST: 1,
  LOCAL: 2,
  BROADCAST: 3,
  ANYCAST: 4,
  MULTICAST: 5,
  BLACKHOLE: 6,
  UNREACHABLE: 7,
  PROHIBIT: 8,
} as const;

export const RT_SCOPE = { UNIVERSE: 0, SITE: 200, LINK: 253, HOST: 254, NOWHERE: 255 } as const;
export const RT_TABLE_MAIN = 254;
/** `ip route` marks routes it adds as "boot"; so do we, so both tools treat them alike. */
export const RTPROT_BOOT = 3;
export const RTM_F_CLONED = 0x200;
export const RTNH_F_ONLINK = 0x4;

export const NDA = { DST: 1, LLADDR: 2 } as const;
export const NUD = {
  INCOMPLETE: 0x01,
  REACHABLE: 0x02,
  STALE: 0x04,
  DELAY: 0x08,
  PROBE: 0x10,
  FAILED: 0x20,
  NOARP: 0x40,
  PERMANENT: 0x80,
} as const;
