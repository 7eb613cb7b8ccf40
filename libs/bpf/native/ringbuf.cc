// Ring-buffer consumer on the libuv loop: uv_poll watches libbpf's epoll fd, and each wakeup
// drains the ring into one reusable batch buffer handed to JS in a single call, so there is
// neither busy polling nor a thread hop or allocation per record.
//
// Batch layout (all little-endian, 8-byte aligned): per record a u32 length, u32 reserved,
// then the record bytes padded to 8.
#include <bpf/libbpf.h>
#include <uv.h>

#include <cstring>

#include "common.h"

namespace cilia {

namespace {

constexpr size_t kAlign = 8;
constexpr size_t kRecordHeader = 8;

size_t AlignUp(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

class NativeRingBuffer : public Napi::ObjectWrap<NativeRingBuffer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeRingBuffer",
                       {
                           InstanceMethod<&NativeRingBuffer::Start>("start"),
                           InstanceMethod<&NativeRingBuffer::Consume>("consume"),
                           InstanceMethod<&NativeRingBuffer::Stats>("stats"),
                           InstanceMethod<&NativeRingBuffer::Close>("close"),
                       });
  }

  // new NativeRingBuffer(mapFd, onBatch(batch: Buffer, bytes: number, count: number), batchBytes, maxPerWakeup)
  explicit NativeRingBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeRingBuffer>(info) {
    Napi::Env env = info.Env();
    int mapFd = GetInt32(info[0], "mapFd");
    if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "onBatch must be a function");
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    size_t batchBytes = info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : (1u << 20);
    if (batchBytes < 4096) batchBytes = 4096;
    // 0: drain until the ring is empty. Otherwise a wakeup stops after this many records, so a
    // producer faster than the consumer cannot keep the event loop from everything else: the
    // epoll fd stays readable and the rest comes on the next turn of the loop.
    maxPerWakeup_ = info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 0;
    batch_ = Napi::Persistent(Napi::Buffer<uint8_t>::New(env, batchBytes));
    batchData_ = batch_.Value().Data();
    batchCap_ = batchBytes;
    LibbpfLogCapture capture;
    rb_ = ring_buffer__new(mapFd, &NativeRingBuffer::OnSample, this, nullptr);
    if (rb_ == nullptr) {
      Napi::Error error = ErrnoError(env, errno, "open ring buffer");
      error.Set("libbpfLog", Napi::String::New(env, capture.text));
      throw error;
    }
    env_ = env;
    context_ = std::make_unique<Napi::AsyncContext>(env, "cilia:ringbuf");
  }

  ~NativeRingBuffer() override {
    if (rb_ != nullptr) ring_buffer__free(rb_);
  }

 private:
  static int OnSample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<NativeRingBuffer*>(ctx);
    size_t need = kRecordHeader + AlignUp(size);
    if (self->used_ + need > self->batchCap_) {
      self->Flush();
      if (need > self->batchCap_) {
        self->oversized_++;  // cannot be delivered whole; counted, not silently cut
        return 0;
      }
    }
    uint8_t* at = self->batchData_ + self->used_;
    uint32_t len = static_cast<uint32_t>(size);
    memcpy(at, &len, 4);
    memset(at + 4, 0, 4);
    memcpy(at + kRecordHeader, data, size);
    self->used_ += need;
    self->pending_++;
    self->records_++;
    // libbpf has consumed this record already; a negative return stops the drain after it.
    if (self->budget_ != 0 && ++self->drained_ >= self->budget_) return -EAGAIN;
    return 0;
  }

  void Flush() {
    if (pending_ == 0) return;
    Napi::HandleScope scope(env_);
    size_t bytes = used_;
    uint32_t count = pending_;
    used_ = 0;
    pending_ = 0;
    batches_++;
    napi_value args[3] = {batch_.Value(), Napi::Number::New(env_, static_cast<double>(bytes)),
                          Napi::Number::New(env_, count)};
    napi_value result;
    napi_status status = napi_make_callback(env_, *context_, Value(), callback_.Value(), 3, args, &result);
    if (status == napi_pending_exception) {
      napi_value exception;
      napi_get_and_clear_last_exception(env_, &exception);
      // Same fate as an exception thrown from any other event-loop callback.
      napi_fatal_exception(env_, exception);
    }
  }

  // Drains what is there now (at most `budget` records, 0 = all), delivering batches; returns
  // the number of records.
  uint64_t Drain(uint32_t budget = 0) {
    uint64_t before = records_;
    inDrain_ = true;
    budget_ = budget;
    drained_ = 0;
    int err = ring_buffer__consume(rb_);
    budget_ = 0;
    inDrain_ = false;
    Flush();
    if (err < 0 && err != -EINTR && err != -EAGAIN) lastError_ = -err;
    return records_ - before;
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<NativeRingBuffer*>(handle->data);
    if (status < 0 || self->rb_ == nullptr) return;
    self->Drain(self->maxPerWakeup_);
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireOpen(env);
    if (poll_ != nullptr) return env.Undefined();
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    poll_->data = this;
    int err = uv_poll_init(loop, poll_, ring_buffer__epoll_fd(rb_));
    if (err == 0) err = uv_poll_start(poll_, UV_READABLE, &NativeRingBuffer::OnPoll);
    if (err != 0) {
      delete poll_;
      poll_ = nullptr;
      throw Napi::Error::New(env, std::string("start ring buffer poll: ") + uv_strerror(err));
    }
    Ref();  // polling keeps the consumer alive even if JS drops it
    return env.Undefined();
  }

  Napi::Value Consume(const Napi::CallbackInfo& info) {
    RequireOpen(info.Env());
    if (inDrain_) throw Napi::Error::New(info.Env(), "consume() called from inside a ring buffer callback");
    return Napi::Number::New(info.Env(), static_cast<double>(Drain()));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("records", static_cast<double>(records_));
    out.Set("batches", static_cast<double>(batches_));
    out.Set("oversized", static_cast<double>(oversized_));
    out.Set("lastErrno", lastError_);
    return out;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (inDrain_) throw Napi::Error::New(info.Env(), "close() called from inside a ring buffer callback");
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
      Unref();
    }
    if (rb_ != nullptr) ring_buffer__free(rb_);
    rb_ = nullptr;
    return info.Env().Undefined();
  }

  void RequireOpen(Napi::Env env) {
    if (rb_ == nullptr) throw Napi::Error::New(env, "ring buffer consumer is closed");
  }

  Napi::Env env_ = nullptr;
  ring_buffer* rb_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::Reference<Napi::Buffer<uint8_t>> batch_;
  std::unique_ptr<Napi::AsyncContext> context_;
  uint8_t* batchData_ = nullptr;
  size_t batchCap_ = 0;
  size_t used_ = 0;
  uint32_t pending_ = 0;
  uint64_t records_ = 0;
  uint64_t batches_ = 0;
  uint32_t maxPerWakeup_ = 0;
  uint32_t budget_ = 0;
  uint32_t drained_ = 0;
  uint64_t oversized_ = 0;
  int lastError_ = 0;
  bool inDrain_ = false;
};

}  // namespace

void InitRingBuffer(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeRingBuffer", NativeRingBuffer::Define(env));
}

}  // namespace cilia
