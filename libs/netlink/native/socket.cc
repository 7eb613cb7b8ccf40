// NETLINK_ROUTE sockets: one request out, its replies back. A request is matched to its
// replies by sequence number; it ends with the kernel's ACK or error (NLMSG_ERROR) or, for a
// dump, with NLMSG_DONE. An error becomes errno plus the kernel's extended-ACK text.
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common.h"

namespace cilia_netlink {

namespace {

// A request whose reply has not come in this long means a wedged kernel path: fail rather
// than pin a pool thread forever.
constexpr int kReplyTimeoutSeconds = 30;
// Large dumps (every route of a busy node) arrive faster than JS drains them otherwise.
constexpr int kReceiveBuffer = 1 << 20;

int OpenRouteSocket(std::string& where) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    where = "socket(NETLINK_ROUTE)";
    return -errno;
  }
  int one = 1;
  // Best effort: older kernels lack these, and errors then simply come without the text.
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  int rcvbuf = kReceiveBuffer;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  timeval timeout{kReplyTimeoutSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    int err = errno;
    close(fd);
    where = "bind(NETLINK_ROUTE)";
    return -err;
  }
  return fd;
}

// The NLMSGERR_ATTR_MSG string among the TLVs in [start, end), if any.
std::string ExtackMessage(const uint8_t* start, const uint8_t* end) {
  while (start + NLA_HDRLEN <= end) {
    const auto* attr = reinterpret_cast<const nlattr*>(start);
    if (attr->nla_len < NLA_HDRLEN || start + attr->nla_len > end) break;
    if ((attr->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      const char* text = reinterpret_cast<const char*>(start + NLA_HDRLEN);
      return std::string(text, strnlen(text, attr->nla_len - NLA_HDRLEN));
    }
    start += NLA_ALIGN(attr->nla_len);
  }
  return "";
}

// Reads the error code (0 = ACK) and extended-ACK text of an NLMSG_ERROR message.
int ParseError(const nlmsghdr* h, std::string& extack) {
  if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return -EPROTO;
  const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  if (e->error != 0 && (h->nlmsg_flags & NLM_F_ACK_TLVS) != 0) {
    // The TLVs follow the echoed request: its header only when capped, else all of it.
    size_t echoed = (h->nlmsg_flags & NLM_F_CAPPED) != 0 ? sizeof(nlmsghdr) : NLMSG_ALIGN(e->msg.nlmsg_len);
    const uint8_t* base = static_cast<const uint8_t*>(NLMSG_DATA(h));
    const uint8_t* end = reinterpret_cast<const uint8_t*>(h) + h->nlmsg_len;
    const uint8_t* tlvs = base + sizeof(int) + echoed;
    if (tlvs < end) extack = ExtackMessage(tlvs, end);
  }
  return e->error;
}

// NLMSG_DONE carries the dump's final status (and possibly extended-ACK TLVs) after it.
int ParseDone(const nlmsghdr* h, std::string& extack) {
  if (h->nlmsg_len < NLMSG_LENGTH(sizeof(int))) return 0;
  int error;
  memcpy(&error, NLMSG_DATA(h), sizeof(error));
  if (error != 0 && (h->nlmsg_flags & NLM_F_ACK_TLVS) != 0) {
    const uint8_t* tlvs = static_cast<const uint8_t*>(NLMSG_DATA(h)) + sizeof(int);
    const uint8_t* end = reinterpret_cast<const uint8_t*>(h) + h->nlmsg_len;
    if (tlvs < end) extack = ExtackMessage(tlvs, end);
  }
  return error;
}

void Transact(int fd, const std::vector<uint8_t>& request, uint32_t seq, Outcome& out) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do {
    sent = sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    out.Fail(errno, "sendto(NETLINK_ROUTE)");
    return;
  }

  std::vector<uint8_t> buffer(32768);
  bool interrupted = false;
  for (;;) {
    // Peek at the datagram's full size first so that no reply is ever truncated.
    ssize_t size = recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC);
    if (size < 0) {
      if (errno == EINTR) continue;
      out.Fail(errno == EAGAIN ? ETIMEDOUT : errno, "recv(NETLINK_ROUTE)");
      return;
    }
    // The kernel never sends an empty netlink datagram: an empty read means the descriptor is
    // no longer this socket (closed and reused). Looping on it would spin forever.
    if (size == 0) {
      out.Fail(EBADF, "recv(NETLINK_ROUTE): empty read");
      return;
    }
    if (static_cast<size_t>(size) > buffer.size()) buffer.resize(static_cast<size_t>(size));
    ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      out.Fail(errno == EAGAIN ? ETIMEDOUT : errno, "recv(NETLINK_ROUTE)");
      return;
    }
    int remaining = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer.data()); NLMSG_OK(h, remaining); h = NLMSG_NEXT(h, remaining)) {
      // A reply to an earlier request that timed out: not ours.
      if (h->nlmsg_seq != seq) continue;
      if ((h->nlmsg_flags & NLM_F_DUMP_INTR) != 0) interrupted = true;
      if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) {
        int error = h->nlmsg_type == NLMSG_ERROR ? ParseError(h, out.extack) : ParseDone(h, out.extack);
        if (error != 0) {
          out.Fail(-error, "netlink");
        } else if (interrupted) {
          // The set changed while it was being dumped; the caller asks again.
          out.Fail(EINTR, "netlink dump interrupted");
        } else {
          out.kind = Outcome::Kind::kBytes;
        }
        return;
      }
      if (h->nlmsg_type == NLMSG_NOOP) continue;
      const uint8_t* start = reinterpret_cast<const uint8_t*>(h);
      out.bytes.insert(out.bytes.end(), start, start + h->nlmsg_len);
      out.bytes.resize(NLMSG_ALIGN(out.bytes.size()), 0);
    }
  }
}

