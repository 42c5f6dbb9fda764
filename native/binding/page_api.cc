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

bool readOrder(const Attachment* a, const Napi::Value& v, unsigned* order) {
  uint64_t o;
  if (!readIndex(v, "order", a->pool->zone().maxOrder(), &o)) return false;
  *order = static_cast<unsigned>(o);
  return true;
}

bool readAllocFlags(const Napi::Value& v, uint32_t* flags) {
  uint64_t f;
  if (!readIndex(v, "allocFlags", kAllocKnownMask, &f)) return false;
  if ((f & kAllocWmarkMask) == kAllocWmarkMask) {
    throwError(v.Env(), ErrorKind::kOutOfRange, "allocFlags names no watermark level (3)");
    return false;
  }
  *flags = static_cast<uint32_t>(f);
  return true;
}

bool readPfn(const Attachment* a, const Napi::Value& v, uint32_t* pfn) {
  uint64_t p;
  if (!readIndex(v, "pfn", a->pool->zone().nrPages() - 1.0, &p)) return false;
  *pfn = static_cast<uint32_t>(p);
  return true;
}

// The bulk calls copy refs into their own stack frame this many at a time (12 KiB).
constexpr uint32_t kRefChunk = Pool::kMaxFreeBatch;

// Walks n (pfn, order, gen) triples of `raw` for a bulk call (`what`). `raw`
// may be over a SharedArrayBuffer that another thread writes during the
// call, so it is read once: copied a chunk at a time (one memcpy) into this
// frame, and `step(refs, chunk, &handled)` validates and acts on the copy.
// What was checked is what is acted on. A chunk is at most kRefChunk, the
// pool's one-pass batch, taken under one hold of the zone lock. The first
// error stops the walk and is thrown with `countName` saying how many of the
// leading entries were handled before it; otherwise returns n.
template <typename Step>
Napi::Value walkRefs(const Napi::CallbackInfo& info, const TypedArrayData<int32_t>& raw, uint64_t n, const char* what,
                     const char* countName, Step step) {
  static_assert(sizeof(BlockRef) == 3 * sizeof(int32_t), "BlockRef is an int32 triple");
  BlockRef refs[kRefChunk];
  uint32_t done = 0;
  Status s = Status::kOk;
  while (done < n && s == Status::kOk) {
    const uint32_t chunk = static_cast<uint32_t>(std::min<uint64_t>(n - done, kRefChunk));
    std::memcpy(refs, raw.data + 3 * uint64_t{done}, chunk * sizeof(BlockRef));
    uint32_t handled = 0;
    s = step(refs, chunk, &handled);
    done += handled;
  }
  if (s != Status::kOk) {
    Napi::Error err = makeError(info.Env(), errorKindOf(s), std::string(what) + " entry " + std::to_string(done) + ": " + statusMessage(s));
    if (err.IsEmpty()) return {};
    err.Set(countName, Napi::Number::New(info.Env(), done));
    err.ThrowAsJavaScriptException();
    return {};
  }
  return Napi::Number::New(info.Env(), done);
}

bool readGen(const Napi::Value& v, uint32_t* gen) {
  uint64_t g;
  if (!readIndex(v, "gen", kGenMask, &g)) return false;
  *gen = static_cast<uint32_t>(g);
  return true;
}

// alloc(slot, order, allocFlags, task) -> pfn * 2^20 + gen, or a negative Status
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 4)) return {};
  Attachment* a = readSlot(info, info[0]);
  unsigned order;
  uint32_t flags, task;
  if (!a || !readOrder(a, info[1], &order) || !readAllocFlags(info[2], &flags) || !readTask(a, info[3], &task)) {
    return {};
  }
  uint32_t gen = 0;
  const int64_t pfn = a->pool->alloc(order, flags, task, &gen);
  if (pfn == static_cast<int64_t>(Status::kNoTask)) {
    throwStatus(info.Env(), Status::kNoTask, "alloc");
    return {};
  }
  return Napi::Number::New(info.Env(), pfn < 0 ? static_cast<double>(pfn) : static_cast<double>(pfn) * kGenScale + gen);
}

// free(slot, pfn, order, gen)
void Free(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 4)) return;
  Attachment* a = readSlot(info, info[0]);
  uint32_t pfn, gen;
  unsigned order;
  if (!a || !readPfn(a, info[1], &pfn) || !readOrder(a, info[2], &order) || !readGen(info[3], &gen)) return;
  const Status s = a->pool->free(pfn, order, gen);
  if (s != Status::kOk) throwStatus(info.Env(), s, "free");
}

