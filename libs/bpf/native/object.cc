// BPF objects: open an ELF file, adjust it (globals, pinning, map reuse), load it, hand out
// program and map fds. A failed load becomes an Error carrying errno, the failing program's
// name and the tail of its verifier log, taken from libbpf's log output.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace cilia {

namespace {

constexpr size_t kVerifierLogTail = 8192;

// libbpf logs "prog 'NAME': BPF program load failed: ..." and then the verifier log between
// BEGIN/END PROG LOAD LOG markers.
struct LoadFailure {
  std::string program;
  std::string verifierLog;
};

LoadFailure ParseLoadFailure(const std::string& log) {
  LoadFailure failure;
  const std::string marker = "': BPF program load failed";
  size_t at = log.find(marker);
  if (at == std::string::npos) at = log.find("': failed to load");
  if (at != std::string::npos) {
    size_t start = log.rfind("prog '", at);
    if (start != std::string::npos) failure.program = log.substr(start + 6, at - start - 6);
  }
  const std::string begin = "-- BEGIN PROG LOAD LOG --\n";
  size_t b = log.find(begin);
  if (b != std::string::npos) {
    size_t e = log.find("-- END PROG LOAD LOG --", b);
    std::string body = log.substr(b + begin.size(), e == std::string::npos ? std::string::npos : e - b - begin.size());
    if (body.size() > kVerifierLogTail) {
      size_t cut = body.find('\n', body.size() - kVerifierLogTail);
      body = body.substr(cut == std::string::npos ? body.size() - kVerifierLogTail : cut + 1);
    }
    failure.verifierLog = body;
  }
  return failure;
}

// Only libbpf's own lines (not the verifier dump) for the error message. The dump starts
// mid-line ("prog 'x': -- BEGIN PROG LOAD LOG --"), so cut from that line's start.
std::string LibbpfLines(const std::string& log) {
  const std::string begin = "-- BEGIN PROG LOAD LOG --";
  const std::string end = "-- END PROG LOAD LOG --\n";
  size_t b = log.find(begin);
  if (b == std::string::npos) return log;
  size_t lineStart = log.rfind('\n', b);
  lineStart = lineStart == std::string::npos ? 0 : lineStart + 1;
  std::string out = log.substr(0, lineStart);
  size_t e = log.find(end, b);
  if (e != std::string::npos) out += log.substr(e + end.size());
  return out;
}

Napi::Error LoadError(Napi::Env env, int err, const std::string& path, const std::string& log) {
  LoadFailure failure = ParseLoadFailure(log);
  std::string op = failure.program.empty() ? "load " + path : "load program '" + failure.program + "' of " + path;
  Napi::Error error = ErrnoError(env, err, op);
  error.Set("program", failure.program.empty() ? env.Null() : Napi::String::New(env, failure.program));
  error.Set("verifierLog", Napi::String::New(env, failure.verifierLog));
  error.Set("libbpfLog", Napi::String::New(env, LibbpfLines(log)));
  return error;
}

const char* DatasecOf(const char* mapName) {
  static const char* kSections[] = {".rodata", ".data", ".bss"};
  size_t len = strlen(mapName);
  for (const char* sec : kSections) {
    size_t sl = strlen(sec);
    if (len >= sl && strcmp(mapName + len - sl, sec) == 0) return sec;
  }
  return nullptr;
}

class NativeObject : public Napi::ObjectWrap<NativeObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeObject",
                       {
                           InstanceMethod<&NativeObject::Programs>("programs"),
                           InstanceMethod<&NativeObject::Maps>("maps"),
                           InstanceMethod<&NativeObject::Globals>("globals"),
                           InstanceMethod<&NativeObject::SetGlobal>("setGlobal"),
                           InstanceMethod<&NativeObject::SetMapPinPath>("setMapPinPath"),
                           InstanceMethod<&NativeObject::ReuseMapFd>("reuseMapFd"),
                           InstanceMethod<&NativeObject::SetMapMaxEntries>("setMapMaxEntries"),
                           InstanceMethod<&NativeObject::SetAutoload>("setAutoload"),
                           InstanceMethod<&NativeObject::Load>("load"),
                           InstanceMethod<&NativeObject::LoadAsync>("loadAsync"),
                           InstanceMethod<&NativeObject::Close>("close"),
                       });
  }

  // new NativeObject(path, pinRoot?: string)
  explicit NativeObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeObject>(info) {
    Napi::Env env = info.Env();
    path_ = GetString(info[0], "path");
    std::string pinRoot = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    LIBBPF_OPTS(bpf_object_open_opts, opts);
    if (!pinRoot.empty()) opts.pin_root_path = pinRoot.c_str();
    LibbpfLogCapture capture;
    obj_ = bpf_object__open_file(path_.c_str(), &opts);
    int err = libbpf_get_error(obj_);
    if (err != 0) {
      obj_ = nullptr;
      Napi::Error error = ErrnoError(env, err, "open BPF object " + path_);
      error.Set("libbpfLog", Napi::String::New(env, capture.text));
      throw error;
    }
  }

  ~NativeObject() override { Destroy(); }

  void LoadNow(std::string* log, int* err) {
    LibbpfLogCapture capture;
    *err = bpf_object__load(obj_);
    *log = capture.text;
    if (*err == 0) loaded_ = true;
  }

  const std::string& path() const { return path_; }

 private:
  bpf_object* Require(Napi::Env env, bool mustBeLoaded, bool mustBeUnloaded) {
    if (obj_ == nullptr) throw Napi::Error::New(env, "BPF object " + path_ + " is closed");
    if (mustBeLoaded && !loaded_) throw Napi::Error::New(env, "BPF object " + path_ + " is not loaded yet");
    if (mustBeUnloaded && loaded_) {
      throw Napi::Error::New(env, "BPF object " + path_ + " is already loaded; this must be set before load()");
    }
    return obj_;
  }

  bpf_map* FindMap(Napi::Env env, const std::string& name) {
    bpf_map* map = bpf_object__find_map_by_name(Require(env, false, false), name.c_str());
    if (map == nullptr) throw Napi::Error::New(env, "BPF object " + path_ + " has no map named '" + name + "'");
    return map;
  }

  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_object* obj = Require(env, false, false);
    Napi::Array out = Napi::Array::New(env);
    uint32_t i = 0;
    bpf_program* prog;
    bpf_object__for_each_program(prog, obj) {
      Napi::Object p = Napi::Object::New(env);
      p.Set("name", bpf_program__name(prog));
      p.Set("section", bpf_program__section_name(prog));
      p.Set("type", static_cast<double>(bpf_program__type(prog)));
      p.Set("expectedAttachType", static_cast<double>(bpf_program__expected_attach_type(prog)));
      p.Set("fd", loaded_ ? bpf_program__fd(prog) : -1);
      out.Set(i++, p);
    }
    return out;
  }

  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_object* obj = Require(env, false, false);
    Napi::Array out = Napi::Array::New(env);
    uint32_t i = 0;
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
      Napi::Object m = Napi::Object::New(env);
      m.Set("name", bpf_map__name(map));
      m.Set("type", static_cast<double>(bpf_map__type(map)));
      m.Set("keySize", bpf_map__key_size(map));
      m.Set("valueSize", bpf_map__value_size(map));
      m.Set("maxEntries", bpf_map__max_entries(map));
      m.Set("flags", bpf_map__map_flags(map));
      m.Set("internal", bpf_map__is_internal(map));
      const char* pin = bpf_map__pin_path(map);
      m.Set("pinPath", pin != nullptr ? Napi::Value(Napi::String::New(env, pin)) : env.Null());
      m.Set("fd", loaded_ ? bpf_map__fd(map) : -1);
      out.Set(i++, m);
    }
    return out;
  }

  // Global variables of .rodata/.data/.bss, from the object's BTF: [{name, section, offset, size}]
  Napi::Value Globals(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_object* obj = Require(env, false, false);
    Napi::Array out = Napi::Array::New(env);
    const btf* btf = bpf_object__btf(obj);
    if (btf == nullptr) return out;
    uint32_t i = 0;
    for (const char* sec : {".rodata", ".data", ".bss"}) {
      int id = btf__find_by_name_kind(btf, sec, BTF_KIND_DATASEC);
      if (id < 0) continue;
      const btf_type* t = btf__type_by_id(btf, id);
      const btf_var_secinfo* vsi = btf_var_secinfos(t);
      for (int v = 0; v < btf_vlen(t); v++, vsi++) {
        const btf_type* var = btf__type_by_id(btf, vsi->type);
        Napi::Object g = Napi::Object::New(env);
        g.Set("name", btf__name_by_offset(btf, var->name_off));
        g.Set("section", sec);
        g.Set("offset", vsi->offset);
        g.Set("size", vsi->size);
        out.Set(i++, g);
      }
    }
    return out;
  }

  // setGlobal(section, offset, bytes): writes into the section's initial image before load.
  Napi::Value SetGlobal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_object* obj = Require(env, false, true);
    std::string section = GetString(info[0], "section");
    uint32_t offset = GetUint32(info[1], "offset");
    Bytes bytes = GetBytes(info[2], "value");
    bpf_map* map;
    bpf_object__for_each_map(map, obj) {
      if (!bpf_map__is_internal(map)) continue;
      const char* sec = DatasecOf(bpf_map__name(map));
      if (sec == nullptr || section != sec) continue;
      size_t size = 0;
      auto* image = static_cast<const uint8_t*>(bpf_map__initial_value(map, &size));
      if (image == nullptr || offset + bytes.size > size) {
        throw Napi::RangeError::New(env, "global at " + section + "+" + std::to_string(offset) + " lies outside the section");
      }
      std::vector<uint8_t> updated(image, image + size);
      memcpy(updated.data() + offset, bytes.data, bytes.size);
      int err = bpf_map__set_initial_value(map, updated.data(), updated.size());
      if (err != 0) ThrowErrno(env, err, "set " + section + " of " + path_);
      return env.Undefined();
    }
    throw Napi::Error::New(env, "BPF object " + path_ + " has no " + section + " section");
  }

  Napi::Value SetMapPinPath(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Require(env, false, true);
    bpf_map* map = FindMap(env, GetString(info[0], "map"));
    int err = bpf_map__set_pin_path(map, info[1].IsString() ? info[1].As<Napi::String>().Utf8Value().c_str() : nullptr);
    if (err != 0) ThrowErrno(env, err, "set pin path of map '" + std::string(bpf_map__name(map)) + "'");
    return env.Undefined();
  }

  Napi::Value ReuseMapFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Require(env, false, true);
    bpf_map* map = FindMap(env, GetString(info[0], "map"));
    int err = bpf_map__reuse_fd(map, GetInt32(info[1], "fd"));
    if (err != 0) ThrowErrno(env, err, "reuse fd for map '" + std::string(bpf_map__name(map)) + "'");
    return env.Undefined();
  }

  Napi::Value SetMapMaxEntries(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Require(env, false, true);
    bpf_map* map = FindMap(env, GetString(info[0], "map"));
    int err = bpf_map__set_max_entries(map, GetUint32(info[1], "maxEntries"));
    if (err != 0) ThrowErrno(env, err, "set max_entries of map '" + std::string(bpf_map__name(map)) + "'");
    return env.Undefined();
  }

  Napi::Value SetAutoload(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bpf_object* obj = Require(env, false, true);
    std::string name = GetString(info[0], "program");
    bpf_program* prog = bpf_object__find_program_by_name(obj, name.c_str());
    if (prog == nullptr) throw Napi::Error::New(env, "BPF object " + path_ + " has no program named '" + name + "'");
    bpf_program__set_autoload(prog, info[1].ToBoolean().Value());
    return env.Undefined();
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Require(env, false, true);
    std::string log;
    int err = 0;
    LoadNow(&log, &err);
    if (err != 0) throw LoadError(env, err, path_, log);
    return env.Undefined();
  }

  class LoadWorker : public Napi::AsyncWorker {
   public:
    LoadWorker(Napi::Env env, NativeObject* self)
        : Napi::AsyncWorker(env), self_(self), deferred_(Napi::Promise::Deferred::New(env)) {
      ref_ = Napi::Persistent(self->Value());
    }
    Napi::Promise Promise() { return deferred_.Promise(); }
    void Execute() override { self_->LoadNow(&log_, &err_); }
    void OnOK() override {
      Napi::Env env = Env();
      if (err_ != 0) {
        deferred_.Reject(LoadError(env, err_, self_->path(), log_).Value());
      } else {
        deferred_.Resolve(env.Undefined());
      }
      self_->loading_ = false;
    }

   private:
    NativeObject* self_;
    Napi::ObjectReference ref_;
    Napi::Promise::Deferred deferred_;
    std::string log_;
    int err_ = 0;
  };

  Napi::Value LoadAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Require(env, false, true);
    if (loading_) throw Napi::Error::New(env, "BPF object " + path_ + " is already loading");
    loading_ = true;
    auto* worker = new LoadWorker(env, this);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (loading_) throw Napi::Error::New(info.Env(), "BPF object " + path_ + " cannot close while loading");
    Destroy();
    return info.Env().Undefined();
  }

  void Destroy() {
    if (obj_ != nullptr) bpf_object__close(obj_);
    obj_ = nullptr;
  }

  std::string path_;
  bpf_object* obj_ = nullptr;
  bool loaded_ = false;
  bool loading_ = false;
};

}  // namespace

void InitObject(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeObject", NativeObject::Define(env));
}

}  // namespace cilia
