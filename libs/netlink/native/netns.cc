// Named network namespaces, laid out as iproute2 lays them out so `ip netns` sees ours and
// we see its: /run/netns is a shared mount point and each namespace is a bind mount of a
// thread's /proc/thread-self/ns/net onto /run/netns/NAME, which keeps it alive.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <thread>

#include "common.h"

namespace cilia_netlink {

namespace {

// Makes `dir` a shared mount so namespaces mounted later propagate to other mount namespaces
// (e.g. a container runtime's). A plain directory cannot be made shared, so it is first
// bind-mounted onto itself, as iproute2 does.
int EnsureSharedMount(const std::string& dir, std::string& where) {
  // Two creations racing here could each bind-mount the directory onto itself.
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    where = "mkdir " + dir;
    return errno;
  }
  if (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) == 0) return 0;
  if (errno != EINVAL) {
    where = "mount --make-shared " + dir;
    return errno;
  }
  if (mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) {
    where = "mount --bind " + dir;
    return errno;
  }
  if (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    where = "mount --make-shared " + dir;
    return errno;
  }
  return 0;
}

// createNetns(dir, name): Promise<string> (the namespace's path).
Napi::Value CreateNetns(const Napi::CallbackInfo& info) {
  std::string dir = GetString(info[0], "dir");
  std::string name = GetString(info[1], "name");
  return RunAsync(info.Env(), [dir, name](Outcome& out) {
    std::string where;
    if (int err = EnsureSharedMount(dir, where); err != 0) {
      out.Fail(err, where);
      return;
    }
    std::string path = dir + "/" + name;
    // O_EXCL: an existing namespace of that name is an error, never silently replaced.
    int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) {
      out.Fail(errno, "create " + path);
      return;
    }
    close(fd);
    std::thread thread([&]() {
      if (unshare(CLONE_NEWNET) != 0) {
        out.Fail(errno, "unshare(CLONE_NEWNET)");
        return;
      }
      if (mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
        out.Fail(errno, "mount --bind /proc/thread-self/ns/net " + path);
      }
    });
    thread.join();
    if (out.err != 0) {
      unlink(path.c_str());
      return;
    }
    out.kind = Outcome::Kind::kText;
    out.text = path;
  });
}

// deleteNetns(path): Promise<void>. The namespace itself lives on while a process or socket
// still uses it; only the name goes.
Napi::Value DeleteNetns(const Napi::CallbackInfo& info) {
  std::string path = GetString(info[0], "path");
  return RunAsync(info.Env(), [path](Outcome& out) {
    // EINVAL: not a mount point (a half-created entry); the unlink below still removes it.
    if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
      out.Fail(errno, "umount " + path);
      return;
    }
    if (unlink(path.c_str()) != 0) out.Fail(errno, "unlink " + path);
  });
}

}  // namespace

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

// netnsCookie(netnsPath | null): Promise<number> — the kernel's cookie of a network namespace
// (the caller's, or the one at netnsPath), as BPF programs see it (bpf_get_netns_cookie).
// Cookies count up from 1 per boot, so a JS number holds them.
Napi::Value NetnsCookie(const Napi::CallbackInfo& info) {
  std::string netns = GetOptionalString(info[0], "netnsPath");
  return RunAsync(info.Env(), [netns](Outcome& out) {
    RunInNetns(netns, out, [](Outcome& o) {
      int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        o.Fail(errno, "socket");
        return;
      }
      uint64_t cookie = 0;
      socklen_t len = sizeof(cookie);
      if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) {
        o.Fail(errno, "getsockopt(SO_NETNS_COOKIE)");
      } else {
        o.kind = Outcome::Kind::kNumber;
        o.number = static_cast<int64_t>(cookie);
      }
      close(fd);
    });
  });
}

void InitNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("createNetns", Napi::Function::New(env, CreateNetns, "createNetns"));
  exports.Set("deleteNetns", Napi::Function::New(env, DeleteNetns, "deleteNetns"));
  exports.Set("netnsCookie", Napi::Function::New(env, NetnsCookie, "netnsCookie"));
}

}  // namespace cilia_netlink
