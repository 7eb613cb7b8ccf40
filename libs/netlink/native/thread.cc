// Work inside another network namespace. setns(CLONE_NEWNET) switches only the calling
// thread, so it happens on a short-lived thread of our own: a pool thread left in a pod's
// namespace would silently run later, unrelated work there.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "common.h"

namespace cilia_netlink {

void RunInNetns(const std::string& netns_path, Outcome& out, const std::function<void(Outcome&)>& fn) {
  if (netns_path.empty()) {
    fn(out);
    return;
  }
  int netns_fd = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (netns_fd < 0) {
    out.Fail(errno, "open " + netns_path);
    return;
  }
  std::thread thread([&]() {
    if (setns(netns_fd, CLONE_NEWNET) != 0) {
      out.Fail(errno, "setns " + netns_path);
      return;
    }
    fn(out);
  });
  thread.join();
  close(netns_fd);
}

}  // namespace cilia_netlink
