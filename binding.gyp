{
  "targets": [
    {
      "target_name": "nofail",
      "sources": [
        "native/core/buddy.cc",
        "native/core/zone.cc",
        "native/os/region.cc",
        "native/sync/pool.cc",
        "native/sync/registry.cc",
        "native/binding/errors.cc",
        "native/binding/args.cc",
        "native/binding/layout.cc",
        "native/binding/pool_api.cc",
        "native/binding/page_api.cc",
        "native/binding/addon.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=gnu++20", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "configurations": {
        "Release": {
          "cflags_cc": ["-O2"]
        },
        "Debug": {
          "defines": ["NOFAIL_DEBUG=1"],
          "cflags_cc": ["-O1", "-g"]
        }
      }
    }
  ]
}
