// The entry points, grouped by file. Each Register* adds its functions to
// the module's exports; addon.cc calls them once per environment.
#pragma once

#include <node_api.h>

#include "env_data.h"

namespace nofail {

void RegisterPoolApi(napi_env env, napi_value exports, EnvData* data);  // pool_api.cc
void RegisterPageApi(napi_env env, napi_value exports, EnvData* data);  // page_api.cc

// Shared by both: reads argument `i` as a slot of this environment and
// returns its attachment, or throws (ERR_POOL_CLOSED for a detached slot).
Attachment* readSlot(napi_env env, EnvData* data, napi_value v);

// Reads a task argument: 0 means the environment's own task.
bool readTask(napi_env env, Attachment* a, napi_value v, uint32_t* task);

template <size_t N>
struct Args {
  napi_value argv[N];
  size_t argc = N;
  EnvData* data = nullptr;
  bool ok(napi_env env, napi_callback_info info, size_t required) {
    napi_get_cb_info(env, info, &argc, argv, nullptr, reinterpret_cast<void**>(&data));
    if (argc < required) {
      throwError(env, ErrorKind::kInvalidArgType,
                 "expected " + std::to_string(required) + " arguments, got " + std::to_string(argc));
      return false;
    }
    for (size_t i = argc; i < N; ++i) napi_get_undefined(env, &argv[i]);
    return true;
  }
};

}  // namespace nofail
