// Attachments. tc uses libbpf's netlink API with a fixed handle/priority so that attaching
// again replaces in place (NLM_F_REPLACE: no moment without a program) and is found again
// after a restart. XDP replaces atomically by nature. cgroup hooks use bpf links pinned in
// bpffs, which survive the agent and are updated in place.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <cstring>

#include "common.h"

namespace cilia {

namespace {

bpf_tc_attach_point TcPoint(Napi::Env env, const std::string& direction) {
  if (direction == "ingress") return BPF_TC_INGRESS;
  if (direction == "egress") return BPF_TC_EGRESS;
  throw Napi::TypeError::New(env, "direction must be 'ingress' or 'egress', got '" + direction + "'");
}

std::string IfName(int ifindex) {
  char name[IF_NAMESIZE] = {0};
  if (if_indextoname(static_cast<unsigned>(ifindex), name) == nullptr) return "ifindex " + std::to_string(ifindex);
  return std::string(name) + " (ifindex " + std::to_string(ifindex) + ")";
}

uint32_t ProgId(Napi::Env env, int fd) {
  bpf_prog_info pi = {};
  uint32_t len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len) != 0) ThrowErrno(env, errno, "program info");
  return pi.id;
}

// ifNameToIndex(name) -> ifindex, throws ENODEV naming the interface
Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  std::string name = GetString(info[0], "interface");
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) ThrowErrno(info.Env(), errno == 0 ? ENODEV : errno, "find interface '" + name + "'");
  return Napi::Number::New(info.Env(), idx);
}

// tcAttach(ifindex, direction, progFd, handle, priority) -> {handle, priority, progId}
Napi::Value TcAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = GetInt32(info[0], "ifindex");
  std::string direction = GetString(info[1], "direction");
  int progFd = GetInt32(info[2], "progFd");
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = TcPoint(env, direction));
  int err = bpf_tc_hook_create(&hook);  // the clsact qdisc; EEXIST when already there
  if (err != 0 && err != -EEXIST) ThrowErrno(env, err, "create clsact qdisc on " + IfName(ifindex));
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = progFd, .flags = BPF_TC_F_REPLACE, .handle = GetUint32(info[3], "handle"),
              .priority = GetUint32(info[4], "priority"));
  err = bpf_tc_attach(&hook, &opts);
  if (err != 0) ThrowErrno(env, err, "attach tc " + direction + " program on " + IfName(ifindex));
  Napi::Object out = Napi::Object::New(env);
  out.Set("handle", opts.handle);
  out.Set("priority", opts.priority);
  out.Set("progId", opts.prog_id);
  return out;
}

// tcQuery(ifindex, direction, handle, priority) -> progId, 0 when nothing is attached there
Napi::Value TcQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = GetInt32(info[0], "ifindex");
  std::string direction = GetString(info[1], "direction");
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = TcPoint(env, direction));
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = GetUint32(info[2], "handle"), .priority = GetUint32(info[3], "priority"));
  int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -EINVAL) return Napi::Number::New(env, 0);  // EINVAL: no clsact qdisc
  if (err != 0) ThrowErrno(env, err, "query tc " + direction + " on " + IfName(ifindex));
  return Napi::Number::New(env, opts.prog_id);
}

// tcDetach(ifindex, direction, handle, priority) -> boolean (false when nothing was there)
Napi::Value TcDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = GetInt32(info[0], "ifindex");
  std::string direction = GetString(info[1], "direction");
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = TcPoint(env, direction));
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = GetUint32(info[2], "handle"), .priority = GetUint32(info[3], "priority"));
  int err = bpf_tc_detach(&hook, &opts);
  if (err == -ENOENT || err == -EINVAL) return Napi::Boolean::New(env, false);
  if (err != 0) ThrowErrno(env, err, "detach tc " + direction + " program from " + IfName(ifindex));
  return Napi::Boolean::New(env, true);
}

uint32_t XdpModeFlag(Napi::Env env, const std::string& mode) {
  if (mode == "generic") return XDP_FLAGS_SKB_MODE;
  if (mode == "native") return XDP_FLAGS_DRV_MODE;
  if (mode == "offload") return XDP_FLAGS_HW_MODE;
  throw Napi::TypeError::New(env, "XDP mode must be 'generic', 'native' or 'offload', got '" + mode + "'");
}

// xdpAttach(ifindex, progFd, mode, expectedProgFd?) -> progId. With expectedProgFd the swap
// only happens if that program is still the attached one (EEXIST otherwise).
Napi::Value XdpAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = GetInt32(info[0], "ifindex");
  int progFd = GetInt32(info[1], "progFd");
  std::string mode = GetString(info[2], "mode");
  uint32_t flags = XdpModeFlag(env, mode);
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
  if (info[3].IsNumber()) {
    flags |= XDP_FLAGS_REPLACE;
    opts.old_prog_fd = GetInt32(info[3], "expectedProgFd");
  }
  int err = bpf_xdp_attach(ifindex, progFd, flags, &opts);
  if (err != 0) ThrowErrno(env, err, "attach XDP (" + mode + ") program on " + IfName(ifindex));
  return Napi::Number::New(env, ProgId(env, progFd));
}

