// Pool lifecycle entry points: create, attach, detach, the region view,
// tasks, watermarks, the reservation counter, stats and the identity check.
#include <string>

#include "../sync/control.h"
#include "../sync/registry.h"
#include "api.h"

namespace nofail {

namespace {

constexpr double kMaxPagesD = static_cast<double>(kMaxPages);

napi_value makeArray(napi_env env, std::initializer_list<double> values) {
  napi_value arr;
  napi_create_array_with_length(env, values.size(), &arr);
  uint32_t i = 0;
  for (double v : values) napi_set_element(env, arr, i++, makeNumber(env, v));
  return arr;
}

// Control blocks must be Int32Arrays of at least ctl::kSlots words over a
// SharedArrayBuffer: native code keeps the pointer, and only a shared
// buffer can neither be detached nor moved (an ArrayBuffer can be
// transferred away and freed under it).
bool readControl(napi_env env, napi_value v, int32_t** words) {
  void* data = nullptr;
  size_t length = 0;
  if (!readTypedArray(env, v, "control", napi_int32_array, ctl::kSlots, &data, &length)) return false;
  napi_value buffer = nullptr;
  napi_get_typedarray_info(env, v, nullptr, nullptr, nullptr, &buffer, nullptr);
  bool plain = true;  // napi_is_arraybuffer is false only for a SharedArrayBuffer
  napi_is_arraybuffer(env, buffer, &plain);
  if (plain) {
    throwError(env, ErrorKind::kInvalidArgType, "The \"control\" argument must be an Int32Array over a SharedArrayBuffer");
    return false;
  }
  *words = static_cast<int32_t*>(data);
  return true;
}

napi_value attachSlot(napi_env env, EnvData* data, std::shared_ptr<Pool> pool, napi_value control) {
  const uint32_t task = pool->createTask();
  if (task == 0) {
    throwError(env, ErrorKind::kOutOfRange, "too many tasks attached to this pool");
    return nullptr;
  }
  auto a = std::make_unique<Attachment>();
  a->pool = std::move(pool);
  a->task = task;
  napi_create_reference(env, control, 1, &a->control);
  a->pool->controlBlock().addAttached(1);
  data->slots.push_back(std::move(a));
  const Attachment& at = *data->slots.back();
  return makeArray(env, {static_cast<double>(data->slots.size() - 1), static_cast<double>(at.pool->id),
                         static_cast<double>(at.pool->nonce), static_cast<double>(at.pool->zone().nrPages()),
                         static_cast<double>(at.pool->zone().maxOrder()), static_cast<double>(task)});
}

// create(bytes, maxOrder, min, low, high, flags, releaseOrder, control)
//   -> [slot, id, nonce, nrPages, maxOrder, task]
napi_value Create(napi_env env, napi_callback_info info) {
  Args<8> args;
  if (!args.ok(env, info, 8)) return nullptr;
  uint64_t bytes, maxOrder, min, low, high, flags;
  int64_t releaseOrder;
  int32_t* control;
  if (!readIndex(env, args.argv[0], "bytes", kMaxPagesD * kPageSize, &bytes) ||
      !readIndex(env, args.argv[1], "maxOrder", kMaxOrderLimit, &maxOrder) ||
      !readIndex(env, args.argv[2], "min", kMaxPagesD, &min) ||
      !readIndex(env, args.argv[3], "low", kMaxPagesD, &low) ||
      !readIndex(env, args.argv[4], "high", kMaxPagesD, &high) ||
      !readIndex(env, args.argv[5], "flags", 31, &flags) ||
      !readSigned(env, args.argv[6], "releaseOrder", kMaxOrderLimit, &releaseOrder) ||
      !readControl(env, args.argv[7], &control)) {
    return nullptr;
  }
  PoolConfig c;
  c.bytes = bytes;
  c.maxOrder = static_cast<unsigned>(maxOrder);
  c.wmarkMin = static_cast<int64_t>(min);
  c.wmarkLow = static_cast<int64_t>(low);
  c.wmarkHigh = static_cast<int64_t>(high);
  c.populate = flags & 1;
  c.mlock = flags & 2;
  c.hugepages = flags & 4;
  c.fillOnReclaim = (flags & 16) ? 0x6b : (flags & 8) ? 0 : -1;  // poison, zeroOnFree
  c.releaseOrder = static_cast<int>(releaseOrder);
  c.control = control;
  std::string error;
  std::shared_ptr<Pool> pool = Pool::create(c, &error);
  if (!pool) {
    const bool sys = error.find("failed:") != std::string::npos;
    throwError(env, sys ? ErrorKind::kSystem : ErrorKind::kOutOfRange, error);
    return nullptr;
  }
  __atomic_store_n(&control[ctl::kMagic], ctl::kMagicValue, __ATOMIC_RELEASE);
  Registry::instance().add(pool);
  return attachSlot(env, args.data, std::move(pool), args.argv[7]);
}

// attach(id, nonce, control) -> [slot, id, nonce, nrPages, maxOrder, task]
napi_value Attach(napi_env env, napi_callback_info info) {
  Args<3> args;
  if (!args.ok(env, info, 3)) return nullptr;
  uint64_t id, nonce;
  int32_t* control;
  if (!readIndex(env, args.argv[0], "id", 4294967295.0, &id) ||
      !readIndex(env, args.argv[1], "nonce", 4294967295.0, &nonce) || !readControl(env, args.argv[2], &control)) {
    return nullptr;
  }
  std::shared_ptr<Pool> pool = Registry::instance().find(static_cast<uint32_t>(id), static_cast<uint32_t>(nonce));
  if (!pool) {
    throwError(env, ErrorKind::kPoolClosed, "no open pool has this handle (closed, or never created)");
    return nullptr;
  }
  // The handle's control block must be the pool's own: the SharedArrayBuffer
  // is shared, so every thread sees the same address.
  if (pool->control() != control) {
    throwError(env, ErrorKind::kBadPage, "the handle's control block does not belong to this pool");
    return nullptr;
  }
  return attachSlot(env, args.data, std::move(pool), args.argv[2]);
}

// detach(slot) -> pages this environment still held, now returned
napi_value Detach(napi_env env, napi_callback_info info) {
  Args<1> args;
  if (!args.ok(env, info, 1)) return nullptr;
  uint64_t slot;
  if (!readIndex(env, args.argv[0], "slot", 1e9, &slot)) return nullptr;
  if (slot >= args.data->slots.size() || !args.data->slots[slot]) return makeNumber(env, 0);  // idempotent
  return makeNumber(env, static_cast<double>(args.data->detach(slot, true)));
}

// region(slot) -> ArrayBuffer over the whole mapped region (one per thread)
napi_value RegionBuffer(napi_env env, napi_callback_info info) {
  Args<1> args;
  if (!args.ok(env, info, 1)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  if (!a) return nullptr;
  napi_value ab = nullptr;
  if (a->region) napi_get_reference_value(env, a->region, &ab);
  if (ab == nullptr) {
    // No finalizer work: the memory belongs to the pool, which outlives the
    // buffer's use because detach() detaches the buffer first.
    if (napi_create_external_arraybuffer(env, a->pool->base(), a->pool->region().bytes(), nullptr, nullptr,
                                         &ab) != napi_ok) {
      throwError(env, ErrorKind::kSystem, "cannot create an external ArrayBuffer over the pool");
      return nullptr;
    }
    napi_create_reference(env, ab, 1, &a->region);
  }
  return ab;
}

// taskCreate(slot) -> task id
napi_value TaskCreate(napi_env env, napi_callback_info info) {
  Args<1> args;
  if (!args.ok(env, info, 1)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  if (!a) return nullptr;
  const uint32_t t = a->pool->createTask();
  if (t == 0) {
    throwError(env, ErrorKind::kOutOfRange, "too many tasks in this pool");
    return nullptr;
  }
  return makeNumber(env, t);
}

// taskReclaim(slot, task, retire) -> pages returned
napi_value TaskReclaim(napi_env env, napi_callback_info info) {
  Args<3> args;
  if (!args.ok(env, info, 3)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  uint32_t task;
  bool retire;
  if (!a || !readTask(env, a, args.argv[1], &task) || !readBool(env, args.argv[2], "retire", &retire)) return nullptr;
  if (retire && task == a->task) {
    throwError(env, ErrorKind::kOutOfRange, "a thread's own task is retired by detach()");
    return nullptr;
  }
  const int64_t r = a->pool->reclaimTask(task, retire);
  if (r < 0) {
    throwStatus(env, static_cast<Status>(r), "taskReclaim");
    return nullptr;
  }
  return makeNumber(env, static_cast<double>(r));
}

// taskPages(slot, task) -> pages held
napi_value TaskPages(napi_env env, napi_callback_info info) {
  Args<2> args;
  if (!args.ok(env, info, 2)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  uint32_t task;
  if (!a || !readTask(env, a, args.argv[1], &task)) return nullptr;
  return makeNumber(env, static_cast<double>(a->pool->taskPages(task)));
}

// taskLive(slot, task) -> is the task id live (its thread attached, or a registered task)?
napi_value TaskLive(napi_env env, napi_callback_info info) {
  Args<2> args;
  if (!args.ok(env, info, 2)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  uint64_t t;
  if (!a || !readIndex(env, args.argv[1], "task", kFieldMask, &t)) return nullptr;
  napi_value v;
  napi_get_boolean(env, t != 0 && a->pool->taskLive(static_cast<uint32_t>(t)), &v);
  return v;
}

// setWatermarks(slot, min, low, high)
napi_value SetWatermarks(napi_env env, napi_callback_info info) {
  Args<4> args;
  if (!args.ok(env, info, 4)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  if (!a) return nullptr;
  const double total = a->pool->zone().nrPages();
  uint64_t min, low, high;
  if (!readIndex(env, args.argv[1], "min", total, &min) || !readIndex(env, args.argv[2], "low", total, &low) ||
      !readIndex(env, args.argv[3], "high", total, &high)) {
    return nullptr;
  }
  if (!(min <= low && low <= high)) {
    throwError(env, ErrorKind::kOutOfRange, "watermarks must satisfy min <= low <= high");
    return nullptr;
  }
  a->pool->setWatermarks(static_cast<int64_t>(min), static_cast<int64_t>(low), static_cast<int64_t>(high));
  return makeUndefined(env);
}

// addReserved(slot, delta) -> the reservation counter afterwards; charged to
// this thread's task, whose reservations cannot go below zero
napi_value AddReserved(napi_env env, napi_callback_info info) {
  Args<2> args;
  if (!args.ok(env, info, 2)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  int64_t delta;
  if (!a || !readSigned(env, args.argv[1], "delta", a->pool->zone().nrPages(), &delta)) return nullptr;
  const int64_t r = a->pool->addReserved(delta, a->task);
  if (r < 0) {
    throwError(env, ErrorKind::kOutOfRange, "this thread's reservations cannot go below zero");
    return nullptr;
  }
  return makeNumber(env, static_cast<double>(r));
}

// tryReserve(slot, n, level) -> whether n pages were reserved (free stays
// above the level's mark + reservations)
napi_value TryReserve(napi_env env, napi_callback_info info) {
  Args<3> args;
  if (!args.ok(env, info, 3)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  uint64_t n, level;
  if (!a || !readIndex(env, args.argv[1], "n", a->pool->zone().nrPages(), &n) ||
      !readIndex(env, args.argv[2], "level", kAllocWmarkHigh, &level)) {
    return nullptr;
  }
  napi_value v;
  napi_get_boolean(env, a->pool->tryReserve(static_cast<int64_t>(n), static_cast<unsigned>(level), a->task), &v);
  return v;
}

// stats(slot, out: Float64Array(statsLength)): one PoolSnapshot (sync/pool.h),
// taken under the zone lock. The layout is declared once, here, and
// exported as `statIndex` (name -> index); src/binding/native.ts reads
// every field by name from it, so the two sides cannot drift.
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

napi_value Stats(napi_env env, napi_callback_info info) {
  Args<2> args;
  if (!args.ok(env, info, 2)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  void* raw;
  size_t length;
  if (!a || !readTypedArray(env, args.argv[1], "out", napi_float64_array, kStatsLength, &raw, &length)) return nullptr;
  // Written, never read back: another thread writing the same array (a
  // SharedArrayBuffer) can garble the numbers it gets, not native memory.
  double* o = static_cast<double*>(raw);
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
  return makeUndefined(env);
}

napi_value statIndex(napi_env env) {
  napi_value obj;
  napi_create_object(env, &obj);
#define X(name, expr) napi_set_named_property(env, obj, #name, makeNumber(env, kStat_##name));
  NOFAIL_STAT_FIELDS(X)
#undef X
  napi_set_named_property(env, obj, "buddyinfo", makeNumber(env, kStatsBuddyinfo));
  napi_set_named_property(env, obj, "cachedTaskPairs", makeNumber(env, kStatsCachedTasks));
  return obj;
}

// check(slot) -> null when every accounting identity holds, else the first broken one
napi_value Check(napi_env env, napi_callback_info info) {
  Args<1> args;
  if (!args.ok(env, info, 1)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  if (!a) return nullptr;
  const char* why = a->pool->check();
  napi_value v;
  if (why == nullptr) {
    napi_get_null(env, &v);
  } else {
    napi_create_string_utf8(env, why, NAPI_AUTO_LENGTH, &v);
  }
  return v;
}

}  // namespace

void RegisterPoolApi(napi_env env, napi_value exports, EnvData* data) {
  const napi_property_descriptor props[] = {
      {"create", nullptr, Create, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"attach", nullptr, Attach, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"detach", nullptr, Detach, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"region", nullptr, RegionBuffer, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"taskCreate", nullptr, TaskCreate, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"taskReclaim", nullptr, TaskReclaim, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"taskPages", nullptr, TaskPages, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"taskLive", nullptr, TaskLive, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"setWatermarks", nullptr, SetWatermarks, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"addReserved", nullptr, AddReserved, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"tryReserve", nullptr, TryReserve, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"stats", nullptr, Stats, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"check", nullptr, Check, nullptr, nullptr, nullptr, napi_enumerable, data},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  napi_value n;
  napi_create_uint32(env, static_cast<uint32_t>(kStatsLength), &n);
  napi_set_named_property(env, exports, "statsLength", n);
  napi_set_named_property(env, exports, "statIndex", statIndex(env));
}

}  // namespace nofail
