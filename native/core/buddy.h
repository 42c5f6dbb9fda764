// The buddy allocator: free lists per order 0..maxOrder over an array of
// PageMeta, with split on allocation and coalesce on free.
//
// Locking: Buddy has no lock of its own. Every *Locked method must be called
// with the zone lock held (native/sync/pool.h documents it); the counters
// are atomics written only under that lock and may be read without it, in
// which case a reader sees a recent but possibly stale value.
//
// Accounting identities (checked by checkLocked(), on every operation in a
// debug build):
//   freePages == sum over o of nrFree[o] << o
//   freePages + allocatedPages == nrPages
//   every free-list entry of list o is a Free head of order o, and
//   walking heads from pfn 0 by 1 << order visits exactly nrPages pages.
#pragma once

#include <atomic>
#include <cstdint>

#include "page_meta.h"

namespace nofail {

class Buddy {
 public:
  Buddy(PageMeta* meta, uint32_t nrPages, unsigned maxOrder);
  Buddy(const Buddy&) = delete;
  Buddy& operator=(const Buddy&) = delete;

  // Seeds the free lists with the largest aligned blocks that fit.
  void initLocked();

  // Takes a free block of exactly `order`, splitting a larger one if need
  // be. Returns its pfn, or PageMeta::kNone if no block of order >= `order`
  // is free. The head is left in state Free; the caller marks it.
  uint32_t takeLocked(unsigned order);

  // Could takeBulkLocked() find `n` blocks of `order`? Every free block of
  // order o >= `order` holds 2^(o - order) of them. Exact under the lock.
  bool hasBlocks(unsigned order, uint32_t n) const;

  // Takes `n` blocks of `order` at once, carving them out of as few larger
  // blocks as possible (rmqueue_bulk, but splitting once per batch rather
  // than once per block). The caller has checked hasBlocks(order, n), so it
  // never comes up short. Each head is marked Allocated to `owner` with
  // generation firstGen + k (mod 2^kGenBits) for the k-th block, and its
  // (pfn, gen) pair written to out[2k], out[2k + 1]. `out` is only written,
  // never read: it may be memory that another thread writes meanwhile.
  void takeBulkLocked(unsigned order, uint32_t n, uint32_t owner, uint32_t firstGen, int32_t* out);

  // Returns the block at `pfn` (whose head the caller has validated) and
  // merges it with free buddies. Reports the block it ended up in.
  void giveLocked(uint32_t pfn, unsigned order, uint32_t* mergedPfn, unsigned* mergedOrder);

  // Removes a specific free block from its list (used by token reservations
  // and tests); returns false if `pfn` is not a free head of `order`.
  bool takeExactLocked(uint32_t pfn, unsigned order);

  // Is there a free block of at least `order`? Lock-free read.
  bool hasBlock(unsigned order) const;

  uint64_t nrFree(unsigned order) const { return nrFree_[order].load(std::memory_order_relaxed); }
  int64_t freePages() const { return freePages_.load(std::memory_order_relaxed); }
  uint32_t nrPages() const { return nrPages_; }
  unsigned maxOrder() const { return maxOrder_; }
  const PageMeta& meta(uint32_t pfn) const { return meta_[pfn]; }
  PageMeta& metaMut(uint32_t pfn) { return meta_[pfn]; }

  // Full structural check (O(nrPages)). Returns nullptr when every identity
  // holds, otherwise a static string naming the first violated one.
  const char* checkLocked(int64_t allocatedPages) const;

 private:
  void pushLocked(uint32_t pfn, unsigned order);
  // Frees [pfn, end) as the largest aligned blocks it holds (no merging:
  // the caller knows their buddies are not free).
  void pushRangeLocked(uint32_t pfn, uint32_t end);
  void unlinkLocked(uint32_t pfn, unsigned order);
  void setNrFree(unsigned order, int64_t delta);

  PageMeta* const meta_;
  const uint32_t nrPages_;
  const unsigned maxOrder_;
  uint32_t head_[kMaxOrderLimit + 1];                    // pfn of list head, or kNone
  std::atomic<uint64_t> nrFree_[kMaxOrderLimit + 1];     // atomically updated under lock
  std::atomic<int64_t> freePages_{0};                    // atomically updated under lock
};

}  // namespace nofail
