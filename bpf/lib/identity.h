/* SPDX-License-Identifier: Apache-2.0 */
/* What an identity is, by its range (bpf/include/cilia/identity.h). */
#ifndef CILIA_LIB_IDENTITY_H
#define CILIA_LIB_IDENTITY_H

#include "cilia/common.h"
#include "cilia/identity.h"

/* The numbers user space mirrors: keep them in BTF for the TS check. */
CILIA_BTF_ENUM_ANCHOR(cilia_identity);
CILIA_BTF_ENUM_ANCHOR(cilia_identity_range);

/* A pod's identity (cluster scope): the same on every node, so it may cross a tunnel. */
static __always_inline int cilia_identity_is_pod(__u32 id)
{
	return id >= CILIA_IDENTITY_CLUSTER_MIN && id <= CILIA_IDENTITY_CLUSTER_MAX;
}

/* A local identity: a CIDR a policy names, outside the cluster, this node only. */
static __always_inline int cilia_identity_is_local(__u32 id)
{
	return id >= CILIA_IDENTITY_LOCAL_MIN;
}

/* The source identity of a packet another node tunnelled here with `id` (its VNI): what that
 * node sent as itself (its host) is a remote node here, never this node's host. */
static __always_inline __u32 cilia_identity_from_tunnel(__u32 id)
{
	return id == CILIA_IDENTITY_HOST ? CILIA_IDENTITY_REMOTE_NODE : id;
}

#endif /* CILIA_LIB_IDENTITY_H */
