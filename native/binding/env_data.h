// Per-environment state (one per Node.js thread that loaded the addon),
// kept in Node-API instance data and released by an environment cleanup
// hook — never by a garbage-collector finalizer, which runs late or never
// when a worker is terminated (DESIGN §2).
//
// An environment attaches to pools; each attachment is a slot whose index
// JavaScript passes as the first argument of every pool call. Slots are
// touched only by their own thread: no lock.
#pragma once

#include <node_api.h>

#include <memory>
#include <vector>

#include "../sync/pool.h"
#include "napi_util.h"

namespace nofail {

struct Attachment {
  std::shared_ptr<Pool> pool;
  uint32_t task = 0;          // this environment's own task in the pool
  napi_ref control = nullptr; // strong: keeps the SharedArrayBuffer alive while attached
  napi_ref region = nullptr;  // the external ArrayBuffer over the region, made lazily
};

struct EnvData {
  napi_env env = nullptr;
  std::vector<std::unique_ptr<Attachment>> slots;
  napi_ref errors[static_cast<int>(ErrorKind::kCount)] = {};

  static EnvData* get(napi_env env) {
    void* d = nullptr;
    napi_get_instance_data(env, &d);
    return static_cast<EnvData*>(d);
  }

  // Returns this environment's pages to the pool, detaches the views, and
  // drops the reference; the pool is unmapped if this was the last one.
  int64_t detach(size_t slot, bool detachViews);
};

}  // namespace nofail
