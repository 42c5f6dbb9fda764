// A zone: the buddy allocator plus the kernel's zone accounting — counters,
// the min/low/high watermarks, and the reservation counter that nofail's
// reservations (DESIGN §3) raise every watermark by.
//
// Mechanism only: the zone answers "may these pages be taken at this
// watermark level with these ALLOC_* rights?", takes them, frees them and
// counts. What a GFP mask means — which level, which rights — is decided in
// TypeScript (src/mm/gfp.ts) and passed down as AllocFlags.
//
// Locking: as for Buddy, *Locked methods need the zone lock; counters and
// watermarks are atomics readable at any time.
//
// Accounting identities (Buddy's, plus):
//   allocatedPages == pgalloc - pgfree
//   sum over tasks of task pages == allocatedPages   (native/sync/ledger.h)
#pragma once

#include <atomic>
#include <cstdint>

#include "buddy.h"
#include "status.h"

namespace nofail {

// ALLOC_* rights, with the kernel's values where the kernel has them
// (mm/internal.h). Declared once, here: the binding exports the table
// (layout.alloc) and src/binding/native.ts builds ALLOC from it.
#define NOFAIL_ALLOC_FLAGS(X)                                                               \
  /* the watermark level, in the low two bits (3 names none) */                            \
  X(WMARK_MIN, kAllocWmarkMin, 0x0)                                                         \
  X(WMARK_LOW, kAllocWmarkLow, 0x1)                                                         \
  X(WMARK_HIGH, kAllocWmarkHigh, 0x2)                                                       \
  X(WMARK_MASK, kAllocWmarkMask, 0x3)                                                       \
  /* no watermark; the reservation is still kept (unless RESERVE) */                       \
  X(NO_WATERMARKS, kAllocNoWatermarks, 0x4)                                                 \
  /* an OOM victim: half of the mark below the rest of its rights */                       \
  X(OOM, kAllocOom, 0x8)                                                                    \
  /* cannot block (GFP_ATOMIC): with MIN_RESERVE, a further quarter */                     \
  X(NON_BLOCK, kAllocNonBlock, 0x10)                                                        \
  /* __GFP_HIGH: half of the mark */                                                        \
  X(MIN_RESERVE, kAllocMinReserve, 0x20)                                                    \
  /* nofail's: may use the pages held back by watermark reservations */                    \
  X(RESERVE, kAllocReserve, 0x40)                                                           \
  X(KNOWN_MASK, kAllocKnownMask, 0x7f)

enum AllocFlags : uint32_t {
#define NOFAIL_ALLOC_ENUM(name, k, value) k = value,
  NOFAIL_ALLOC_FLAGS(NOFAIL_ALLOC_ENUM)
#undef NOFAIL_ALLOC_ENUM
};

struct ZoneCounters {
  std::atomic<uint64_t> allocs{0};          // blocks handed out
  std::atomic<uint64_t> frees{0};           // blocks returned
  std::atomic<uint64_t> pgalloc{0};         // pages handed out
  std::atomic<uint64_t> pgfree{0};          // pages returned
  std::atomic<uint64_t> failWatermark{0};   // refused by the watermark check
  std::atomic<uint64_t> failFragmented{0};  // refused for want of a block
};

class Zone {
 public:
  Zone(PageMeta* meta, uint32_t nrPages, unsigned maxOrder);

  void initLocked() { buddy_.initLocked(); }

