#include "common.h"

#include <cerrno>
#include <cstring>
#include <utility>

namespace cilia_netlink {

namespace {

const char* ErrnoName(int err) {
  switch (err) {
#define E(x) \
  case x:    \
    return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(EBADF) E(EAGAIN) E(ENOMEM)
    E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL)
    E(ENFILE) E(EMFILE) E(ENOSPC) E(ERANGE) E(ENOSYS) E(EOPNOTSUPP) E(ENAMETOOLONG)
    E(ETIMEDOUT) E(ENOBUFS) E(EMSGSIZE) E(EPROTO) E(EAFNOSUPPORT) E(EADDRNOTAVAIL)
    E(ENETUNREACH) E(EHOSTUNREACH) E(ENOTEMPTY) E(ENOTCONN) E(EADDRINUSE) E(ENETDOWN)
#undef E
    default:
      return nullptr;
  }
}

class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, Work work)
      : Napi::AsyncWorker(env, "cilia_netlink"), work_(std::move(work)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override { work_(out_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (out_.err != 0) {
      deferred_.Reject(ErrnoError(env, out_.err, out_.where, out_.extack).Value());
      return;
    }
    switch (out_.kind) {
      case Outcome::Kind::kBytes:
        deferred_.Resolve(Napi::Buffer<uint8_t>::Copy(env, out_.bytes.data(), out_.bytes.size()));
        break;
      case Outcome::Kind::kText:
        deferred_.Resolve(Napi::String::New(env, out_.text));
        break;
      case Outcome::Kind::kNumber:
        deferred_.Resolve(Napi::Number::New(env, static_cast<double>(out_.number)));
        break;
      default:
        deferred_.Resolve(env.Undefined());
    }
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Work work_;
  Outcome out_;
  Napi::Promise::Deferred deferred_;
};

}  // namespace

Napi::Promise RunAsync(Napi::Env env, Work work) {
  auto* worker = new Worker(env, std::move(work));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& where, const std::string& extack) {
  if (err < 0) err = -err;
  const char* name = ErrnoName(err);
  std::string code = name != nullptr ? name : "E" + std::to_string(err);
  Napi::Error error = Napi::Error::New(env, strerror(err));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("code", Napi::String::New(env, code));
  error.Set("syscall", Napi::String::New(env, where));
  if (!extack.empty()) error.Set("extack", Napi::String::New(env, extack));
  return error;
}

std::string GetString(const Napi::Value& value, const char* what) {
  if (!value.IsString()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

std::string GetOptionalString(const Napi::Value& value, const char* what) {
  if (value.IsNull() || value.IsUndefined()) return "";
  return GetString(value, what);
}

int32_t GetInt32(const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a number");
  return value.As<Napi::Number>().Int32Value();
}

uint32_t GetUint32(const Napi::Value& value, const char* what) {
  if (!value.IsNumber()) throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a number");
  return value.As<Napi::Number>().Uint32Value();
}

std::vector<uint8_t> GetBytes(const Napi::Value& value, const char* what) {
  if (!value.IsTypedArray()) {
    throw Napi::TypeError::New(value.Env(), std::string(what) + " must be a Buffer or Uint8Array");
  }
  auto array = value.As<Napi::TypedArray>();
  auto buffer = array.ArrayBuffer();
  const uint8_t* start = static_cast<const uint8_t*>(buffer.Data()) + array.ByteOffset();
  return std::vector<uint8_t>(start, start + array.ByteLength());
}

}  // namespace cilia_netlink
