// Entry point of cilia_bpf.node: a thin Node-API layer over the system libbpf.
#include "common.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  cilia::InstallLibbpfPrint();
  cilia::InitObject(env, exports);
  cilia::InitMap(env, exports);
  cilia::InitAttach(env, exports);
  cilia::InitRingBuffer(env, exports);
  cilia::InitTestRun(env, exports);
  cilia::InitBtf(env, exports);
  cilia::InitFeatures(env, exports);
  cilia::InitProg(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(cilia_bpf, Init)
