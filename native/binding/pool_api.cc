// Pool lifecycle entry points: create, attach, detach, the region view,
// tasks, watermarks, the reservation counter, stats and the identity check.
#include <cstring>
#include <string>

#include "../sync/control.h"
#include "../sync/registry.h"
#include "api.h"

namespace nofail {

namespace {

constexpr double kMaxPagesD = static_cast<double>(kMaxPages);

// Control blocks must be Int32Arrays of at least ctl::kSlots words over a
// SharedArrayBuffer: native code keeps the pointer, and only a shared
// buffer can neither be detached nor moved (an ArrayBuffer can be
// transferred away and freed under it).
bool readControl(const Napi::Value& v, int32_t** words) {
  TypedArrayData<int32_t> control;
  napi_value buffer = nullptr;
  if (!readTypedArray(v, "control", ctl::kSlots, &control, &buffer)) return false;
  if (Napi::Value(v.Env(), buffer).IsArrayBuffer()) {  // false only for a SharedArrayBuffer
    throwError(v.Env(), ErrorKind::kInvalidArgType,
               "The \"control\" argument must be an Int32Array over a SharedArrayBuffer");
    return false;
  }
  *words = control.data;
  return true;
}

// { slot, id, nonce, nrPages, maxOrder, task }: what create and attach return.
Napi::Value attachSlot(Napi::Env env, EnvData* data, std::shared_ptr<Pool> pool, const Napi::Value& control) {
  const uint32_t task = pool->createTask();
  if (task == 0) {
    throwError(env, ErrorKind::kOutOfRange, "too many tasks attached to this pool");
    return {};
  }
  auto a = std::make_unique<Attachment>();
  a->pool = std::move(pool);
  a->task = task;
  a->control = Napi::Persistent(control.As<Napi::Object>());
  a->pool->controlBlock().addAttached(1);
  data->slots.push_back(std::move(a));
  const Pool& p = *data->slots.back()->pool;
  Napi::Object r = Napi::Object::New(env);
  r.Set("slot", static_cast<double>(data->slots.size() - 1));
  r.Set("id", static_cast<double>(p.id));
  r.Set("nonce", static_cast<double>(p.nonce));
  r.Set("nrPages", static_cast<double>(p.zone().nrPages()));
  r.Set("maxOrder", static_cast<double>(p.zone().maxOrder()));
  r.Set("task", static_cast<double>(task));
  return r;
}

// create()'s options, each required: the TypeScript side (src/mm/create.ts)
// resolves every default, so a missing field here is a caller's mistake.
const char* const kCreateFields[] = {"bytes", "maxOrder", "min",       "low",  "high",
                                     "populate", "mlock",  "hugepages", "fill", "releaseOrder"};

// Every own enumerable key of the options is one of kCreateFields, or
// ERR_OUT_OF_RANGE naming the first that is not.
bool onlyKnownFields(const Napi::Object& o) {
  const Napi::Env env = o.Env();
  napi_value keys = nullptr;
  const auto filter = static_cast<napi_key_filter>(napi_key_enumerable | napi_key_skip_symbols);
  if (napi_get_all_property_names(env, o, napi_key_own_only, filter, napi_key_numbers_to_strings, &keys) != napi_ok) {
    throwError(env, ErrorKind::kInvalidArgType, "The \"options\" argument's keys cannot be read");
    return false;
  }
  const Napi::Array names(env, keys);
  for (uint32_t i = 0; i < names.Length(); ++i) {
    const Napi::Value key = names.Get(i);
    if (key.IsEmpty()) return false;  // a proxy trap threw; its exception is pending
    const std::string name = key.As<Napi::String>().Utf8Value();
    bool known = false;
    for (const char* f : kCreateFields) known = known || name == f;
    if (!known) {
      std::string all;
      for (const char* f : kCreateFields) all += (all.empty() ? "" : ", ") + std::string(f);
      throwError(env, ErrorKind::kOutOfRange, "create() options have no field '" + name + "'; the fields are " + all);
      return false;
    }
  }
  return true;
}

bool readCreateOptions(const Napi::Value& v, PoolConfig* c) {
  if (v.Type() != napi_object) {
    throwError(v.Env(), ErrorKind::kInvalidArgType, "The \"options\" argument must be an object");
    return false;
  }
  const Napi::Object o = v.As<Napi::Object>();
  uint64_t bytes, maxOrder, min, low, high;
  int64_t fill, releaseOrder;
  if (!readIndex(o.Get("bytes"), "options.bytes", kMaxPagesD * kPageSize, &bytes) ||
      !readIndex(o.Get("maxOrder"), "options.maxOrder", kMaxOrderLimit, &maxOrder) ||
      !readIndex(o.Get("min"), "options.min", kMaxPagesD, &min) ||
      !readIndex(o.Get("low"), "options.low", kMaxPagesD, &low) ||
      !readIndex(o.Get("high"), "options.high", kMaxPagesD, &high) ||
      !readBool(o.Get("populate"), "options.populate", &c->populate) ||
      !readBool(o.Get("mlock"), "options.mlock", &c->mlock) ||
      !readBool(o.Get("hugepages"), "options.hugepages", &c->hugepages) ||
      !readSigned(o.Get("fill"), "options.fill", kFillNone, kFillPoison, &fill) ||
      !readSigned(o.Get("releaseOrder"), "options.releaseOrder", -1, kMaxOrderLimit, &releaseOrder) ||
      !onlyKnownFields(o)) {
    return false;
  }
  if (fill != kFillNone && fill != kFillZero && fill != kFillPoison) {
    throwError(v.Env(), ErrorKind::kOutOfRange,
               "The value of \"options.fill\" is out of range. It must be one of layout.constants.fill (-1 none, "
               "0 zero, 0x6b poison). Received " + std::to_string(fill));
    return false;
  }
  c->bytes = bytes;
  c->maxOrder = static_cast<unsigned>(maxOrder);
  c->wmarkMin = static_cast<int64_t>(min);
  c->wmarkLow = static_cast<int64_t>(low);
  c->wmarkHigh = static_cast<int64_t>(high);
  c->fillOnReclaim = static_cast<int>(fill);
  c->releaseOrder = static_cast<int>(releaseOrder);
  return true;
}

// create({ bytes, maxOrder, min, low, high, populate, mlock, hugepages, fill, releaseOrder }, control)
//   -> { slot, id, nonce, nrPages, maxOrder, task }
Napi::Value Create(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 2)) return {};
  PoolConfig c;
  if (!readCreateOptions(info[0], &c) || !readControl(info[1], &c.control)) return {};
  CreateStatus status;
  std::shared_ptr<Pool> pool = Pool::create(c, &status);
  if (!pool) {
    if (status.kind == CreateStatus::Kind::kSystem) {
      throwSystem(info.Env(), status.call, status.err);
    } else {
      throwError(info.Env(), ErrorKind::kOutOfRange, status.rule);
    }
    return {};
  }
  __atomic_store_n(&c.control[ctl::kMagic], ctl::kMagicValue, __ATOMIC_RELEASE);
  Registry::instance().add(pool);
  return attachSlot(info.Env(), envData(info), std::move(pool), info[1]);
}

