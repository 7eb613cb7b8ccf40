/* SPDX-License-Identifier: Apache-2.0 */
/* Security identities: the reserved ones and the ranges the allocator hands out, numbered as
 * Cilium numbers them. Wire ABI (ipcache, policy keys, tunnel VNIs, events); the TS side is
 * @cilia/core's ReservedIdentity and IdentityRange, checked against these enums (anchored in
 * BTF by bpf/lib/identity.h) by libs/datapath/test/bpf/layout.test.ts. */
#ifndef CILIA_IDENTITY_H
#define CILIA_IDENTITY_H

/* Reserved identities (Cilium's reserved:* labels). */
enum cilia_identity {
	CILIA_IDENTITY_UNKNOWN = 0,
	CILIA_IDENTITY_HOST = 1,           /* this node */
	CILIA_IDENTITY_WORLD = 2,          /* anything outside the cluster; an ipcache miss */
	CILIA_IDENTITY_UNMANAGED = 3,
	CILIA_IDENTITY_HEALTH = 4,
	CILIA_IDENTITY_INIT = 5,
	CILIA_IDENTITY_REMOTE_NODE = 6,    /* another node (a VNI of CILIA_IDENTITY_HOST from it) */
	CILIA_IDENTITY_KUBE_APISERVER = 7,
	CILIA_IDENTITY_INGRESS = 8,
};

/* Scopes of the allocated identities. Cluster identities (labels → id through the KvStore) are
 * pods' and the same on every node; local ones are CIDRs that policies name, this node only. */
enum cilia_identity_range {
	CILIA_IDENTITY_CLUSTER_MIN = 256,
	CILIA_IDENTITY_CLUSTER_MAX = 65535,
	CILIA_IDENTITY_LOCAL_MIN = (1 << 24) + 1,
};

#endif /* CILIA_IDENTITY_H */
