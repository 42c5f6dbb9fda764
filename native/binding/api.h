// The entry points, grouped by file. Each Register* adds its functions to
// the module's exports; addon.cc calls them once per environment. Every
// function gets the environment's EnvData as its callback data
// (info.Data()), so no call looks it up.
#pragma once

#include <napi.h>

#include "args.h"
#include "env_data.h"

namespace nofail {

void RegisterPoolApi(Napi::Env env, Napi::Object exports, EnvData* data);  // pool_api.cc
void RegisterPageApi(Napi::Env env, Napi::Object exports, EnvData* data);  // page_api.cc
// layout: every table shared with TypeScript, declared once in C++
// (layout.cc); after RegisterPoolApi, whose statIndex it includes.
void RegisterLayout(Napi::Env env, Napi::Object exports);

inline EnvData* envData(const Napi::CallbackInfo& info) { return static_cast<EnvData*>(info.Data()); }

// An exported function: enumerable, read-only, with the environment's
// EnvData as its data. Function::New<cb> calls cb straight from Node-API's
// callback, with no per-function record on the heap.
template <auto cb>
Napi::PropertyDescriptor method(Napi::Env env, const char* name, EnvData* data) {
  return Napi::PropertyDescriptor::Value(name, Napi::Function::New<cb>(env, name, data), napi_enumerable);
}

// Throws for a slot readSlot found no attachment at; returns null.
Attachment* refuseSlot(Napi::Env env, bool known);

// Reads a slot of this environment and returns its attachment, or throws
// (ERR_OUT_OF_RANGE for an unknown slot, ERR_POOL_CLOSED for a detached one).
inline Attachment* readSlot(const Napi::CallbackInfo& info, const Napi::Value& v) {
  EnvData* data = envData(info);
  uint64_t slot;
  if (!readIndex(v, "slot", 1e9, &slot)) return nullptr;
  const bool known = slot < data->slots.size();
  if (known && data->slots[slot]) return data->slots[slot].get();
  return refuseSlot(info.Env(), known);
}

// Reads a task argument: 0 means the environment's own task.
inline bool readTask(const Attachment* a, const Napi::Value& v, uint32_t* task) {
  uint64_t t;
  if (!readIndex(v, "task", kFieldMask, &t)) return false;
  *task = t == 0 ? a->task : static_cast<uint32_t>(t);
  return true;
}

}  // namespace nofail