// attach(id, nonce, control) -> { slot, id, nonce, nrPages, maxOrder, task }
Napi::Value Attach(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 3)) return {};
  uint64_t id, nonce;
  int32_t* control;
  if (!readIndex(info[0], "id", 4294967295.0, &id) || !readIndex(info[1], "nonce", 4294967295.0, &nonce) ||
      !readControl(info[2], &control)) {
    return {};
  }
  std::shared_ptr<Pool> pool = Registry::instance().find(static_cast<uint32_t>(id), static_cast<uint32_t>(nonce));
  if (!pool) {
    throwError(info.Env(), ErrorKind::kPoolClosed, "no open pool has this handle (closed, or never created)");
    return {};
  }
  // The handle's control block must be the pool's own: the SharedArrayBuffer
  // is shared, so every thread sees the same address.
  if (pool->control() != control) {
    throwError(info.Env(), ErrorKind::kBadPage, "the handle's control block does not belong to this pool");
    return {};
  }
  return attachSlot(info.Env(), envData(info), std::move(pool), info[2]);
}

// detach(slot) -> pages this environment still held, now returned
Napi::Value Detach(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 1)) return {};
  EnvData* data = envData(info);
  uint64_t slot;
  if (!readIndex(info[0], "slot", 1e9, &slot)) return {};
  if (slot >= data->slots.size() || !data->slots[slot]) return Napi::Number::New(info.Env(), 0);  // idempotent
  return Napi::Number::New(info.Env(), static_cast<double>(data->detach(slot, true)));
}