// openSocket(netnsPath | null): Promise<number>, a NETLINK_ROUTE socket bound inside that
// namespace (a socket keeps the namespace it was created in).
Napi::Value OpenSocket(const Napi::CallbackInfo& info) {
  std::string netns = GetOptionalString(info[0], "netnsPath");
  return RunAsync(info.Env(), [netns](Outcome& out) {
    RunInNetns(netns, out, [](Outcome& o) {
      std::string where;
      int fd = OpenRouteSocket(where);
      if (fd < 0) {
        o.Fail(-fd, where);
        return;
      }
      o.kind = Outcome::Kind::kNumber;
      o.number = fd;
    });
  });
}

// closeSocket(fd): void
Napi::Value CloseSocket(const Napi::CallbackInfo& info) {
  int fd = GetInt32(info[0], "fd");
  if (close(fd) != 0) throw ErrnoError(info.Env(), errno, "close");
  return info.Env().Undefined();
}

// transact(fd, request, seq): Promise<Buffer>, the reply messages (ACK and DONE excluded),
// each padded to 4 bytes. The caller serialises requests on one socket.
Napi::Value TransactJs(const Napi::CallbackInfo& info) {
  int fd = GetInt32(info[0], "fd");
  std::vector<uint8_t> request = GetBytes(info[1], "request");
  uint32_t seq = GetUint32(info[2], "seq");
  if (request.size() < sizeof(nlmsghdr)) throw Napi::RangeError::New(info.Env(), "request is shorter than a netlink header");
  return RunAsync(info.Env(), [fd, request = std::move(request), seq](Outcome& out) { Transact(fd, request, seq, out); });
}

}  // namespace

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("openSocket", Napi::Function::New(env, OpenSocket, "openSocket"));
  exports.Set("closeSocket", Napi::Function::New(env, CloseSocket, "closeSocket"));
  exports.Set("transact", Napi::Function::New(env, TransactJs, "transact"));
}

}  // namespace cilia_netlink
