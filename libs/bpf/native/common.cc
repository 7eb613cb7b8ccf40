#include "common.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cilia {

namespace {

thread_local LibbpfLogCapture* g_capture = nullptr;
bool g_debug = false;

int PrintToCapture(enum libbpf_print_level level, const char* format, va_list args) {
  char line[4096];
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(line, sizeof(line), format, copy);
  va_end(copy);
  if (n < 0) return 0;
  std::string text;
  if (static_cast<size_t>(n) >= sizeof(line)) {
    // Verifier logs arrive as one huge line; format again at full size.
    text.resize(static_cast<size_t>(n) + 1);
    vsnprintf(text.data(), text.size(), format, args);
    text.resize(static_cast<size_t>(n));
  } else {
    text.assign(line, static_cast<size_t>(n));
  }
  if (g_capture != nullptr && level != LIBBPF_DEBUG) g_capture->text += text;
  if (g_debug) fputs(text.c_str(), stderr);
  return 0;
}

}  // namespace

void InstallLibbpfPrint() {
  const char* debug = getenv("CILIA_BPF_DEBUG");
  g_debug = debug != nullptr && debug[0] != '\0' && strcmp(debug, "0") != 0;
  libbpf_set_print(PrintToCapture);
}

LibbpfLogCapture::LibbpfLogCapture() : previous_(g_capture) { g_capture = this; }
LibbpfLogCapture::~LibbpfLogCapture() { g_capture = previous_; }

const char* ErrnoName(int err) {
  switch (err) {
#define E(x) \
  case x:    \
    return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(EAGAIN)
    E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR)
    E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(EFBIG) E(ENOSPC) E(ERANGE) E(ENOSYS)
    E(EOPNOTSUPP) E(ELOOP) E(ENOTEMPTY) E(ENAMETOOLONG) E(ETIMEDOUT) E(ENOTCONN)
#undef E
    default:
      return nullptr;
  }
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& op) {
  if (err < 0) err = -err;
  const char* name = ErrnoName(err);
  std::string code = name != nullptr ? name : "E" + std::to_string(err);
  Napi::Error error = Napi::Error::New(env, op + ": " + strerror(err) + " (" + code + ")");
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("code", Napi::String::New(env, code));
  error.Set("op", Napi::String::New(env, op));
  return error;
}

void ThrowErrno(Napi::Env env, int err, const std::string& op) { throw ErrnoError(env, err, op); }

Bytes GetBytes(const Napi::Value& value, const char* what) {
  if (!value.IsTypedArray()) {
    throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a Buffer or Uint8Array");
  }
  auto array = value.As<Napi::TypedArray>();
  auto* base = static_cast<uint8_t*>(array.ArrayBuffer().Data());
  return Bytes{base + array.ByteOffset(), array.ByteLength()};
}

Bytes GetOptionalBytes(const Napi::Value& value, const char* what) {
  if (value.IsUndefined() || value.IsNull()) return Bytes{nullptr, 0};
  return GetBytes(value, what);
}

int32_t GetInt32(const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a number");
  return value.As<Napi::Number>().Int32Value();
}

uint32_t GetUint32(const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a number");
  return value.As<Napi::Number>().Uint32Value();
}

std::string GetString(const Napi::Value& value, const char* what) {
  if (!value.IsString()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

}  // namespace cilia
