// Per-environment state (one per Node.js thread that loaded the addon),
// kept in Node-API instance data (Napi::Env::SetInstanceData) and released
// by an environment cleanup hook — never by a garbage-collector finalizer,
// which runs late or never when a worker is terminated (DESIGN §2).
//
// An environment attaches to pools; each attachment is a slot whose index
// JavaScript passes as the first argument of every pool call. Slots are
// touched only by their own thread: no lock.
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "../sync/pool.h"
#include "errors.h"

namespace nofail {

struct Attachment {
  std::shared_ptr<Pool> pool;
  uint32_t task = 0;                   // this environment's own task in the pool
  Napi::ObjectReference control;       // strong: keeps the SharedArrayBuffer alive while attached
  // External ArrayBuffers over the region, one per 2^kRegionChunkShift
  // bytes, each made lazily by region(slot, chunk).
  std::vector<Napi::Reference<Napi::ArrayBuffer>> regions;
};

struct EnvData {
  explicit EnvData(Napi::Env e) : env(e) {}

  Napi::Env env;
  std::vector<std::unique_ptr<Attachment>> slots;
  // The classes init() was given, by ErrorKind.
  Napi::FunctionReference errors[kErrorKinds];
  // Registered at module init, after Node-API's own teardown hook, so it
  // runs before it (addon.cc); cleanedUp once it has run.
  Napi::Env::CleanupHook<void (*)(EnvData*), EnvData> cleanupHook;
  bool cleanedUp = false;

  // Returns this environment's pages to the pool, detaches the views, and
  // drops the reference; the pool is unmapped if this was the last one.
  int64_t detach(size_t slot, bool detachViews);
};

}  // namespace nofail