// region(slot, chunk) -> ArrayBuffer over bytes [chunk << kRegionChunkShift,
// its end) of the mapped region: one per chunk and thread, made once. An
// ArrayBuffer cannot exceed 4 GiB, and chunks keep every offset in int32
// range; no block crosses a chunk (page_meta.h).
Napi::Value RegionBuffer(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 2)) return {};
  Attachment* a = readSlot(info, info[0]);
  const uint64_t bytes = a ? a->pool->region().bytes() : 0;
  const uint64_t chunks = (bytes + (uint64_t{1} << kRegionChunkShift) - 1) >> kRegionChunkShift;
  uint64_t chunk;
  if (!a || !readIndex(info[1], "chunk", static_cast<double>(chunks - 1), &chunk)) return {};
  if (a->regions.size() < chunks) a->regions.resize(chunks);
  Napi::Reference<Napi::ArrayBuffer>& ref = a->regions[chunk];
  if (!ref.IsEmpty()) return ref.Value();
  const uint64_t start = chunk << kRegionChunkShift;
  const uint64_t length = std::min(bytes - start, uint64_t{1} << kRegionChunkShift);
  // No finalizer work: the memory belongs to the pool, which outlives the
  // buffer's use because detach() detaches the buffer first. The C call,
  // for its status: a refusal is ERR_SYSTEM, not a generic Error.
  napi_value ab = nullptr;
  if (napi_create_external_arraybuffer(info.Env(), a->pool->base() + start, length, nullptr, nullptr, &ab) != napi_ok) {
    throwError(info.Env(), ErrorKind::kSystem, "cannot create an external ArrayBuffer over the pool");
    return {};
  }
  const Napi::ArrayBuffer buffer(info.Env(), ab);
  ref = Napi::Persistent(buffer);
  return buffer;
}

// taskCreate(slot) -> task id
Napi::Value TaskCreate(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 1)) return {};
  Attachment* a = readSlot(info, info[0]);
  if (!a) return {};
  const uint32_t t = a->pool->createTask();
  if (t == 0) {
    throwError(info.Env(), ErrorKind::kOutOfRange, "too many tasks in this pool");
    return {};
  }
  return Napi::Number::New(info.Env(), t);
}

// taskReclaim(slot, task, retire) -> pages returned
Napi::Value TaskReclaim(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 3)) return {};
  Attachment* a = readSlot(info, info[0]);
  uint32_t task;
  bool retire;
  if (!a || !readTask(a, info[1], &task) || !readBool(info[2], "retire", &retire)) return {};
  if (retire && task == a->task) {
    throwError(info.Env(), ErrorKind::kOutOfRange, "a thread's own task is retired by detach()");
    return {};
  }
  const int64_t r = a->pool->reclaimTask(task, retire);
  if (r < 0) {
    throwStatus(info.Env(), static_cast<Status>(r), "taskReclaim");
    return {};
  }
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

// taskPages(slot, task) -> pages held
Napi::Value TaskPages(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 2)) return {};
  Attachment* a = readSlot(info, info[0]);
  uint32_t task;
  if (!a || !readTask(a, info[1], &task)) return {};
  return Napi::Number::New(info.Env(), static_cast<double>(a->pool->taskPages(task)));
}

