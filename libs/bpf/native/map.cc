// Map operations on fds. Callers pass preallocated key/value buffers, so a lookup or update
// allocates nothing; "not found" is a boolean, every other failure an errno-carrying Error.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include "common.h"

namespace cilia {

namespace {

// mapLookup(fd, key, valueOut, flags?) -> boolean
Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  int fd = GetInt32(info[0], "fd");
  Bytes key = GetBytes(info[1], "key");
  Bytes value = GetBytes(info[2], "value");
  uint64_t flags = info[3].IsNumber() ? info[3].As<Napi::Number>().Int64Value() : 0;
  if (bpf_map_lookup_elem_flags(fd, key.data, value.data, flags) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
  ThrowErrno(info.Env(), errno, "map lookup");
}

// mapLookupAndDelete(fd, key, valueOut) -> boolean (queues/stacks take a null key)
Napi::Value MapLookupAndDelete(const Napi::CallbackInfo& info) {
  int fd = GetInt32(info[0], "fd");
  Bytes key = GetOptionalBytes(info[1], "key");
  Bytes value = GetBytes(info[2], "value");
  if (bpf_map_lookup_and_delete_elem(fd, key.data, value.data) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
  ThrowErrno(info.Env(), errno, "map lookup-and-delete");
}

// mapUpdate(fd, key, value, flags) -> undefined
Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  int fd = GetInt32(info[0], "fd");
  Bytes key = GetOptionalBytes(info[1], "key");
  Bytes value = GetBytes(info[2], "value");
  uint64_t flags = info[3].IsNumber() ? info[3].As<Napi::Number>().Int64Value() : 0;
  if (bpf_map_update_elem(fd, key.data, value.data, flags) != 0) ThrowErrno(info.Env(), errno, "map update");
  return info.Env().Undefined();
}

// mapDelete(fd, key) -> boolean (false when absent)
Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  int fd = GetInt32(info[0], "fd");
  Bytes key = GetBytes(info[1], "key");
  if (bpf_map_delete_elem(fd, key.data) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
  ThrowErrno(info.Env(), errno, "map delete");
}

// mapNextKey(fd, key|null, nextOut) -> boolean (false at the end)
Napi::Value MapNextKey(const Napi::CallbackInfo& info) {
  int fd = GetInt32(info[0], "fd");
  Bytes key = GetOptionalBytes(info[1], "key");
  Bytes next = GetBytes(info[2], "next");
  if (bpf_map_get_next_key(fd, key.data, next.data) == 0) return Napi::Boolean::New(info.Env(), true);
  if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
  ThrowErrno(info.Env(), errno, "map get-next-key");
}

// mapLookupBatch(fd, inBatch|null, outBatch, keys, values, count, andDelete) -> {count, done}
// inBatch/outBatch are opaque cursors of keySize bytes (hash maps use a bucket index).
Napi::Value MapLookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = GetInt32(info[0], "fd");
  Bytes in = GetOptionalBytes(info[1], "inBatch");
  Bytes out = GetBytes(info[2], "outBatch");
  Bytes keys = GetBytes(info[3], "keys");
  Bytes values = GetBytes(info[4], "values");
  uint32_t count = GetUint32(info[5], "count");
  bool andDelete = info[6].ToBoolean().Value();
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  int err = andDelete ? bpf_map_lookup_and_delete_batch(fd, in.data, out.data, keys.data, values.data, &count, &opts)
                      : bpf_map_lookup_batch(fd, in.data, out.data, keys.data, values.data, &count, &opts);
  bool done = false;
  if (err != 0) {
    if (errno != ENOENT) ThrowErrno(env, errno, andDelete ? "map lookup-and-delete batch" : "map lookup batch");
    done = true;  // ENOENT: the last (possibly partial) batch
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("count", count);
  result.Set("done", done);
  return result;
}

// mapUpdateBatch(fd, keys, values, count, flags) -> count written. On failure the Error's
// `count` says how many entries went in before the failing one.
Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = GetInt32(info[0], "fd");
  Bytes keys = GetBytes(info[1], "keys");
  Bytes values = GetBytes(info[2], "values");
  uint32_t count = GetUint32(info[3], "count");
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  opts.elem_flags = info[4].IsNumber() ? info[4].As<Napi::Number>().Int64Value() : 0;
  if (bpf_map_update_batch(fd, keys.data, values.data, &count, &opts) != 0) {
    Napi::Error error = ErrnoError(env, errno, "map update batch");
    error.Set("count", Napi::Number::New(env, count));
    throw error;
  }
  return Napi::Number::New(env, count);
}

// mapDeleteBatch(fd, keys, count) -> count deleted
Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = GetInt32(info[0], "fd");
  Bytes keys = GetBytes(info[1], "keys");
  uint32_t count = GetUint32(info[2], "count");
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (bpf_map_delete_batch(fd, keys.data, &count, &opts) != 0) {
    Napi::Error error = ErrnoError(env, errno, "map delete batch");
    error.Set("count", Napi::Number::New(env, count));
    throw error;
  }
  return Napi::Number::New(env, count);
}

