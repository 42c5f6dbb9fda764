{
  "targets": [
    {
      "target_name": "naive_pool",
      "sources": ["naive_pool.cc"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=gnu++20", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "configurations": {
        "Release": {
          "cflags_cc": ["-O2"]
        }
      }
    }
  ]
}
