// A pool: one mapped region, its zone, the zone lock and the ownership
// ledger. This is the thread-safe face of the core that the binding (and
// the C++ stress tests) call; every method takes the zone lock itself.
//
// Locking: zoneLock_ (rank 20) protects the buddy lists, the zone counters'
// writes, the generation counter and the ledger. It is never held while
// calling out of the pool, and only release() of large free blocks makes a
// system call under it (madvise, opt-in via releaseOrder).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "../core/zone.h"
#include "../os/region.h"
#include "control.h"
#include "ledger.h"
#include "lock.h"

namespace nofail {

// What PoolConfig::fillOnReclaim may be. X(name exported to JavaScript in
// layout.constants.fill, constant, value)
#define NOFAIL_FILLS(X)                     \
  /* nothing written */                     \
  X(NONE, kFillNone, -1)                    \
  /* zeroOnFree */                          \
  X(ZERO, kFillZero, 0)                     \
  /* poison: the kernel's PAGE_POISON */    \
  X(POISON, kFillPoison, 0x6b)

#define NOFAIL_FILL_CONSTANT(name, k, value) constexpr int k = value;
NOFAIL_FILLS(NOFAIL_FILL_CONSTANT)
#undef NOFAIL_FILL_CONSTANT

struct PoolConfig {
  uint64_t bytes = 0;
  unsigned maxOrder = 10;
  int64_t wmarkMin = 0, wmarkLow = 0, wmarkHigh = 0;
  bool populate = false, mlock = false, hugepages = false;
  int releaseOrder = -1;  // MADV_DONTNEED free blocks of at least this order; -1 = never
  // Byte written over every block the pool takes back from a task that did
  // not free it itself (thread exit, reaper): one of NOFAIL_FILLS. Blocks
  // freed from JavaScript are filled there.
  int fillOnReclaim = kFillNone;
  int32_t* control = nullptr;
};

// Why Pool::create() made no pool: a configuration it refuses (`rule` says
// which), or a call that failed (`call` and its errno).
struct CreateStatus {
  enum class Kind { kOk, kConfig, kSystem };
  Kind kind = Kind::kOk;
  const char* rule = "";  // kConfig: the rule the configuration breaks
  const char* call = "";  // kSystem: "mmap", "madvise", "mlock", or "calloc" (page metadata)
  int err = 0;            // kSystem: its errno
  std::string message() const;  // for the C++ tests and benchmarks
};

// One consistent reading of a pool (stats()), taken under the zone lock so
// that every identity holds in it exactly:
//   freePages + cachedPages + allocatedPages == totalPages
// where cachedPages are the pages in threads' page caches (allocated in the
// zone, owned by the thread's task, not held by any caller) and
// allocatedPages are the pages callers hold, token reservations included.
// A thread publishes its cache size into its task-table word after a refill
// and before a drain (src/mm/pcp.ts), so what it published never exceeds
// what its task owns; the snapshot still clamps each task's figure to the
// pages its task owns, so a stale word can shift pages between "cached" and
// "allocated" but never break the sum.
struct PoolSnapshot {
  int64_t totalPages = 0, freePages = 0, allocatedPages = 0, cachedPages = 0, tokenPages = 0;
  int64_t wmark[3] = {};
  int64_t reserved = 0;
  uint64_t allocs = 0, frees = 0, pgalloc = 0, pgfree = 0, failWatermark = 0, failFragmented = 0;
  int64_t liveTasks = 0, maxOrder = 0;
  // The asking thread's task: pages its callers hold, and its page cache.
  int64_t threadPages = 0, threadCachedPages = 0;
  uint64_t nrFree[kMaxOrderLimit + 1] = {};
};

// One entry of a bulk free: the handle of an allocated block.
struct BlockRef {
  uint32_t pfn;
  uint32_t order;
  uint32_t gen;
};

class Pool {
 public:
  // Validates the configuration and maps the region; null with the reason
  // in *status when it cannot.
  static std::shared_ptr<Pool> create(const PoolConfig& config, CreateStatus* status);
  // The same, with the reason as a message (C++ tests and benchmarks).
  static std::shared_ptr<Pool> create(const PoolConfig& config, std::string* error);
  ~Pool();

  // Allocates one block owned by `task`; returns its pfn or a negative Status.
  int64_t alloc(unsigned order, uint32_t allocFlags, uint32_t task, uint32_t* gen);
  Status free(uint32_t pfn, unsigned order, uint32_t gen);
  // All or none: `n` blocks for `task`, checking the watermark for all of
  // them at once (the kernel's alloc_pages_bulk checks LOW + n). Writes
  // (pfn, gen) pairs to `out`. Returns n or a negative Status.
  // `out` (2n words) is only written, never read (Zone::allocBulkLocked),
  // so it may be a JavaScript array that another thread writes meanwhile.
  int64_t allocBulk(uint32_t n, unsigned order, uint32_t allocFlags, uint32_t task, int32_t* out);
  // Frees in order and stops at the first invalid entry, so that a caller
  // knows exactly which blocks went back: `*done` are free afterwards.
  // Each entry is read once and freed as read; the binding still copies
  // JavaScript's refs into private memory first (page_api.cc).
  Status freeBulk(const BlockRef* refs, uint32_t n, uint32_t* done);
  // The most order-0 refs one freeBulk frees in a single pass (validate,
  // sort, free aligned runs); a longer call frees entry by entry.
  static constexpr uint32_t kMaxFreeBatch = 1024;
  // Hands an allocated block to another task (a page sent to another
  // thread). With expectOwner != 0 the block must belong to that task now.
  Status setOwner(uint32_t pfn, unsigned order, uint32_t gen, uint32_t task, uint32_t expectOwner);
  // setOwner() for n blocks under one hold of the zone lock, in order; stops
  // at the first invalid entry, so `*done` blocks moved (as freeBulk).
  Status setOwnerBulk(const BlockRef* refs, uint32_t n, uint32_t task, uint32_t expectOwner, uint32_t* done);

