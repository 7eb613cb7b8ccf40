// BPF_PROG_TEST_RUN: runs a loaded program on supplied packet bytes and/or context, in this
// thread (testRun) or on the libuv thread pool (testRunAsync, so the loop can consume ring
// buffers while a long repeat runs).
#include <bpf/bpf.h>

#include "common.h"

namespace cilia {

namespace {

// Arguments: (progFd, {dataIn?, dataOut?, ctxIn?, ctxOut?, repeat?, flags?, cpu?})
struct RunSpec {
  int fd = -1;
  Bytes dataIn{nullptr, 0}, dataOut{nullptr, 0}, ctxIn{nullptr, 0}, ctxOut{nullptr, 0};
  uint32_t repeat = 0, flags = 0, cpu = 0;
};

struct RunResult {
  int err = 0;
  uint32_t retval = 0, duration = 0, dataSizeOut = 0, ctxSizeOut = 0;
};

RunSpec ParseSpec(const Napi::CallbackInfo& info) {
  RunSpec spec;
  spec.fd = GetInt32(info[0], "progFd");
  Napi::Object o = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(info.Env());
  spec.dataIn = GetOptionalBytes(o.Get("dataIn"), "dataIn");
  spec.dataOut = GetOptionalBytes(o.Get("dataOut"), "dataOut");
  spec.ctxIn = GetOptionalBytes(o.Get("ctxIn"), "ctxIn");
  spec.ctxOut = GetOptionalBytes(o.Get("ctxOut"), "ctxOut");
  if (o.Get("repeat").IsNumber()) spec.repeat = GetUint32(o.Get("repeat"), "repeat");
  if (o.Get("flags").IsNumber()) spec.flags = GetUint32(o.Get("flags"), "flags");
  if (o.Get("cpu").IsNumber()) spec.cpu = GetUint32(o.Get("cpu"), "cpu");
  return spec;
}

RunResult Run(const RunSpec& spec) {
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  opts.data_in = spec.dataIn.data;
  opts.data_size_in = static_cast<uint32_t>(spec.dataIn.size);
  opts.data_out = spec.dataOut.data;
  opts.data_size_out = static_cast<uint32_t>(spec.dataOut.size);
  opts.ctx_in = spec.ctxIn.data;
  opts.ctx_size_in = static_cast<uint32_t>(spec.ctxIn.size);
  opts.ctx_out = spec.ctxOut.data;
  opts.ctx_size_out = static_cast<uint32_t>(spec.ctxOut.size);
  opts.repeat = static_cast<int>(spec.repeat);
  opts.flags = spec.flags;
  opts.cpu = spec.cpu;
  RunResult r;
  if (bpf_prog_test_run_opts(spec.fd, &opts) != 0) r.err = errno;
  r.retval = opts.retval;
  r.duration = opts.duration;
  r.dataSizeOut = opts.data_size_out;
  r.ctxSizeOut = opts.ctx_size_out;
  return r;
}

Napi::Object ResultObject(Napi::Env env, const RunResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("retval", r.retval);
  out.Set("duration", r.duration);
  out.Set("dataSizeOut", r.dataSizeOut);
  out.Set("ctxSizeOut", r.ctxSizeOut);
  return out;
}

// ENOSPC means dataOut was too small; the kernel still reports the size it needed.
Napi::Error RunError(Napi::Env env, const RunResult& r) {
  Napi::Error error = ErrnoError(env, r.err, "test run");
  error.Set("dataSizeOut", Napi::Number::New(env, r.dataSizeOut));
  return error;
}

Napi::Value TestRun(const Napi::CallbackInfo& info) {
  RunResult r = Run(ParseSpec(info));
  if (r.err != 0) throw RunError(info.Env(), r);
  return ResultObject(info.Env(), r);
}

class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, const RunSpec& spec, Napi::Object keepAlive)
      : Napi::AsyncWorker(env), spec_(spec), deferred_(Napi::Promise::Deferred::New(env)) {
    keepAlive_ = Napi::Persistent(keepAlive);  // the buffers must outlive the run
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { result_ = Run(spec_); }
  void OnOK() override {
    if (result_.err != 0) {
      deferred_.Reject(RunError(Env(), result_).Value());
    } else {
      deferred_.Resolve(ResultObject(Env(), result_));
    }
  }

 private:
  RunSpec spec_;
  RunResult result_;
  Napi::ObjectReference keepAlive_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value TestRunAsync(const Napi::CallbackInfo& info) {
  RunSpec spec = ParseSpec(info);
  Napi::Object keep = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(info.Env());
  auto* worker = new RunWorker(info.Env(), spec, keep);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void InitTestRun(Napi::Env env, Napi::Object exports) {
  exports.Set("testRun", Napi::Function::New<TestRun>(env, "testRun"));
  exports.Set("testRunAsync", Napi::Function::New<TestRunAsync>(env, "testRunAsync"));
}

}  // namespace cilia