// xdpDetach(ifindex, mode)
Napi::Value XdpDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = GetInt32(info[0], "ifindex");
  std::string mode = GetString(info[1], "mode");
  int err = bpf_xdp_detach(ifindex, XdpModeFlag(env, mode), nullptr);
  if (err != 0) ThrowErrno(env, err, "detach XDP (" + mode + ") program from " + IfName(ifindex));
  return env.Undefined();
}

// xdpQuery(ifindex) -> {generic, native, offload}: attached program ids, 0 for none
Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = GetInt32(info[0], "ifindex");
  LIBBPF_OPTS(bpf_xdp_query_opts, opts);
  int err = bpf_xdp_query(ifindex, 0, &opts);
  if (err != 0) ThrowErrno(env, err, "query XDP on " + IfName(ifindex));
  Napi::Object out = Napi::Object::New(env);
  out.Set("generic", opts.skb_prog_id);
  out.Set("native", opts.drv_prog_id);
  out.Set("offload", opts.hw_prog_id);
  return out;
}

// cgroupLink(progFd, cgroupPath, attachType, pinPath|null) -> {linkFd, replaced}
// A link already pinned at pinPath is updated to the new program (atomic); otherwise a new
// link is created on the cgroup and pinned there.
Napi::Value CgroupLink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int progFd = GetInt32(info[0], "progFd");
  std::string cgroup = GetString(info[1], "cgroupPath");
  uint32_t attachType = GetUint32(info[2], "attachType");
  std::string pin = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "";
  Napi::Object out = Napi::Object::New(env);
  if (!pin.empty()) {
    int linkFd = bpf_obj_get(pin.c_str());
    if (linkFd >= 0) {
      if (bpf_link_update(linkFd, progFd, nullptr) != 0) {
        int e = errno;
        close(linkFd);
        ThrowErrno(env, e, "update cgroup link pinned at " + pin);
      }
      out.Set("linkFd", linkFd);
      out.Set("replaced", true);
      return out;
    }
    if (errno != ENOENT) ThrowErrno(env, errno, "open cgroup link pinned at " + pin);
  }
  int cgFd = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgFd < 0) ThrowErrno(env, errno, "open cgroup " + cgroup);
  int linkFd = bpf_link_create(progFd, cgFd, static_cast<bpf_attach_type>(attachType), nullptr);
  int e = errno;
  close(cgFd);
  if (linkFd < 0) ThrowErrno(env, e, "attach program to cgroup " + cgroup);
  if (!pin.empty() && bpf_obj_pin(linkFd, pin.c_str()) != 0) {
    e = errno;
    close(linkFd);
    ThrowErrno(env, e, "pin cgroup link at " + pin);
  }
  out.Set("linkFd", linkFd);
  out.Set("replaced", false);
  return out;
}

// linkDetach(linkFd): detaches the link from its hook (even while pinned elsewhere).
Napi::Value LinkDetach(const Napi::CallbackInfo& info) {
  int fd = GetInt32(info[0], "linkFd");
  if (bpf_link_detach(fd) != 0) ThrowErrno(info.Env(), errno, "detach link");
  return info.Env().Undefined();
}

// linkProgId(linkFd) -> id of the program the link runs
Napi::Value LinkProgId(const Napi::CallbackInfo& info) {
  int fd = GetInt32(info[0], "linkFd");
  bpf_link_info li = {};
  uint32_t len = sizeof(li);
  if (bpf_obj_get_info_by_fd(fd, &li, &len) != 0) ThrowErrno(info.Env(), errno, "link info");
  return Napi::Number::New(info.Env(), li.prog_id);
}

Napi::Value ProgIdOf(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ProgId(info.Env(), GetInt32(info[0], "progFd")));
}

}  // namespace

void InitAttach(Napi::Env env, Napi::Object exports) {
  exports.Set("ifNameToIndex", Napi::Function::New<IfNameToIndex>(env, "ifNameToIndex"));
  exports.Set("tcAttach", Napi::Function::New<TcAttach>(env, "tcAttach"));
  exports.Set("tcQuery", Napi::Function::New<TcQuery>(env, "tcQuery"));
  exports.Set("tcDetach", Napi::Function::New<TcDetach>(env, "tcDetach"));
  exports.Set("xdpAttach", Napi::Function::New<XdpAttach>(env, "xdpAttach"));
  exports.Set("xdpDetach", Napi::Function::New<XdpDetach>(env, "xdpDetach"));
  exports.Set("xdpQuery", Napi::Function::New<XdpQuery>(env, "xdpQuery"));
  exports.Set("cgroupLink", Napi::Function::New<CgroupLink>(env, "cgroupLink"));
  exports.Set("linkDetach", Napi::Function::New<LinkDetach>(env, "linkDetach"));
  exports.Set("linkProgId", Napi::Function::New<LinkProgId>(env, "linkProgId"));
  exports.Set("progId", Napi::Function::New<ProgIdOf>(env, "progId"));
}

}  // namespace cilia
