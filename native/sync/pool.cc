#include "pool.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace nofail {

namespace {
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
}  // namespace

Pool::Pool(const PoolConfig& config, uint32_t nrPages)
    // calloc: the kernel hands out zero pages lazily, so metadata that is
    // never written (tails of large free blocks) costs no resident memory.
    : config_(config),
      meta_(static_cast<PageMeta*>(std::calloc(nrPages, sizeof(PageMeta)))),
      zone_(meta_.get(), nrPages, config.maxOrder),
      control_(config.control) {}

Pool::~Pool() {
  // unique_ptr<PageMeta[]> would call delete[]; the memory came from calloc.
  std::free(meta_.release());
}

std::string CreateStatus::message() const {
  switch (kind) {
    case Kind::kOk: return "";
    case Kind::kConfig: return rule;
    case Kind::kSystem: return std::string(call) + " failed: " + std::strerror(err);
  }
  return "";
}

std::shared_ptr<Pool> Pool::create(const PoolConfig& config, CreateStatus* status) {
  const auto refuse = [status](const char* rule) {
    status->kind = CreateStatus::Kind::kConfig;
    status->rule = rule;
    return nullptr;
  };
  const auto failed = [status](const char* call, int err) {
    status->kind = CreateStatus::Kind::kSystem;
    status->call = call;
    status->err = err;
    return nullptr;
  };
  const uint64_t pages = config.bytes >> kPageShift;
  if (config.bytes == 0 || (config.bytes & (kPageSize - 1)) != 0 || pages > kMaxPages) {
    return refuse("size must be a positive multiple of 4096 bytes and at most 2^29 - 1 pages");
  }
  if (config.maxOrder > kMaxOrderLimit) return refuse("maxOrder must be between 0 and 15");
  if (!(0 <= config.wmarkMin && config.wmarkMin <= config.wmarkLow &&
        config.wmarkLow <= config.wmarkHigh && config.wmarkHigh <= static_cast<int64_t>(pages))) {
    return refuse("watermarks must satisfy 0 <= min <= low <= high <= total pages");
  }
  if (config.releaseOrder < -1 || config.releaseOrder > static_cast<int>(kMaxOrderLimit)) {
    return refuse("releaseOrder must be -1 (never) or an order from 0 to 15");
  }
  if (config.fillOnReclaim != kFillNone && config.fillOnReclaim != kFillZero && config.fillOnReclaim != kFillPoison) {
    return refuse("fill must be -1 (none), 0 (zero) or 0x6b (poison)");
  }
  std::shared_ptr<Pool> pool(new Pool(config, static_cast<uint32_t>(pages)));
  if (!pool->meta_) return failed("calloc", ENOMEM);
  RegionOptions ro;
  ro.bytes = config.bytes;
  ro.populate = config.populate;
  ro.mlock = config.mlock;
  ro.hugepages = config.hugepages;
  const char* call = "";
  if (const int err = pool->region_.map(ro, &call)) return failed(call, err);
  // Poisoning is lazy: a page is poisoned when it is freed, never at
  // creation, which would touch the whole pool (MAP_NORESERVE promises it
  // is not). A page never handed out reads as zeros; the check on
  // allocation accepts a block that is all poison or all zeros
  // (src/mm/debug/poison.ts).
  {
    Guard<RankedLock> g(pool->zoneLock_);
    pool->zone_.initLocked();
    pool->ledger_.createLocked();  // kTransitTask
    pool->setWatermarks(config.wmarkMin, config.wmarkLow, config.wmarkHigh);
    pool->control_.publishAlloc(pool->zone_.freePages());
  }
  return pool;
}

std::shared_ptr<Pool> Pool::create(const PoolConfig& config, std::string* error) {
  CreateStatus status;
  std::shared_ptr<Pool> pool = create(config, &status);
  if (!pool) *error = status.message();
  return pool;
}

void Pool::debugCheckLocked() {
#if NOFAIL_DEBUG
  // Cheap identities on every operation, the full walk every 4096.
  int64_t sum = 0;
  for (unsigned o = 0; o <= zone_.maxOrder(); ++o) sum += static_cast<int64_t>(zone_.buddy().nrFree(o)) << o;
  if (sum != zone_.freePages()) std::abort();
  if (zone_.freePages() + zone_.allocatedPages() != zone_.nrPages()) std::abort();
  if (ledger_.totalLocked() != zone_.allocatedPages()) std::abort();
  if ((++opsSinceCheck_ & 4095) == 0 && zone_.checkLocked() != nullptr) std::abort();
#endif
}

int64_t Pool::alloc(unsigned order, uint32_t allocFlags, uint32_t task, uint32_t* gen) {
  Guard<RankedLock> g(zoneLock_);
  if (!ledger_.liveLocked(task)) return static_cast<int64_t>(Status::kNoTask);
  const int64_t pfn = zone_.allocLocked(order, allocFlags, task, gen);
  if (pfn >= 0) {
    ledger_.chargeLocked(task, int64_t{1} << order);
    control_.publishAlloc(zone_.freePages());
  }
  debugCheckLocked();
  return pfn;
}