// taskLive(slot, task) -> is the task id live (its thread attached, or a registered task)?
Napi::Value TaskLive(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 2)) return {};
  Attachment* a = readSlot(info, info[0]);
  uint64_t t;
  if (!a || !readIndex(info[1], "task", kFieldMask, &t)) return {};
  return Napi::Boolean::New(info.Env(), t != 0 && a->pool->taskLive(static_cast<uint32_t>(t)));
}

// setWatermarks(slot, min, low, high)
void SetWatermarks(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 4)) return;
  Attachment* a = readSlot(info, info[0]);
  if (!a) return;
  const double total = a->pool->zone().nrPages();
  uint64_t min, low, high;
  if (!readIndex(info[1], "min", total, &min) || !readIndex(info[2], "low", total, &low) ||
      !readIndex(info[3], "high", total, &high)) {
    return;
  }
  if (!(min <= low && low <= high)) {
    throwError(info.Env(), ErrorKind::kOutOfRange, "watermarks must satisfy min <= low <= high");
    return;
  }
  a->pool->setWatermarks(static_cast<int64_t>(min), static_cast<int64_t>(low), static_cast<int64_t>(high));
}

// addReserved(slot, delta) -> the reservation counter afterwards; charged to
// this thread's task, whose reservations cannot go below zero
Napi::Value AddReserved(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 2)) return {};
  Attachment* a = readSlot(info, info[0]);
  int64_t delta;
  if (!a) return {};
  const double total = a->pool->zone().nrPages();
  if (!readSigned(info[1], "delta", -total, total, &delta)) return {};
  const int64_t r = a->pool->addReserved(delta, a->task);
  if (r < 0) {
    throwError(info.Env(), ErrorKind::kOutOfRange, "this thread's reservations cannot go below zero");
    return {};
  }
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

// tryReserve(slot, n, level) -> whether n pages were reserved (free stays
// above the level's mark + reservations)
Napi::Value TryReserve(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 3)) return {};
  Attachment* a = readSlot(info, info[0]);
  uint64_t n, level;
  if (!a || !readIndex(info[1], "n", a->pool->zone().nrPages(), &n) ||
      !readIndex(info[2], "level", kAllocWmarkHigh, &level)) {
    return {};
  }
  return Napi::Boolean::New(info.Env(),
                            a->pool->tryReserve(static_cast<int64_t>(n), static_cast<unsigned>(level), a->task));
}

// effectiveMark(slot, level, allocFlags) -> the mark a caller with these
// rights must leave free pages at or above after taking its pages
// (Zone::effectiveMark): the slow path asks rather than repeat the formula.
Napi::Value EffectiveMark(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 3)) return {};
  Attachment* a = readSlot(info, info[0]);
  uint64_t level, flags;
  if (!a || !readIndex(info[1], "level", kAllocWmarkHigh, &level) ||
      !readIndex(info[2], "allocFlags", kAllocKnownMask, &flags)) {
    return {};
  }
  return Napi::Number::New(info.Env(), static_cast<double>(a->pool->zone().effectiveMark(
                                           static_cast<unsigned>(level), static_cast<uint32_t>(flags))));
}

