// Struct layouts from an object's BTF, for checking TS codecs against the C definitions.
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <memory>

#include "common.h"

namespace cilia {

namespace {

// btfStructLayout(objectPath, structName) -> {size, members: [{name, offset, size, bitOffset,
// bitSize}]} or null when the object's BTF has no such struct/union.
Napi::Value BtfStructLayout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = GetString(info[0], "objectPath");
  std::string name = GetString(info[1], "structName");
  LibbpfLogCapture capture;
  std::unique_ptr<btf, void (*)(btf*)> parsed(btf__parse(path.c_str(), nullptr), btf__free);
  if (libbpf_get_error(parsed.get()) != 0) {
    int err = static_cast<int>(libbpf_get_error(parsed.get()));
    parsed.release();
    ThrowErrno(env, err, "read BTF of " + path);
  }
  const btf* b = parsed.get();
  int id = btf__find_by_name_kind(b, name.c_str(), BTF_KIND_STRUCT);
  if (id < 0) id = btf__find_by_name_kind(b, name.c_str(), BTF_KIND_UNION);
  if (id < 0) return env.Null();
  const btf_type* t = btf__type_by_id(b, id);
  Napi::Object out = Napi::Object::New(env);
  out.Set("size", t->size);
  Napi::Array members = Napi::Array::New(env);
  const btf_member* m = btf_members(t);
  for (int i = 0; i < btf_vlen(t); i++, m++) {
    Napi::Object mo = Napi::Object::New(env);
    uint32_t bitOffset = btf_member_bit_offset(t, i);
    uint32_t bitSize = btf_member_bitfield_size(t, i);
    long long size = btf__resolve_size(b, m->type);
    mo.Set("name", btf__name_by_offset(b, m->name_off));
    mo.Set("offset", bitOffset / 8);
    mo.Set("size", static_cast<double>(size));
    mo.Set("bitOffset", bitOffset);
    mo.Set("bitSize", bitSize);
    members.Set(static_cast<uint32_t>(i), mo);
  }
  out.Set("members", members);
  return out;
}

// btfEnum(objectPath, enumName) -> [{name, value}] or null when absent.
Napi::Value BtfEnum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = GetString(info[0], "objectPath");
  std::string name = GetString(info[1], "enumName");
  LibbpfLogCapture capture;
  std::unique_ptr<btf, void (*)(btf*)> parsed(btf__parse(path.c_str(), nullptr), btf__free);
  if (libbpf_get_error(parsed.get()) != 0) {
    int err = static_cast<int>(libbpf_get_error(parsed.get()));
    parsed.release();
    ThrowErrno(env, err, "read BTF of " + path);
  }
  const btf* b = parsed.get();
  int id = btf__find_by_name_kind(b, name.c_str(), BTF_KIND_ENUM);
  if (id < 0) return env.Null();
  const btf_type* t = btf__type_by_id(b, id);
  Napi::Array out = Napi::Array::New(env);
  const struct btf_enum* e = btf_enum(t);
  for (int i = 0; i < btf_vlen(t); i++, e++) {
    Napi::Object item = Napi::Object::New(env);
    item.Set("name", btf__name_by_offset(b, e->name_off));
    item.Set("value", e->val);
    out.Set(static_cast<uint32_t>(i), item);
  }
  return out;
}

}  // namespace

void InitBtf(Napi::Env env, Napi::Object exports) {
  exports.Set("btfStructLayout", Napi::Function::New<BtfStructLayout>(env, "btfStructLayout"));
  exports.Set("btfEnum", Napi::Function::New<BtfEnum>(env, "btfEnum"));
}

}  // namespace cilia