Status Pool::freeLocked(uint32_t pfn, unsigned order, uint32_t gen) {
  uint32_t owner = 0, mergedPfn = 0;
  unsigned mergedOrder = 0;
  const Status s = zone_.freeLocked(pfn, order, gen, &owner, &mergedPfn, &mergedOrder);
  if (s != Status::kOk) return s;
  ledger_.chargeLocked(owner, -(int64_t{1} << order));
  if (config_.releaseOrder >= 0 && mergedOrder >= static_cast<unsigned>(config_.releaseOrder)) {
    // Under the lock on purpose: once it is dropped the block may be handed
    // out, and MADV_DONTNEED would zero the new owner's data.
    region_.release(uint64_t{mergedPfn} << kPageShift, uint64_t{1} << (mergedOrder + kPageShift));
  }
  return Status::kOk;
}

Status Pool::free(uint32_t pfn, unsigned order, uint32_t gen) {
  Status s;
  {
    Guard<RankedLock> g(zoneLock_);
    s = freeLocked(pfn, order, gen);
    debugCheckLocked();
    if (s == Status::kOk) control_.publishFree(zone_.freePages());
  }
  return s;
}

int64_t Pool::allocBulk(uint32_t n, unsigned order, uint32_t allocFlags, uint32_t task, int32_t* out) {
  if (n == 0) return 0;
  Guard<RankedLock> g(zoneLock_);
  if (!ledger_.liveLocked(task)) return static_cast<int64_t>(Status::kNoTask);
  if (!zone_.watermarkOkBulk(order, n, allocFlags & kAllocWmarkMask, allocFlags)) {
    return static_cast<int64_t>(Status::kNoMemWatermark);
  }
  const int64_t got = zone_.allocBulkLocked(order, n, task, out);
  if (got < 0) {
    debugCheckLocked();
    return got;  // fragmented: all or none
  }
  ledger_.chargeLocked(task, static_cast<int64_t>(uint64_t{n} << order));
  control_.publishAlloc(zone_.freePages());
  debugCheckLocked();
  return n;
}

// The common bulk free — a page cache draining a batch of order-0 pages,
// often neighbours carved from one block — in one pass: validate every
// entry, sort, and free each aligned run of 2^k pages as one order-k block
// (one merge chain per run rather than per page). Anything unusual (a bad
// entry, a duplicate, another order, release on free) returns false before
// changing anything, and the caller frees entry by entry, which reports
// exactly where it stopped.
bool Pool::freeBatchOrder0Locked(const BlockRef* refs, uint32_t n) {
  if (n < 8 || n > kMaxFreeBatch || config_.releaseOrder >= 0) return false;
  uint32_t pfns[kMaxFreeBatch];
  for (uint32_t i = 0; i < n; ++i) {
    const BlockRef r = refs[i];  // read once: what is checked is what is freed
    if (r.order != 0 || r.gen > kGenMask) return false;
    if (zone_.checkAllocatedLocked(r.pfn, 0, r.gen) != Status::kOk) return false;
    pfns[i] = r.pfn;
  }
  std::sort(pfns, pfns + n);
  for (uint32_t i = 1; i < n; ++i) {
    if (pfns[i] == pfns[i - 1]) return false;  // a double free inside the batch
  }
  for (uint32_t i = 0; i < n; ++i) ledger_.chargeLocked(zone_.meta(pfns[i]).owner(), -1);
  for (uint32_t i = 0; i < n;) {
    const uint32_t start = pfns[i];
    unsigned k = 0;
    // Sorted and unique: the run is whole when its last page is where it should be.
    while (k < zone_.maxOrder() && (start & ((2u << k) - 1)) == 0 && i + (2u << k) <= n &&
           pfns[i + (2u << k) - 1] == start + (2u << k) - 1) {
      ++k;
    }
    zone_.freeRunLocked(start, k, nullptr, nullptr);
    i += 1u << k;
  }
  return true;
}

Status Pool::freeBulk(const BlockRef* refs, uint32_t n, uint32_t* done) {
  Status s = Status::kOk;
  uint32_t i = 0;
  {
    Guard<RankedLock> g(zoneLock_);
    if (freeBatchOrder0Locked(refs, n)) i = n;
    for (; i < n; ++i) {
      const BlockRef r = refs[i];  // read once, as above
      // gen is checked here because kAnyGen (all ones) would skip the check.
      if (r.order > zone_.maxOrder() || r.gen > kGenMask) {
        s = Status::kOutOfRange;
        break;
      }
      s = freeLocked(r.pfn, r.order, r.gen);
      if (s != Status::kOk) break;
    }
    debugCheckLocked();
    if (i > 0) control_.publishFree(zone_.freePages());
  }
  *done = i;
  return s;
}

