// What this kernel supports, probed through libbpf (loading tiny programs/maps), and the
// bpffs mount the pins live on.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mount.h>

#include "common.h"

namespace cilia {

namespace {

struct Named {
  const char* name;
  int value;
};

const Named kMapTypes[] = {
    {"hash", BPF_MAP_TYPE_HASH},
    {"array", BPF_MAP_TYPE_ARRAY},
    {"prog_array", BPF_MAP_TYPE_PROG_ARRAY},
    {"percpu_hash", BPF_MAP_TYPE_PERCPU_HASH},
    {"percpu_array", BPF_MAP_TYPE_PERCPU_ARRAY},
    {"lru_hash", BPF_MAP_TYPE_LRU_HASH},
    {"lru_percpu_hash", BPF_MAP_TYPE_LRU_PERCPU_HASH},
    {"lpm_trie", BPF_MAP_TYPE_LPM_TRIE},
    {"hash_of_maps", BPF_MAP_TYPE_HASH_OF_MAPS},
    {"array_of_maps", BPF_MAP_TYPE_ARRAY_OF_MAPS},
    {"sockhash", BPF_MAP_TYPE_SOCKHASH},
    {"ringbuf", BPF_MAP_TYPE_RINGBUF},
};

const Named kProgTypes[] = {
    {"sched_cls", BPF_PROG_TYPE_SCHED_CLS},
    {"xdp", BPF_PROG_TYPE_XDP},
    {"cgroup_sock_addr", BPF_PROG_TYPE_CGROUP_SOCK_ADDR},
    {"cgroup_sock", BPF_PROG_TYPE_CGROUP_SOCK},
    {"sk_lookup", BPF_PROG_TYPE_SK_LOOKUP},
};

// Helpers probed from a tc program, the hook that needs them.
const Named kHelpers[] = {
    {"bpf_sk_assign", BPF_FUNC_sk_assign},
    {"bpf_redirect_peer", BPF_FUNC_redirect_peer},
    {"bpf_redirect_neigh", BPF_FUNC_redirect_neigh},
    {"bpf_skb_set_tstamp", BPF_FUNC_skb_set_tstamp},
    {"bpf_fib_lookup", BPF_FUNC_fib_lookup},
    {"bpf_ringbuf_reserve", BPF_FUNC_ringbuf_reserve},
    {"bpf_loop", BPF_FUNC_loop},
    {"bpf_ktime_get_boot_ns", BPF_FUNC_ktime_get_boot_ns},
};

// probeFeatures() -> {mapTypes: {name: bool}, progTypes: {...}, helpers: {...}}
Napi::Value ProbeFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LibbpfLogCapture quiet;  // probes log their failures; the booleans say it all
  Napi::Object maps = Napi::Object::New(env);
  for (const Named& m : kMapTypes) maps.Set(m.name, libbpf_probe_bpf_map_type(static_cast<bpf_map_type>(m.value), nullptr) == 1);
  Napi::Object progs = Napi::Object::New(env);
  for (const Named& p : kProgTypes) progs.Set(p.name, libbpf_probe_bpf_prog_type(static_cast<bpf_prog_type>(p.value), nullptr) == 1);
  Napi::Object helpers = Napi::Object::New(env);
  for (const Named& h : kHelpers) {
    helpers.Set(h.name, libbpf_probe_bpf_helper(BPF_PROG_TYPE_SCHED_CLS, static_cast<bpf_func_id>(h.value), nullptr) == 1);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("mapTypes", maps);
  out.Set("progTypes", progs);
  out.Set("helpers", helpers);
  return out;
}

// mountBpffs(path): mount -t bpf bpf <path> (mode 0700)
Napi::Value MountBpffs(const Napi::CallbackInfo& info) {
  std::string path = GetString(info[0], "path");
  if (mount("bpf", path.c_str(), "bpf", 0, "mode=0700") != 0) ThrowErrno(info.Env(), errno, "mount bpffs at " + path);
  return info.Env().Undefined();
}

Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), libbpf_version_string());
}

}  // namespace

void InitFeatures(Napi::Env env, Napi::Object exports) {
  exports.Set("probeFeatures", Napi::Function::New<ProbeFeatures>(env, "probeFeatures"));
  exports.Set("mountBpffs", Napi::Function::New<MountBpffs>(env, "mountBpffs"));
  exports.Set("libbpfVersion", Napi::Function::New<LibbpfVersion>(env, "libbpfVersion"));
}

}  // namespace cilia
