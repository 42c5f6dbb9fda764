// The naive baseline for the benchmarks (DESIGN §4, "naive mutex pool"):
// what a first Node-API page pool looks like before any of nofail's work.
//
//   - one mmap'd region of 4 KiB pages;
//   - a free list of page indices (a LIFO stack);
//   - one std::mutex, taken on every alloc and every free call;
//   - alloc returns an index; JavaScript makes the Uint8Array view itself
//     from one external ArrayBuffer over the region (per thread).
//
// Pools live in a process-wide table so that worker_threads can use a pool
// by its id; they are never unmapped (the process exit does it). No
// watermarks, no orders, no ownership: a benchmark baseline, not a product.
// It lives in bench/ only and is built by the second target of binding.gyp
// into build/Release/naive_pool.node.
//
// API (all arguments are plain numbers):
//   create(nrPages) -> id
//   region(id)      -> ArrayBuffer over the pool (a fresh external one per call)
//   alloc(id)       -> page index, or -1 when the pool is empty
//   free(id, index) -> undefined; throws on a bad index or a double free
//   available(id)   -> free pages
#include <node_api.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace {

constexpr uint32_t kPageShift = 12;
constexpr uint32_t kMaxPools = 256;

struct NaivePool {
  uint8_t* base = nullptr;
  uint32_t nrPages = 0;
  std::mutex lock;              // protects freeList and isFree
  std::vector<uint32_t> freeList;
  std::vector<uint8_t> isFree;  // the one cheap guard: no double free
};

// Entries are published once (release) and never removed.
std::atomic<NaivePool*> gPools[kMaxPools];
std::atomic<uint32_t> gNextId{0};

NaivePool* readPool(napi_env env, napi_value v) {
  uint32_t id;
  if (napi_get_value_uint32(env, v, &id) != napi_ok || id >= kMaxPools) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "bad naive pool id");
    return nullptr;
  }
  NaivePool* p = gPools[id].load(std::memory_order_acquire);
  if (p == nullptr) napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "no naive pool with this id");
  return p;
}

template <size_t N>
bool getArgs(napi_env env, napi_callback_info info, napi_value (&argv)[N]) {
  size_t argc = N;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < N) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "missing arguments");
    return false;
  }
  return true;
}

napi_value number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

napi_value Create(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, argv)) return nullptr;
  uint32_t nrPages;
  if (napi_get_value_uint32(env, argv[0], &nrPages) != napi_ok || nrPages == 0 || nrPages > (1u << 24)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "nrPages must be 1..2^24");
    return nullptr;
  }
  const uint32_t id = gNextId.fetch_add(1);
  if (id >= kMaxPools) {
    napi_throw_error(env, "ERR_SYSTEM", "too many naive pools");
    return nullptr;
  }
  const size_t bytes = static_cast<size_t>(nrPages) << kPageShift;
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    napi_throw_error(env, "ERR_SYSTEM", "mmap failed");
    return nullptr;
  }
  auto* p = new NaivePool();
  p->base = static_cast<uint8_t*>(base);
  p->nrPages = nrPages;
  p->freeList.reserve(nrPages);
  // Pushed in reverse so that the first alloc returns page 0.
  for (uint32_t i = nrPages; i-- > 0;) p->freeList.push_back(i);
  p->isFree.assign(nrPages, 1);
  gPools[id].store(p, std::memory_order_release);
  return number(env, id);
}

napi_value Region(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, argv)) return nullptr;
  NaivePool* p = readPool(env, argv[0]);
  if (p == nullptr) return nullptr;
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p->base, static_cast<size_t>(p->nrPages) << kPageShift, nullptr,
                                       nullptr, &ab) != napi_ok) {
    napi_throw_error(env, "ERR_SYSTEM", "cannot create an external ArrayBuffer");
    return nullptr;
  }
  return ab;
}

napi_value Alloc(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, argv)) return nullptr;
  NaivePool* p = readPool(env, argv[0]);
  if (p == nullptr) return nullptr;
  int64_t index = -1;
  {
    std::lock_guard<std::mutex> guard(p->lock);
    if (!p->freeList.empty()) {
      index = p->freeList.back();
      p->freeList.pop_back();
      p->isFree[index] = 0;
    }
  }
  return number(env, static_cast<double>(index));
}

napi_value Free(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!getArgs(env, info, argv)) return nullptr;
  NaivePool* p = readPool(env, argv[0]);
  if (p == nullptr) return nullptr;
  uint32_t index;
  if (napi_get_value_uint32(env, argv[1], &index) != napi_ok || index >= p->nrPages) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "bad page index");
    return nullptr;
  }
  bool doubleFree = false;
  {
    std::lock_guard<std::mutex> guard(p->lock);
    if (p->isFree[index]) {
      doubleFree = true;
    } else {
      p->isFree[index] = 1;
      p->freeList.push_back(index);
    }
  }
  if (doubleFree) napi_throw_error(env, "ERR_DOUBLE_FREE", "page is already free");
  return nullptr;
}

napi_value Available(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!getArgs(env, info, argv)) return nullptr;
  NaivePool* p = readPool(env, argv[0]);
  if (p == nullptr) return nullptr;
  std::lock_guard<std::mutex> guard(p->lock);
  return number(env, static_cast<double>(p->freeList.size()));
}

}  // namespace

NAPI_MODULE_INIT() {
  const napi_property_descriptor props[] = {
      {"create", nullptr, Create, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"region", nullptr, Region, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"alloc", nullptr, Alloc, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"free", nullptr, Free, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"available", nullptr, Available, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}
