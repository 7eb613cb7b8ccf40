/* SPDX-License-Identifier: Apache-2.0 */
/* Compiles, but the verifier must refuse it: packet data read without a bounds check. */
#include "cilia/common.h"

SEC("tc")
int cls_unchecked_read(struct __sk_buff *skb)
{
	__u8 *data = (__u8 *)(long)skb->data;

	return data[64] == 0x42 ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int cls_fine(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
