// exports.layout: every table C++ and TypeScript share, made at module init
// from the one declaration of each (STYLE habit 11). src/binding/native.ts
// and src/binding/control.ts build their constants from it and fail at load,
// naming the entry, if one they expect is missing.
//
//   ctl        control-block words            native/sync/control.h NOFAIL_CTL_WORDS
//   regions    control-block regions, sizes   native/sync/control.h NOFAIL_CTL_REGIONS
//   task       a task-table entry's words      native/sync/control.h NOFAIL_TASK_WORDS
//   alloc      ALLOC_* rights                  native/core/zone.h NOFAIL_ALLOC_FLAGS
//   status     alloc/allocBulk results         native/core/status.h NOFAIL_STATUSES
//   stat       stats() field indices           native/binding/pool_api.cc NOFAIL_STAT_FIELDS
//   constants  genBits, transitTask, pageShift, maxPages, maxOrderLimit,
//              fill { NONE, ZERO, POISON }     page_meta.h, pool.h NOFAIL_FILLS
#include "../core/page_meta.h"
#include "../core/status.h"
#include "../core/zone.h"
#include "../sync/control.h"
#include "../sync/pool.h"
#include "api.h"

namespace nofail {

namespace {

// A plain object of numbers, frozen: TypeScript reads it once, at load.
Napi::Object frozen(Napi::Object o) {
  o.Freeze();
  return o;
}

}  // namespace

void RegisterLayout(Napi::Env env, Napi::Object exports) {
#define NOFAIL_LAYOUT_ENTRY(name, k, value, ...) t.Set(#name, Napi::Number::New(env, static_cast<double>(value)));
// One frozen table of layout.<key> from an X-macro list.
#define NOFAIL_LAYOUT_TABLE(key, LIST)         \
  {                                            \
    Napi::Object t = Napi::Object::New(env);   \
    LIST(NOFAIL_LAYOUT_ENTRY)                  \
    layout.Set(key, frozen(t));                \
  }
  Napi::Object layout = Napi::Object::New(env);
  NOFAIL_LAYOUT_TABLE("ctl", NOFAIL_CTL_WORDS)
  NOFAIL_LAYOUT_TABLE("regions", NOFAIL_CTL_REGIONS)
  NOFAIL_LAYOUT_TABLE("task", NOFAIL_TASK_WORDS)
  NOFAIL_LAYOUT_TABLE("alloc", NOFAIL_ALLOC_FLAGS)
  NOFAIL_LAYOUT_TABLE("status", NOFAIL_STATUSES)
#undef NOFAIL_LAYOUT_TABLE
  layout.Set("stat", exports.Get("statIndex"));  // the one object (RegisterPoolApi ran first)
  {
    Napi::Object t = Napi::Object::New(env);
    NOFAIL_FILLS(NOFAIL_LAYOUT_ENTRY)
    Napi::Object c = Napi::Object::New(env);
    c.Set("genBits", Napi::Number::New(env, kGenBits));
    c.Set("transitTask", Napi::Number::New(env, Pool::kTransitTask));
    c.Set("pageShift", Napi::Number::New(env, kPageShift));
    c.Set("maxPages", Napi::Number::New(env, kMaxPages));
    c.Set("maxOrderLimit", Napi::Number::New(env, kMaxOrderLimit));
    c.Set("regionChunkShift", Napi::Number::New(env, kRegionChunkShift));
    c.Set("fill", frozen(t));
    layout.Set("constants", frozen(c));
  }
#undef NOFAIL_LAYOUT_ENTRY
  exports.DefineProperty(Napi::PropertyDescriptor::Value("layout", frozen(layout), napi_enumerable));
}

}  // namespace nofail