// allocBulk(slot, n, order, allocFlags, task, out: Int32Array(2n)) -> n, or a negative Status.
// Six arguments: all in CallbackInfo's stack slots, none on the heap.
// `out` may be over a SharedArrayBuffer that another thread writes during
// the call: the core only writes it (zone.h), never reads a pfn back from
// it, so a scribbler garbles what the caller reads, not what native code
// indexes metadata with. On failure nothing is written to it.
Napi::Value AllocBulk(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 6)) return {};
  Attachment* a = readSlot(info, info[0]);
  uint64_t n;
  unsigned order;
  uint32_t flags, task;
  TypedArrayData<int32_t> out;
  if (!a || !readIndex(info[1], "n", a->pool->zone().nrPages(), &n) || !readOrder(a, info[2], &order) ||
      !readAllocFlags(info[3], &flags) || !readTask(a, info[4], &task) || !readTypedArray(info[5], "out", 2 * n, &out)) {
    return {};
  }
  const int64_t r = a->pool->allocBulk(static_cast<uint32_t>(n), order, flags, task, out.data);
  if (r == static_cast<int64_t>(Status::kNoTask)) {
    throwStatus(info.Env(), Status::kNoTask, "allocBulk");
    return {};
  }
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

// freeBulk(slot, refs: Int32Array of (pfn, order, gen) triples, n) -> n.
// On an invalid entry it throws; the error's `freed` says how many of the
// leading entries were freed before it. `refs` is read once (walkRefs).
Napi::Value FreeBulk(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 3)) return {};
  Attachment* a = readSlot(info, info[0]);
  uint64_t n;
  TypedArrayData<int32_t> raw;
  if (!a || !readIndex(info[2], "n", a->pool->zone().nrPages(), &n) || !readTypedArray(info[1], "refs", 3 * n, &raw)) {
    return {};
  }
  return walkRefs(info, raw, n, "freeBulk", "freed",
                  [a](const BlockRef* refs, uint32_t chunk, uint32_t* freed) { return a->pool->freeBulk(refs, chunk, freed); });
}

// setOwner(slot, pfn, order, gen, task, expectOwner): hand an allocated block
// to a task; expectOwner 0 = whoever owns it now
void SetOwner(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 6)) return;
  Attachment* a = readSlot(info, info[0]);
  uint32_t pfn, gen, task;
  unsigned order;
  uint64_t expect;
  if (!a || !readPfn(a, info[1], &pfn) || !readOrder(a, info[2], &order) || !readGen(info[3], &gen) ||
      !readTask(a, info[4], &task) || !readIndex(info[5], "expectOwner", kFieldMask, &expect)) {
    return;
  }
  const Status s = a->pool->setOwner(pfn, order, gen, task, static_cast<uint32_t>(expect));
  if (s != Status::kOk) throwStatus(info.Env(), s, "adopt");
}

// setOwnerBulk(slot, refs: Int32Array of (pfn, order, gen) triples, n, task,
// expectOwner) -> n: setOwner for each entry, in order. On an invalid entry it
// throws; the error's `moved` says how many of the leading entries moved.
// `refs` is read once (walkRefs).
Napi::Value SetOwnerBulk(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 5)) return {};
  Attachment* a = readSlot(info, info[0]);
  uint64_t n, expect;
  uint32_t task;
  TypedArrayData<int32_t> raw;
  if (!a || !readIndex(info[2], "n", a->pool->zone().nrPages(), &n) || !readTypedArray(info[1], "refs", 3 * n, &raw) ||
      !readTask(a, info[3], &task) || !readIndex(info[4], "expectOwner", kFieldMask, &expect)) {
    return {};
  }
  const uint32_t expectOwner = static_cast<uint32_t>(expect);
  return walkRefs(info, raw, n, "setOwnerBulk", "moved", [a, task, expectOwner](const BlockRef* refs, uint32_t chunk, uint32_t* moved) {
    return a->pool->setOwnerBulk(refs, chunk, task, expectOwner, moved);
  });
}

// meta(slot, pfn) -> [state, order, owner, gen]; state 0 tail, 1 free, 2 allocated
Napi::Value Meta(const Napi::CallbackInfo& info) {
  if (!haveArgs(info, 2)) return {};
  Attachment* a = readSlot(info, info[0]);
  uint32_t pfn;
  if (!a || !readPfn(a, info[1], &pfn)) return {};
  // A racy read by design (no lock): a probe for tests and diagnostics.
  const PageMeta m = a->pool->zone().meta(pfn);
  const bool alloc = m.state() == PageState::kAllocated;
  Napi::Array arr = Napi::Array::New(info.Env(), 4);
  arr.Set(0u, static_cast<double>(m.state()));
  arr.Set(1u, static_cast<double>(m.order()));
  arr.Set(2u, alloc ? static_cast<double>(m.owner()) : 0.0);
  arr.Set(3u, alloc ? static_cast<double>(m.gen()) : 0.0);
  return arr;
}

}  // namespace

void RegisterPageApi(Napi::Env env, Napi::Object exports, EnvData* data) {
  exports.DefineProperties({
      method<Alloc>(env, "alloc", data),
      method<Free>(env, "free", data),
      method<AllocBulk>(env, "allocBulk", data),
      method<FreeBulk>(env, "freeBulk", data),
      method<SetOwner>(env, "setOwner", data),
      method<SetOwnerBulk>(env, "setOwnerBulk", data),
      method<Meta>(env, "meta", data),
  });
}

}  // namespace nofail
