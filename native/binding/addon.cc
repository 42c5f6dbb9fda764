// The one module registration (STYLE habit 1). Each Node.js environment —
// the main thread and every worker — gets its own EnvData, released by an
// environment cleanup hook that returns the exiting thread's pages.
#include <napi.h>

#include "../core/page_meta.h"
#include "../sync/control.h"
#include "api.h"

namespace nofail {

Attachment* refuseSlot(Napi::Env env, bool known) {
  if (known) {
    throwError(env, ErrorKind::kPoolClosed, "the pool is closed in this thread");
  } else {
    throwError(env, ErrorKind::kOutOfRange, "no pool attachment with this slot in this thread");
  }
  return nullptr;
}

int64_t EnvData::detach(size_t slot, bool detachViews) {
  std::unique_ptr<Attachment> a = std::move(slots[slot]);
  if (detachViews) {
    // Views made by this thread become zero-length: no access after close.
    // The C call: a buffer that cannot be detached is left as it is, as
    // before, rather than turned into a pending exception.
    for (Napi::Reference<Napi::ArrayBuffer>& r : a->regions) {
      if (r.IsEmpty()) continue;
      Napi::ArrayBuffer ab = r.Value();
      if (!ab.IsEmpty()) napi_detach_arraybuffer(env, ab);
    }
  }
  const int64_t returned = a->pool->reclaimTask(a->task, true);
  a->pool->controlBlock().addAttached(-1);
  for (Napi::Reference<Napi::ArrayBuffer>& r : a->regions) r.Reset();
  // The control block stays referenced until after the last write to it above.
  a->control.Reset();
  a->pool.reset();  // the last reference unmaps the pool
  return returned < 0 ? 0 : returned;
}

namespace {

void DetachAll(EnvData* data) {
  for (size_t i = 0; i < data->slots.size(); ++i) {
    if (data->slots[i]) data->detach(i, false);
  }
}

// The environment cleanup hook. Napi frees its own record of the hook as
// this returns, so it marks itself run: the finalizer must not remove it.
void Cleanup(EnvData* data) {
  data->cleanedUp = true;
  DetachAll(data);
}

void FinalizeEnvData(Napi::Env env, EnvData* data) {
  // Normally the cleanup hook (registered after Node-API's own teardown
  // hook, so run before it) has already emptied the slots. Should the order
  // ever differ, unregister it and do its work here, so it never runs on
  // freed memory.
  if (!data->cleanedUp) {
    data->cleanupHook.Remove(env);
    DetachAll(data);
  }
  delete data;
}

// init({ ERR_INVALID_ARG_TYPE: Class, ... }): the error classes, given once.
void Init(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 1)) return;
  if (info[0].Type() != napi_object) {  // a plain object; a function is not one here
    throwError(info.Env(), ErrorKind::kInvalidArgType, "init() takes an object of error classes");
    return;
  }
  const Napi::Object classes = info[0].As<Napi::Object>();
  EnvData* data = envData(info);
  for (int k = 0; k < kErrorKinds; ++k) {
    const Napi::Value ctor = classes.Get(errorCode(static_cast<ErrorKind>(k)));
    if (ctor.IsEmpty()) return;  // a getter threw; its exception is pending
    if (ctor.IsFunction()) data->errors[k] = Napi::Persistent(ctor.As<Napi::Function>());
  }
}

}  // namespace

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  auto* data = new EnvData(env);
  env.SetInstanceData<EnvData, FinalizeEnvData>(data);
  data->cleanupHook = env.AddCleanupHook(Cleanup, data);
  exports.DefineProperty(
      Napi::PropertyDescriptor::Value("init", Napi::Function::New<Init>(env, "init", data), napi_enumerable));
  RegisterPoolApi(env, exports, data);
  RegisterPageApi(env, exports, data);
  RegisterLayout(env, exports);
  exports.Set("controlSlots", Napi::Number::New(env, ctl::kSlots));
  exports.Set("debugLevel", Napi::Number::New(env, NOFAIL_DEBUG));
  exports.Set("genBits", Napi::Number::New(env, kGenBits));
  return exports;
}

}  // namespace nofail

static Napi::Object InitNofail(Napi::Env env, Napi::Object exports) { return nofail::InitModule(env, exports); }
NODE_API_MODULE(nofail, InitNofail)