  // The kernel's __zone_watermark_ok(): after taking `order` pages, would
  // free pages stay at or above effectiveMark()? And is a block there?
  // Lock-free (reads atomics); exact when called under the lock.
  bool watermarkOk(unsigned order, unsigned level, uint32_t allocFlags) const;
  // The same test for `nr` blocks at once (bulk allocation).
  bool watermarkOkBulk(unsigned order, uint32_t nr, unsigned level, uint32_t allocFlags) const;
  // The mark a caller with these rights must leave free pages at or above
  // after taking its `need` pages: the one test is
  //   freePages - need >= effectiveMark(level, allocFlags).
  // That is the kernel's `free - (need - 1) > mark` (the pages beyond the
  // first cannot satisfy the mark, and free must stay strictly above it).
  // kAllocNoWatermarks skips the mark but keeps the reservation, so the
  // mark is then the reservation alone (0 with kAllocReserve).
  // The slow path asks for it (native effectiveMark) rather than repeat it.
  int64_t effectiveMark(unsigned level, uint32_t allocFlags) const;

  // Allocates one block for `owner`; returns its pfn, or a negative Status.
  int64_t allocLocked(unsigned order, uint32_t allocFlags, uint32_t owner, uint32_t* gen);
  // Allocates `n` blocks for `owner` in one pass (the caller checked the
  // watermark for all of them): all or none. Writes (pfn, gen) pairs to
  // `out`; returns n, or a negative Status (then `out` is untouched).
  // `out` is only ever written, never read: it may be memory another
  // thread writes at the same time (a JavaScript SharedArrayBuffer).
  int64_t allocBulkLocked(unsigned order, uint32_t n, uint32_t owner, int32_t* out);

  // Frees the allocated head `pfn` of `order`, if `gen` matches (pass
  // kAnyGen to skip that check). Reports the former owner and where the
  // block ended up after coalescing.
  static constexpr uint32_t kAnyGen = 0xffffffffu;
  Status freeLocked(uint32_t pfn, unsigned order, uint32_t gen, uint32_t* owner,
                    uint32_t* mergedPfn, unsigned* mergedOrder);
  // Frees 2^k order-0 blocks at start..start+2^k-1 as one order-k block:
  // one merge chain instead of 2^k. The caller has validated every page as
  // an allocated order-0 head (and settled the ledger). Counts 2^k frees.
  void freeRunLocked(uint32_t start, unsigned k, uint32_t* mergedPfn, unsigned* mergedOrder);

  // Validates without changing anything (used before a bulk free commits).
  Status checkAllocatedLocked(uint32_t pfn, unsigned order, uint32_t gen) const;
  // Changes the owner of an allocated head (cross-thread hand-over).
  Status setOwnerLocked(uint32_t pfn, unsigned order, uint32_t gen, uint32_t newOwner,
                        uint32_t* oldOwner);

  void setWatermarks(int64_t min, int64_t low, int64_t high);
  int64_t wmark(unsigned level) const { return wmark_[level].load(std::memory_order_relaxed); }

  // The reservation counter: pages every caller without kAllocReserve must
  // leave free on top of its watermark. Lock-free.
  int64_t reserved() const { return reserved_.load(std::memory_order_relaxed); }
  void addReserved(int64_t pages) { reserved_.fetch_add(pages, std::memory_order_relaxed); }

  int64_t freePages() const { return buddy_.freePages(); }
  int64_t allocatedPages() const {
    return static_cast<int64_t>(counters_.pgalloc.load(std::memory_order_relaxed) -
                                counters_.pgfree.load(std::memory_order_relaxed));
  }
  uint32_t nrPages() const { return buddy_.nrPages(); }
  unsigned maxOrder() const { return buddy_.maxOrder(); }
  const Buddy& buddy() const { return buddy_; }
  const ZoneCounters& counters() const { return counters_; }
  const PageMeta& meta(uint32_t pfn) const { return buddy_.meta(pfn); }

  const char* checkLocked() const { return buddy_.checkLocked(allocatedPages()); }

 private:
  static void bump(std::atomic<uint64_t>& c, uint64_t d) {
    c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }

  Buddy buddy_;
  ZoneCounters counters_;
  std::atomic<int64_t> wmark_[3];
  std::atomic<int64_t> reserved_{0};
  uint32_t nextGen_ = 1;  // under lock
};

}  // namespace nofail
