{
  "targets": [
    {
      "target_name": "cilia_netlink",
      "sources": [
        "native/addon.cc",
        "native/common.cc",
        "native/thread.cc",
        "native/socket.cc",
        "native/netns.cc",
        "native/sysctl.cc",
        "native/tcp.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
