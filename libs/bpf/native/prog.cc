// The kernel's loaded programs, as `bpftool prog show` lists them: id, name, type, tag, the
// maps each uses and, while kernel.bpf_stats_enabled is 1, how often it ran and for how long.
#include <bpf/bpf.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "common.h"

namespace cilia {

namespace {

// One program's info, or an empty object when it went away meanwhile (ENOENT).
Napi::Value Describe(Napi::Env env, uint32_t id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) {
    if (errno == ENOENT) return env.Undefined();
    ThrowErrno(env, errno, "open program " + std::to_string(id));
  }
  bpf_prog_info pi = {};
  uint32_t len = sizeof(pi);
  int err = bpf_obj_get_info_by_fd(fd, &pi, &len);
  std::vector<uint32_t> maps(pi.nr_map_ids);
  if (err == 0 && !maps.empty()) {
    uint32_t wanted = pi.nr_map_ids;
    pi = {};
    pi.nr_map_ids = wanted;
    pi.map_ids = reinterpret_cast<uint64_t>(maps.data());
    len = sizeof(pi);
    err = bpf_obj_get_info_by_fd(fd, &pi, &len);
    maps.resize(std::min(wanted, pi.nr_map_ids));
  }
  int saved = errno;
  close(fd);
  if (err != 0) ThrowErrno(env, saved, "program info of " + std::to_string(id));
  char tag[2 * BPF_TAG_SIZE + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++) snprintf(tag + 2 * i, 3, "%02x", pi.tag[i]);
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", pi.id);
  out.Set("name", std::string(pi.name));
  out.Set("type", pi.type);
  out.Set("tag", std::string(tag));
  out.Set("runCount", static_cast<double>(pi.run_cnt));
  out.Set("runTimeNs", static_cast<double>(pi.run_time_ns));
  out.Set("recursionMisses", static_cast<double>(pi.recursion_misses));
  out.Set("loadTimeNs", static_cast<double>(pi.load_time));
  out.Set("jitedBytes", pi.jited_prog_len);
  Napi::Array ids = Napi::Array::New(env, maps.size());
  for (size_t i = 0; i < maps.size(); i++) ids.Set(static_cast<uint32_t>(i), maps[i]);
  out.Set("mapIds", ids);
  return out;
}

// programs() -> [{ id, name, type, tag, runCount, runTimeNs, recursionMisses, loadTimeNs, jitedBytes, mapIds }]
Napi::Value Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  uint32_t id = 0, n = 0;
  while (bpf_prog_get_next_id(id, &id) == 0) {
    Napi::Value p = Describe(env, id);
    if (!p.IsUndefined()) out.Set(n++, p);
  }
  if (errno != ENOENT) ThrowErrno(env, errno, "list programs");
  return out;
}

}  // namespace

void InitProg(Napi::Env env, Napi::Object exports) {
  exports.Set("programs", Napi::Function::New<Programs>(env, "programs"));
}

}  // namespace cilia
