// Kernel parameters under /proc/sys. Those under net/ are per network namespace: the kernel
// resolves them against the namespace of the thread that opens the file, so a write for a
// pod runs on a thread that has joined the pod's namespace.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "common.h"

namespace cilia_netlink {

namespace {

// readSysctl(path, netnsPath | null): Promise<string>
Napi::Value ReadSysctl(const Napi::CallbackInfo& info) {
  std::string path = GetString(info[0], "path");
  std::string netns = GetOptionalString(info[1], "netnsPath");
  return RunAsync(info.Env(), [path, netns](Outcome& out) {
    RunInNetns(netns, out, [&path](Outcome& o) {
      int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        o.Fail(errno, "open " + path);
        return;
      }
      char buf[4096];
      std::string text;
      for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0) {
          if (errno == EINTR) continue;
          o.Fail(errno, "read " + path);
          break;
        }
        if (n == 0) break;
        text.append(buf, static_cast<size_t>(n));
      }
      close(fd);
      o.kind = Outcome::Kind::kText;
      o.text = std::move(text);
    });
  });
}

// writeSysctl(path, value, netnsPath | null): Promise<void>
Napi::Value WriteSysctl(const Napi::CallbackInfo& info) {
  std::string path = GetString(info[0], "path");
  std::string value = GetString(info[1], "value");
  std::string netns = GetOptionalString(info[2], "netnsPath");
  return RunAsync(info.Env(), [path, value, netns](Outcome& out) {
    RunInNetns(netns, out, [&path, &value](Outcome& o) {
      int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) {
        o.Fail(errno, "open " + path);
        return;
      }
      // One write: the kernel parses a sysctl value per write() call.
      ssize_t n = write(fd, value.data(), value.size());
      if (n < 0) o.Fail(errno, "write " + path);
      close(fd);
    });
  });
}

}  // namespace

void InitSysctl(Napi::Env env, Napi::Object exports) {
  exports.Set("readSysctl", Napi::Function::New(env, ReadSysctl, "readSysctl"));
  exports.Set("writeSysctl", Napi::Function::New(env, WriteSysctl, "writeSysctl"));
}

}  // namespace cilia_netlink
