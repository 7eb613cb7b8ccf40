// Shared parts of cilia_netlink.node: the result of a piece of blocking work, the worker that
// runs it off the JS thread and settles a Promise, and errno-carrying JS errors.
#pragma once

#include <napi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace cilia_netlink {

// What a piece of blocking work produced. `err` (positive errno) set means failure; `where`
// names the step that failed (e.g. "setns", "mount") and `extack` carries the kernel's own
// explanation when netlink's extended ACK supplied one.
struct Outcome {
  enum class Kind { kUndefined, kBytes, kText, kNumber };
  int err = 0;
  std::string where;
  std::string extack;
  Kind kind = Kind::kUndefined;
  std::vector<uint8_t> bytes;
  std::string text;
  int64_t number = 0;

  void Fail(int error, std::string step) {
    err = error;
    where = std::move(step);
  }
};

using Work = std::function<void(Outcome&)>;

// Runs `work` on the libuv thread pool and returns a Promise settled with its Outcome.
Napi::Promise RunAsync(Napi::Env env, Work work);

// A JS Error for errno `err`: message strerror(err); properties errno, code ("EEXIST"),
// syscall (`where`) and, when non-empty, extack.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& where, const std::string& extack = "");

// Argument readers that throw a TypeError naming `what`.
std::string GetString(const Napi::Value& value, const char* what);
std::string GetOptionalString(const Napi::Value& value, const char* what);  // "" for null/undefined
int32_t GetInt32(const Napi::Value& value, const char* what);
uint32_t GetUint32(const Napi::Value& value, const char* what);
std::vector<uint8_t> GetBytes(const Napi::Value& value, const char* what);

// Runs `fn` on a new thread that first joins the network namespace at `netns_path` (when not
// empty), so the namespace switch never leaks into a pool thread. Setup failures land in `out`.
void RunInNetns(const std::string& netns_path, Outcome& out, const std::function<void(Outcome&)>& fn);

// Module initialisers, one per concern.
void InitSocket(Napi::Env env, Napi::Object exports);
void InitNetns(Napi::Env env, Napi::Object exports);
void InitSysctl(Napi::Env env, Napi::Object exports);
void InitTcp(Napi::Env env, Napi::Object exports);

}  // namespace cilia_netlink