Status Pool::setOwnerLocked(uint32_t pfn, unsigned order, uint32_t gen, uint32_t task, uint32_t expectOwner) {
  Status s = zone_.checkAllocatedLocked(pfn, order, gen);
  // A hand-over names a block someone else should own: if it is free now,
  // the handle is stale, not being freed twice.
  if (s == Status::kDoubleFree) return Status::kBadPage;
  if (s != Status::kOk) return s;
  if (expectOwner != 0 && zone_.meta(pfn).owner() != expectOwner) return Status::kBadPage;
  uint32_t old = 0;
  s = zone_.setOwnerLocked(pfn, order, gen, task, &old);
  if (s == Status::kOk) {
    ledger_.chargeLocked(old, -(int64_t{1} << order));
    ledger_.chargeLocked(task, int64_t{1} << order);
  }
  return s;
}

Status Pool::setOwner(uint32_t pfn, unsigned order, uint32_t gen, uint32_t task, uint32_t expectOwner) {
  Guard<RankedLock> g(zoneLock_);
  if (!ledger_.liveLocked(task)) return Status::kNoTask;
  const Status s = setOwnerLocked(pfn, order, gen, task, expectOwner);
  debugCheckLocked();
  return s;
}

Status Pool::setOwnerBulk(const BlockRef* refs, uint32_t n, uint32_t task, uint32_t expectOwner, uint32_t* done) {
  Guard<RankedLock> g(zoneLock_);
  Status s = Status::kOk;
  uint32_t i = 0;
  if (!ledger_.liveLocked(task)) s = Status::kNoTask;
  for (; s == Status::kOk && i < n; ++i) {
    const BlockRef r = refs[i];  // read once: the caller's memory may change
    if (r.order > zone_.maxOrder() || r.gen > kGenMask) {
      s = Status::kOutOfRange;
      break;
    }
    s = setOwnerLocked(r.pfn, r.order, r.gen, task, expectOwner);
    if (s != Status::kOk) break;
  }
  debugCheckLocked();
  *done = i;
  return s;
}

uint32_t Pool::createTask() {
  Guard<RankedLock> g(zoneLock_);
  return ledger_.createLocked();
}

bool Pool::taskLive(uint32_t task) {
  Guard<RankedLock> g(zoneLock_);
  return ledger_.liveLocked(task);
}

uint32_t Pool::liveTasks() {
  Guard<RankedLock> g(zoneLock_);
  return ledger_.liveCountLocked();
}

// O(nrPages) under the lock: a walk of the heads. It runs when a thread
// exits or a task is reaped, not on a hot path; 1 GiB is 262144 words.
int64_t Pool::reclaimTask(uint32_t task, bool retire) {
  Guard<RankedLock> g(zoneLock_);
  if (!ledger_.liveLocked(task)) return static_cast<int64_t>(Status::kNoTask);
  int64_t returned = 0;
  const uint32_t n = zone_.nrPages();
  uint32_t pfn = 0;
  while (pfn < n && ledger_.pages(task) > 0) {
    const PageMeta m = zone_.meta(pfn);
    const uint32_t size = 1u << m.order();
    if (m.state() == PageState::kAllocated && m.owner() == task) {
      if (config_.fillOnReclaim >= 0) {
        std::memset(region_.base() + (uint64_t{pfn} << kPageShift), config_.fillOnReclaim, uint64_t{size} << kPageShift);
      }
      freeLocked(pfn, m.order(), Zone::kAnyGen);
      returned += size;
    }
    // The next head is at pfn + size. If the free merged with an upper
    // buddy, that head is now a tail (a zero word, order 0) and the walk
    // steps through the merged block's tails one by one: slower, still exact.
    pfn += size;
  }
  // Its page cache went back with the rest.
  if (returned > 0) control_.clearTaskCache(task);
  if (retire) {
    // Its watermark reservations end with it.
    const int64_t held = ledger_.reservedLocked(task);
    if (held != 0) {
      ledger_.reserveLocked(task, -held);
      zone_.addReserved(-held);
      control_.publishReserved(zone_.reserved());
    }
    ledger_.releaseLocked(task);
    control_.clearTask(task);
  }
  debugCheckLocked();
  if (returned > 0) control_.publishFree(zone_.freePages());
  return returned;
}

int64_t Pool::addReserved(int64_t delta, uint32_t task) {
  Guard<RankedLock> g(zoneLock_);
  if (!ledger_.liveLocked(task) || ledger_.reservedLocked(task) + delta < 0) return -1;
  ledger_.reserveLocked(task, delta);
  zone_.addReserved(delta);
  control_.publishReserved(zone_.reserved());
  return zone_.reserved();
}

bool Pool::tryReserve(int64_t n, unsigned level, uint32_t task) {
  Guard<RankedLock> g(zoneLock_);
  if (!ledger_.liveLocked(task)) return false;
  if (zone_.freePages() - n <= zone_.effectiveMark(level, 0)) return false;  // mark + reservations
  ledger_.reserveLocked(task, n);
  zone_.addReserved(n);
  control_.publishReserved(zone_.reserved());
  return true;
}

const char* Pool::check() {
  Guard<RankedLock> g(zoneLock_);
  if (const char* why = zone_.checkLocked()) return why;
  if (ledger_.totalLocked() != zone_.allocatedPages()) return "sum of task pages != allocated pages";
  if (ledger_.totalReservedLocked() != zone_.reserved()) return "sum of task reservations != reserved pages";
  return nullptr;
}

}  // namespace nofail
