// Entry point of cilia_netlink.node: the few things JavaScript cannot do itself — netlink
// sockets (optionally opened inside another network namespace), namespace creation,
// per-namespace sysctls and TCP sockets with options Node cannot set (transparent, marked).
// Message encoding and decoding live in TypeScript.
#include "common.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  cilia_netlink::InitSocket(env, exports);
  cilia_netlink::InitNetns(env, exports);
  cilia_netlink::InitSysctl(env, exports);
  cilia_netlink::InitTcp(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(cilia_netlink, Init)
