// Page entry points: alloc, free, the bulk calls, hand-over between tasks,
// and a metadata probe for tests. These are the hot paths: each validates
// its arguments with a few compares and takes the zone lock once (freeBulk
// once per kRefChunk refs).
#include <algorithm>
#include <cstring>

#include "api.h"

namespace nofail {

namespace {

// A single allocation returns pfn * 2^20 + gen as one double (49 bits, exact),
// or a negative Status. Order is known to the caller.
constexpr double kGenScale = static_cast<double>(1u << kGenBits);

bool readOrder(napi_env env, Attachment* a, napi_value v, unsigned* order) {
  uint64_t o;
  if (!readIndex(env, v, "order", a->pool->zone().maxOrder(), &o)) return false;
  *order = static_cast<unsigned>(o);
  return true;
}

bool readAllocFlags(napi_env env, napi_value v, uint32_t* flags) {
  uint64_t f;
  if (!readIndex(env, v, "allocFlags", kAllocKnownMask, &f)) return false;
  if ((f & kAllocWmarkMask) == kAllocWmarkMask) {
    throwError(env, ErrorKind::kOutOfRange, "allocFlags names no watermark level (3)");
    return false;
  }
  *flags = static_cast<uint32_t>(f);
  return true;
}

bool readPfn(napi_env env, Attachment* a, napi_value v, uint32_t* pfn) {
  uint64_t p;
  if (!readIndex(env, v, "pfn", a->pool->zone().nrPages() - 1.0, &p)) return false;
  *pfn = static_cast<uint32_t>(p);
  return true;
}

// freeBulk copies refs into its own stack frame this many at a time (12 KiB).
constexpr uint32_t kRefChunk = Pool::kMaxFreeBatch;

bool readGen(napi_env env, napi_value v, uint32_t* gen) {
  uint64_t g;
  if (!readIndex(env, v, "gen", kGenMask, &g)) return false;
  *gen = static_cast<uint32_t>(g);
  return true;
}

// alloc(slot, order, allocFlags, task) -> pfn * 2^20 + gen, or a negative Status
napi_value Alloc(napi_env env, napi_callback_info info) {
  Args<4> args;
  if (!args.ok(env, info, 4)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  unsigned order;
  uint32_t flags, task;
  if (!a || !readOrder(env, a, args.argv[1], &order) || !readAllocFlags(env, args.argv[2], &flags) ||
      !readTask(env, a, args.argv[3], &task)) {
    return nullptr;
  }
  uint32_t gen = 0;
  const int64_t pfn = a->pool->alloc(order, flags, task, &gen);
  if (pfn == static_cast<int64_t>(Status::kNoTask)) {
    throwStatus(env, Status::kNoTask, "alloc");
    return nullptr;
  }
  return makeNumber(env, pfn < 0 ? static_cast<double>(pfn) : static_cast<double>(pfn) * kGenScale + gen);
}

// free(slot, pfn, order, gen)
napi_value Free(napi_env env, napi_callback_info info) {
  Args<4> args;
  if (!args.ok(env, info, 4)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  uint32_t pfn, gen;
  unsigned order;
  if (!a || !readPfn(env, a, args.argv[1], &pfn) || !readOrder(env, a, args.argv[2], &order) ||
      !readGen(env, args.argv[3], &gen)) {
    return nullptr;
  }
  const Status s = a->pool->free(pfn, order, gen);
  if (s != Status::kOk) throwStatus(env, s, "free");
  return nullptr;
}

// allocBulk(slot, n, order, allocFlags, task, out: Int32Array(2n)) -> n, or a negative Status.
// `out` may be over a SharedArrayBuffer that another thread writes during
// the call: the core only writes it (zone.h), never reads a pfn back from
// it, so a scribbler garbles what the caller reads, not what native code
// indexes metadata with. On failure nothing is written to it.
napi_value AllocBulk(napi_env env, napi_callback_info info) {
  Args<6> args;
  if (!args.ok(env, info, 6)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  uint64_t n;
  unsigned order;
  uint32_t flags, task;
  void* out;
  size_t length;
  if (!a || !readIndex(env, args.argv[1], "n", a->pool->zone().nrPages(), &n) ||
      !readOrder(env, a, args.argv[2], &order) || !readAllocFlags(env, args.argv[3], &flags) ||
      !readTask(env, a, args.argv[4], &task) ||
      !readTypedArray(env, args.argv[5], "out", napi_int32_array, 2 * n, &out, &length)) {
    return nullptr;
  }
  const int64_t r = a->pool->allocBulk(static_cast<uint32_t>(n), order, flags, task, static_cast<int32_t*>(out));
  if (r == static_cast<int64_t>(Status::kNoTask)) {
    throwStatus(env, Status::kNoTask, "allocBulk");
    return nullptr;
  }
  return makeNumber(env, static_cast<double>(r));
}

// freeBulk(slot, refs: Int32Array of (pfn, order, gen) triples, n) -> n.
// On an invalid entry it throws; the error's `freed` says how many of the
// leading entries were freed before it. `refs` may be over a
// SharedArrayBuffer that another thread writes during the call, so it is
// read once: copied a chunk at a time (one memcpy) into this frame, and the
// pool validates and frees from the copy. What was checked is what is freed.
// A chunk is at most kRefChunk, the pool's one-pass batch, taken under
// one hold of the zone lock.
napi_value FreeBulk(napi_env env, napi_callback_info info) {
  Args<3> args;
  if (!args.ok(env, info, 3)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  uint64_t n;
  void* raw;
  size_t length;
  if (!a || !readIndex(env, args.argv[2], "n", a->pool->zone().nrPages(), &n) ||
      !readTypedArray(env, args.argv[1], "refs", napi_int32_array, 3 * n, &raw, &length)) {
    return nullptr;
  }
  static_assert(sizeof(BlockRef) == 3 * sizeof(int32_t), "BlockRef is an int32 triple");
  BlockRef refs[kRefChunk];
  uint32_t done = 0;
  Status s = Status::kOk;
  while (done < n && s == Status::kOk) {
    const uint32_t chunk = static_cast<uint32_t>(std::min<uint64_t>(n - done, kRefChunk));
    std::memcpy(refs, static_cast<const int32_t*>(raw) + 3 * uint64_t{done}, chunk * sizeof(BlockRef));
    uint32_t freed = 0;
    s = a->pool->freeBulk(refs, chunk, &freed);
    done += freed;
  }
  if (s != Status::kOk) {
    throwStatus(env, s, ("freeBulk entry " + std::to_string(done)).c_str());
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_set_named_property(env, err, "freed", makeNumber(env, done));
    napi_throw(env, err);
    return nullptr;
  }
  return makeNumber(env, done);
}

// setOwner(slot, pfn, order, gen, task, expectOwner): hand an allocated block
// to a task; expectOwner 0 = whoever owns it now
napi_value SetOwner(napi_env env, napi_callback_info info) {
  Args<6> args;
  if (!args.ok(env, info, 6)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  uint32_t pfn, gen, task, expect;
  unsigned order;
  uint64_t e;
  if (!a || !readPfn(env, a, args.argv[1], &pfn) || !readOrder(env, a, args.argv[2], &order) ||
      !readGen(env, args.argv[3], &gen) || !readTask(env, a, args.argv[4], &task) ||
      !readIndex(env, args.argv[5], "expectOwner", kFieldMask, &e)) {
    return nullptr;
  }
  expect = static_cast<uint32_t>(e);
  const Status s = a->pool->setOwner(pfn, order, gen, task, expect);
  if (s != Status::kOk) throwStatus(env, s, "adopt");
  return nullptr;
}

// meta(slot, pfn) -> [state, order, owner, gen]; state 0 tail, 1 free, 2 allocated
napi_value Meta(napi_env env, napi_callback_info info) {
  Args<2> args;
  if (!args.ok(env, info, 2)) return nullptr;
  Attachment* a = readSlot(env, args.data, args.argv[0]);
  uint32_t pfn;
  if (!a || !readPfn(env, a, args.argv[1], &pfn)) return nullptr;
  // A racy read by design (no lock): a probe for tests and diagnostics.
  const PageMeta m = a->pool->zone().meta(pfn);
  const bool alloc = m.state() == PageState::kAllocated;
  napi_value arr;
  napi_create_array_with_length(env, 4, &arr);
  const double vals[4] = {static_cast<double>(m.state()), static_cast<double>(m.order()),
                          alloc ? static_cast<double>(m.owner()) : 0, alloc ? static_cast<double>(m.gen()) : 0};
  for (uint32_t i = 0; i < 4; ++i) napi_set_element(env, arr, i, makeNumber(env, vals[i]));
  return arr;
}

}  // namespace

void RegisterPageApi(napi_env env, napi_value exports, EnvData* data) {
  const napi_property_descriptor props[] = {
      {"alloc", nullptr, Alloc, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"free", nullptr, Free, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"allocBulk", nullptr, AllocBulk, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"freeBulk", nullptr, FreeBulk, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"setOwner", nullptr, SetOwner, nullptr, nullptr, nullptr, napi_enumerable, data},
      {"meta", nullptr, Meta, nullptr, nullptr, nullptr, napi_enumerable, data},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}

}  // namespace nofail
