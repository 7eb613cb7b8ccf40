// TCP sockets with the options Node's net module cannot set: IP_TRANSPARENT (a transparent
// proxy's listener accepts connections addressed to other hosts, which the datapath steers to
// it with bpf_sk_assign, and answers from their address) and SO_MARK (a proxy's upstream
// connection tells the datapath whose traffic it carries). The socket is created, configured
// and, for a listener, bound and listening here; JavaScript wraps the descriptor with
// net.Server#listen({ fd }) or new net.Socket({ fd }).connect().
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common.h"

namespace cilia_netlink {

namespace {

int Configure(int fd, bool transparent, uint32_t mark, std::string& where) {
  int one = 1;
  if (transparent && setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) != 0) {
    where = "setsockopt IP_TRANSPARENT";
    return errno;
  }
  if (mark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
    where = "setsockopt SO_MARK";
    return errno;
  }
  return 0;
}

// openTcpSocket(transparent, mark, listenAddress | null, listenPort, backlog): number
// Non-blocking, close-on-exec IPv4 TCP socket; with a listen address it is bound (SO_REUSEADDR)
// and listening. Throws an errno error naming the step that failed.
Napi::Value OpenTcpSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool transparent = info[0].ToBoolean().Value();
  uint32_t mark = GetUint32(info[1], "mark");
  std::string address = GetOptionalString(info[2], "listenAddress");
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, errno, "socket");
  std::string where;
  int err = Configure(fd, transparent, mark, where);
  if (!err && !address.empty()) {
    uint32_t port = GetUint32(info[3], "listenPort");
    int32_t backlog = GetInt32(info[4], "backlog");
    int one = 1;
    sockaddr_in sin = {};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<uint16_t>(port));
    if (port > 65535 || inet_pton(AF_INET, address.c_str(), &sin.sin_addr) != 1) {
      close(fd);
      throw Napi::TypeError::New(env, "listenAddress/listenPort: expected an IPv4 address and a port 0-65535");
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
      err = errno;
      where = "setsockopt SO_REUSEADDR";
    } else if (bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) != 0) {
      err = errno;
      where = "bind " + address + ":" + std::to_string(port);
    } else if (listen(fd, backlog) != 0) {
      err = errno;
      where = "listen";
    }
  }
  if (err) {
    close(fd);
    throw ErrnoError(env, err, where);
  }
  return Napi::Number::New(env, fd);
}

}  // namespace

void InitTcp(Napi::Env env, Napi::Object exports) {
  exports.Set("openTcpSocket", Napi::Function::New(env, OpenTcpSocket, "openTcpSocket"));
}

}  // namespace cilia_netlink