  // The task that owns pages between transfer() in one thread and adopt()
  // in another, so that the sender's exit does not take them back. It is
  // the first task of every pool.
  static constexpr uint32_t kTransitTask = 1;

  uint32_t createTask();
  bool taskLive(uint32_t task);
  // Returns every page `task` still owns to the pool (the reaper path) and
  // retires the task id. Reports how many pages came back.
  int64_t reclaimTask(uint32_t task, bool retire);
  int64_t taskPages(uint32_t task) const { return ledger_.pages(task); }

  void setWatermarks(int64_t min, int64_t low, int64_t high) {
    zone_.setWatermarks(min, low, high);
    control_.publishWatermarks(min, low, high);
  }
  // The reservation counter, charged to `task` so that a task's
  // reservations end with it (reclaimTask with retire).
  int64_t addReserved(int64_t delta, uint32_t task);
  // A watermark reservation (Chinner, 2015), atomically: raise every
  // watermark by n pages if free pages minus n stay above `level`'s mark
  // plus every reservation already taken, so a reservation is never
  // promised pages that are not there. Which level is the caller's policy.
  // Returns whether it was taken.
  bool tryReserve(int64_t n, unsigned level, uint32_t task);

  // Fills `s` under the zone lock; for each task with pages in its page
  // cache, calls onCached(task, pages) (at most ctl::kTaskTableTasks times).
  template <typename F>
  void snapshot(uint32_t selfTask, PoolSnapshot* s, F&& onCached);

  // The full identity check; nullptr when everything adds up.
  const char* check();

  const Zone& zone() const { return zone_; }
  const Region& region() const { return region_; }
  uint8_t* base() const { return region_.base(); }
  int32_t* control() const { return control_.words(); }
  const ControlBlock& controlBlock() const { return control_; }
  uint32_t liveTasks();

  uint32_t id = 0;     // registry id
  uint32_t nonce = 0;  // random; a handle must present both

 private:
  explicit Pool(const PoolConfig& config, uint32_t nrPages);
  Status freeLocked(uint32_t pfn, unsigned order, uint32_t gen);
  Status setOwnerLocked(uint32_t pfn, unsigned order, uint32_t gen, uint32_t task, uint32_t expectOwner);
  bool freeBatchOrder0Locked(const BlockRef* refs, uint32_t n);
  void debugCheckLocked();

  const PoolConfig config_;
  Region region_;
  std::unique_ptr<PageMeta[]> meta_;
  Zone zone_;
  Ledger ledger_;
  ControlBlock control_;
  RankedLock zoneLock_{LockRank::kZone};
  uint64_t opsSinceCheck_ = 0;  // under lock, debug builds only
};

template <typename F>
void Pool::snapshot(uint32_t selfTask, PoolSnapshot* s, F&& onCached) {
  Guard<RankedLock> g(zoneLock_);
  const ZoneCounters& c = zone_.counters();
  s->totalPages = zone_.nrPages();
  s->freePages = zone_.freePages();
  for (unsigned level = 0; level < 3; ++level) s->wmark[level] = zone_.wmark(level);
  s->reserved = zone_.reserved();
  s->allocs = c.allocs.load(std::memory_order_relaxed);
  s->frees = c.frees.load(std::memory_order_relaxed);
  s->pgalloc = c.pgalloc.load(std::memory_order_relaxed);
  s->pgfree = c.pgfree.load(std::memory_order_relaxed);
  s->failWatermark = c.failWatermark.load(std::memory_order_relaxed);
  s->failFragmented = c.failFragmented.load(std::memory_order_relaxed);
  s->liveTasks = ledger_.liveCountLocked();
  s->maxOrder = zone_.maxOrder();
  for (unsigned o = 0; o <= zone_.maxOrder(); ++o) s->nrFree[o] = zone_.buddy().nrFree(o);
  int64_t cached = 0, tokens = 0;
  const uint32_t last = std::min<uint32_t>(ledger_.highestLocked(), ctl::kTaskTableTasks - 1);
  for (uint32_t t = 1; t <= last; ++t) {
    if (!ledger_.liveLocked(t)) continue;
    const int64_t owned = ledger_.pages(t);
    const int64_t c1 = std::clamp<int64_t>(control_.taskCached(t), 0, owned);
    tokens += std::clamp<int64_t>(control_.taskTokens(t), 0, owned - c1);
    if (c1 > 0) onCached(t, c1);
    if (t == selfTask) s->threadCachedPages = c1;
    cached += c1;
  }
  s->cachedPages = cached;
  s->tokenPages = tokens;
  s->allocatedPages = zone_.allocatedPages() - cached;
  s->threadPages = ledger_.pages(selfTask) - s->threadCachedPages;
}

}  // namespace nofail
