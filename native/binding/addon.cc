// The one module registration (STYLE habit 1). Each Node.js environment —
// the main thread and every worker — gets its own EnvData, released by an
// environment cleanup hook that returns the exiting thread's pages.
#include <node_api.h>

#include "../sync/control.h"
#include "api.h"

namespace nofail {

Attachment* readSlot(napi_env env, EnvData* data, napi_value v) {
  uint64_t slot;
  if (!readIndex(env, v, "slot", 1e9, &slot)) return nullptr;
  if (slot >= data->slots.size()) {
    throwError(env, ErrorKind::kOutOfRange, "no pool attachment with this slot in this thread");
    return nullptr;
  }
  Attachment* a = data->slots[slot].get();
  if (a == nullptr) throwError(env, ErrorKind::kPoolClosed, "the pool is closed in this thread");
  return a;
}

bool readTask(napi_env env, Attachment* a, napi_value v, uint32_t* task) {
  uint64_t t;
  if (!readIndex(env, v, "task", kFieldMask, &t)) return false;
  *task = t == 0 ? a->task : static_cast<uint32_t>(t);
  return true;
}

int64_t EnvData::detach(size_t slot, bool detachViews) {
  std::unique_ptr<Attachment> a = std::move(slots[slot]);
  if (detachViews && a->region) {
    // Views made by this thread become zero-length: no access after close.
    napi_value ab = nullptr;
    napi_get_reference_value(env, a->region, &ab);
    if (ab != nullptr) napi_detach_arraybuffer(env, ab);
  }
  const int64_t returned = a->pool->reclaimTask(a->task, true);
  a->pool->controlBlock().addAttached(-1);
  if (a->region) napi_delete_reference(env, a->region);
  // The control block stays referenced until after the last write to it above.
  napi_delete_reference(env, a->control);
  a->pool.reset();  // the last reference unmaps the pool
  return returned < 0 ? 0 : returned;
}

namespace {

void Cleanup(void* arg) {
  EnvData* data = static_cast<EnvData*>(arg);
  for (size_t i = 0; i < data->slots.size(); ++i) {
    if (data->slots[i]) data->detach(i, false);
  }
}

void FinalizeEnvData(napi_env env, void* arg, void*) {
  EnvData* data = static_cast<EnvData*>(arg);
  // Normally the cleanup hook (registered after Node-API's own teardown
  // hook, so run before it) has already emptied the slots. Should the order
  // ever differ, unregister it and do its work here, so it never runs on
  // freed memory.
  napi_remove_env_cleanup_hook(env, Cleanup, data);
  Cleanup(data);
  delete data;
}

// init({ ERR_INVALID_ARG_TYPE: Class, ... }): the error classes, given once.
napi_value Init(napi_env env, napi_callback_info info) {
  Args<1> args;
  if (!args.ok(env, info, 1)) return nullptr;
  napi_valuetype t;
  napi_typeof(env, args.argv[0], &t);
  if (t != napi_object) {
    throwError(env, ErrorKind::kInvalidArgType, "init() takes an object of error classes");
    return nullptr;
  }
  for (int k = 0; k < static_cast<int>(ErrorKind::kCount); ++k) {
    napi_value ctor;
    napi_get_named_property(env, args.argv[0], errorCode(static_cast<ErrorKind>(k)), &ctor);
    napi_typeof(env, ctor, &t);
    if (t != napi_function) continue;
    if (args.data->errors[k]) napi_delete_reference(env, args.data->errors[k]);
    napi_create_reference(env, ctor, 1, &args.data->errors[k]);
  }
  return nullptr;
}

}  // namespace

}  // namespace nofail

NAPI_MODULE_INIT() {
  using namespace nofail;
  auto* data = new EnvData();
  data->env = env;
  napi_set_instance_data(env, data, FinalizeEnvData, nullptr);
  napi_add_env_cleanup_hook(env, Cleanup, data);
  const napi_property_descriptor props[] = {
      {"init", nullptr, Init, nullptr, nullptr, nullptr, napi_enumerable, data},
  };
  napi_define_properties(env, exports, 1, props);
  RegisterPoolApi(env, exports, data);
  RegisterPageApi(env, exports, data);
  napi_value v;
  napi_create_uint32(env, ctl::kSlots, &v);
  napi_set_named_property(env, exports, "controlSlots", v);
  napi_create_uint32(env, NOFAIL_DEBUG, &v);
  napi_set_named_property(env, exports, "debugLevel", v);
  napi_create_uint32(env, kGenBits, &v);
  napi_set_named_property(env, exports, "genBits", v);
  return exports;
}
