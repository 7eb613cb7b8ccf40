{
  "targets": [
    {
      "target_name": "cilia_bpf",
      "sources": [
        "native/addon.cc",
        "native/common.cc",
        "native/object.cc",
        "native/map.cc",
        "native/attach.cc",
        "native/ringbuf.cc",
        "native/testrun.cc",
        "native/btf.cc",
        "native/features.cc",
        "native/prog.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wno-missing-field-initializers"],
      "libraries": ["-lbpf", "-lelf", "-lz"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