// stats(slot, out: Float64Array(statsLength)): one PoolSnapshot (sync/pool.h),
// taken under the zone lock. The layout is declared once, here, and
// exported as `statIndex` (name -> index, also layout.stat);
// src/binding/native.ts reads every field by name from it.
//   [fields below] [buddyinfo: kMaxOrderLimit + 1] [cachedTasks (task, pages) pairs]
#define NOFAIL_STAT_FIELDS(X)                                                                    \
  X(totalPages, s.totalPages) X(freePages, s.freePages) X(allocatedPages, s.allocatedPages)     \
  X(cachedPages, s.cachedPages) X(tokenPages, s.tokenPages) X(min, s.wmark[kAllocWmarkMin])     \
  X(low, s.wmark[kAllocWmarkLow]) X(high, s.wmark[kAllocWmarkHigh]) X(reserved, s.reserved)     \
  X(allocs, s.allocs) X(frees, s.frees) X(pgalloc, s.pgalloc) X(pgfree, s.pgfree)              \
  X(failWatermark, s.failWatermark) X(failFragmented, s.failFragmented)                         \
  X(liveTasks, s.liveTasks) X(maxOrder, s.maxOrder) X(threadPages, s.threadPages)              \
  X(threadCachedPages, s.threadCachedPages) X(cachedTasks, cachedTasks)

enum StatField : size_t {
#define X(name, expr) kStat_##name,
  NOFAIL_STAT_FIELDS(X)
#undef X
  kStatsFixed
};
constexpr size_t kStatsBuddyinfo = kStatsFixed;
constexpr size_t kStatsCachedTasks = kStatsBuddyinfo + kMaxOrderLimit + 1;
constexpr size_t kStatsLength = kStatsCachedTasks + 2 * ctl::kTaskTableTasks;

void Stats(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 2)) return;
  Attachment* a = readSlot(info, info[0]);
  TypedArrayData<double> out;
  if (!a || !readTypedArray(info[1], "out", kStatsLength, &out)) return;
  // Written, never read back: another thread writing the same array (a
  // SharedArrayBuffer) can garble the numbers it gets, not native memory.
  double* o = out.data;
  PoolSnapshot s;
  size_t cachedTasks = 0;
  a->pool->snapshot(a->task, &s, [&](uint32_t task, int64_t pages) {
    o[kStatsCachedTasks + 2 * cachedTasks] = task;
    o[kStatsCachedTasks + 2 * cachedTasks + 1] = static_cast<double>(pages);
    ++cachedTasks;
  });
#define X(name, expr) o[kStat_##name] = static_cast<double>(expr);
  NOFAIL_STAT_FIELDS(X)
#undef X
  for (unsigned i = 0; i <= kMaxOrderLimit; ++i) o[kStatsBuddyinfo + i] = static_cast<double>(s.nrFree[i]);
}

// check(slot) -> null when every accounting identity holds, else the first broken one
Napi::Value Check(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 1)) return {};
  Attachment* a = readSlot(info, info[0]);
  if (!a) return {};
  const char* why = a->pool->check();
  if (why == nullptr) return info.Env().Null();
  return Napi::String::New(info.Env(), why);
}

Napi::Object StatIndex(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
#define X(name, expr) o.Set(#name, static_cast<double>(kStat_##name));
  NOFAIL_STAT_FIELDS(X)
#undef X
  o.Set("buddyinfo", static_cast<double>(kStatsBuddyinfo));
  o.Set("cachedTaskPairs", static_cast<double>(kStatsCachedTasks));
  o.Freeze();
  return o;
}

}  // namespace

void RegisterPoolApi(Napi::Env env, Napi::Object exports, EnvData* data) {
  exports.DefineProperties({
      method<Create>(env, "create", data),
      method<Attach>(env, "attach", data),
      method<Detach>(env, "detach", data),
      method<RegionBuffer>(env, "region", data),
      method<TaskCreate>(env, "taskCreate", data),
      method<TaskReclaim>(env, "taskReclaim", data),
      method<TaskPages>(env, "taskPages", data),
      method<TaskLive>(env, "taskLive", data),
      method<SetWatermarks>(env, "setWatermarks", data),
      method<AddReserved>(env, "addReserved", data),
      method<TryReserve>(env, "tryReserve", data),
      method<EffectiveMark>(env, "effectiveMark", data),
      method<Stats>(env, "stats", data),
      method<Check>(env, "check", data),
  });
  exports.Set("statsLength", static_cast<double>(kStatsLength));
  exports.Set("statIndex", StatIndex(env));
}

}  // namespace nofail
