// Shared helpers of the addon: errno-carrying errors, typed-array access and the capture of
// libbpf's log lines (libbpf reports verifier logs only through its print callback).
#pragma once

#include <napi.h>

#include <cerrno>
#include <cstdint>
#include <string>

namespace cilia {

// Throws a JS Error whose `errno` (positive) and `code` (e.g. "EACCES") say what the kernel
// said; `op` names the operation so the message is useful on its own.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const std::string& op);

// Builds (does not throw) such an error, for async completions and extra properties.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& op);

// "EACCES" for 13, "E<n>" for unknown numbers.
const char* ErrnoName(int err);

// Raw bytes of a Buffer / Uint8Array argument; throws a TypeError naming `what` otherwise.
struct Bytes {
  uint8_t* data;
  size_t size;
};
Bytes GetBytes(const Napi::Value& value, const char* what);
// Like GetBytes, but null/undefined give {nullptr, 0}.
Bytes GetOptionalBytes(const Napi::Value& value, const char* what);

int32_t GetInt32(const Napi::Value& value, const char* what);
uint32_t GetUint32(const Napi::Value& value, const char* what);
std::string GetString(const Napi::Value& value, const char* what);

// While alive on a thread, libbpf's log lines from that thread are appended to `text`
// instead of being printed (set CILIA_BPF_DEBUG=1 to also print them to stderr).
class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;
  std::string text;

 private:
  LibbpfLogCapture* previous_;
};

void InstallLibbpfPrint();

// Module initialisers, one per concern.
void InitObject(Napi::Env env, Napi::Object exports);
void InitMap(Napi::Env env, Napi::Object exports);
void InitAttach(Napi::Env env, Napi::Object exports);
void InitRingBuffer(Napi::Env env, Napi::Object exports);
void InitTestRun(Napi::Env env, Napi::Object exports);
void InitBtf(Napi::Env env, Napi::Object exports);
void InitFeatures(Napi::Env env, Napi::Object exports);
void InitProg(Napi::Env env, Napi::Object exports);

}  // namespace cilia