// mapInfo(fd) -> {type, keySize, valueSize, maxEntries, flags, name, id}
Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = GetInt32(info[0], "fd");
  bpf_map_info mi = {};
  uint32_t len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) != 0) ThrowErrno(env, errno, "map info");
  Napi::Object out = Napi::Object::New(env);
  out.Set("type", mi.type);
  out.Set("keySize", mi.key_size);
  out.Set("valueSize", mi.value_size);
  out.Set("maxEntries", mi.max_entries);
  out.Set("flags", mi.map_flags);
  out.Set("name", mi.name);
  out.Set("id", mi.id);
  return out;
}

// mapCreate(type, name, keySize, valueSize, maxEntries, flags, innerMapFd?) -> fd
// A map made from user space: inner maps for map-in-map outer maps, scratch maps in tests.
Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = GetUint32(info[0], "type");
  std::string name = GetString(info[1], "name");
  LIBBPF_OPTS(bpf_map_create_opts, opts);
  opts.map_flags = GetUint32(info[5], "flags");
  if (info[6].IsNumber()) opts.inner_map_fd = GetUint32(info[6], "innerMapFd");
  LibbpfLogCapture quiet;
  int fd = bpf_map_create(static_cast<bpf_map_type>(type), name.c_str(), GetUint32(info[2], "keySize"),
                          GetUint32(info[3], "valueSize"), GetUint32(info[4], "maxEntries"), &opts);
  if (fd < 0) ThrowErrno(env, errno, "create map '" + name + "'");
  return Napi::Number::New(env, fd);
}

// objGet(path) -> fd of a pinned map/program/link
Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  std::string path = GetString(info[0], "path");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(info.Env(), errno, "open pinned object " + path);
  return Napi::Number::New(info.Env(), fd);
}

// objPin(fd, path)
Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  int fd = GetInt32(info[0], "fd");
  std::string path = GetString(info[1], "path");
  if (bpf_obj_pin(fd, path.c_str()) != 0) ThrowErrno(info.Env(), errno, "pin at " + path);
  return info.Env().Undefined();
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = GetInt32(info[0], "fd");
  if (fd >= 0) close(fd);
  return info.Env().Undefined();
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) ThrowErrno(info.Env(), n, "count possible CPUs");
  return Napi::Number::New(info.Env(), n);
}

}  // namespace

void InitMap(Napi::Env env, Napi::Object exports) {
  exports.Set("mapLookup", Napi::Function::New<MapLookup>(env, "mapLookup"));
  exports.Set("mapLookupAndDelete", Napi::Function::New<MapLookupAndDelete>(env, "mapLookupAndDelete"));
  exports.Set("mapUpdate", Napi::Function::New<MapUpdate>(env, "mapUpdate"));
  exports.Set("mapDelete", Napi::Function::New<MapDelete>(env, "mapDelete"));
  exports.Set("mapNextKey", Napi::Function::New<MapNextKey>(env, "mapNextKey"));
  exports.Set("mapLookupBatch", Napi::Function::New<MapLookupBatch>(env, "mapLookupBatch"));
  exports.Set("mapUpdateBatch", Napi::Function::New<MapUpdateBatch>(env, "mapUpdateBatch"));
  exports.Set("mapDeleteBatch", Napi::Function::New<MapDeleteBatch>(env, "mapDeleteBatch"));
  exports.Set("mapInfo", Napi::Function::New<MapInfo>(env, "mapInfo"));
  exports.Set("mapCreate", Napi::Function::New<MapCreate>(env, "mapCreate"));
  exports.Set("objGet", Napi::Function::New<ObjGet>(env, "objGet"));
  exports.Set("objPin", Napi::Function::New<ObjPin>(env, "objPin"));
  exports.Set("closeFd", Napi::Function::New<CloseFd>(env, "closeFd"));
  exports.Set("numPossibleCpus", Napi::Function::New<NumPossibleCpus>(env, "numPossibleCpus"));
}

}  // namespace cilia
