// A per-thread page cache for C++ callers of a Pool: the kernel's per-CPU
// lists (mm/page_alloc.c rmqueue_pcplist / free_unref_page) in their plain
// form — order 0 only, fixed batch and high. src/mm/pcp.ts, what JavaScript
// threads use, adds the lists of orders 1–3 and the adaptive sizing.
//
// Order-0 pages come from a private stash refilled `batch` at a time by one
// Pool::allocBulk (one zone-lock hold, watermark checked for the batch at
// LOW), and frees beyond `high` drain `batch` of the coldest pages with one
// Pool::freeBulk. Cached pages stay allocated to the owning task, so they
// count as allocated for watermarks, and a thread's exit (reclaimTask)
// takes them back with the rest.
//
// Not thread-safe: one PcpCache per thread. No lock is taken between
// refills and drains, which is the point.
#pragma once

#include <cstdint>
#include <vector>

#include "pool.h"

namespace nofail {

class PcpCache {
 public:
  static constexpr uint32_t kBatch = 63;
  static constexpr uint32_t kHigh = 4 * kBatch;

  PcpCache(Pool& pool, uint32_t task, uint32_t batch = kBatch, uint32_t high = kHigh)
      : pool_(pool), task_(task), batch_(batch), high_(high), pairs_(2 * (high + batch + 1)) {}
  ~PcpCache() { drain(count_); }
  PcpCache(const PcpCache&) = delete;
  PcpCache& operator=(const PcpCache&) = delete;

  // An order-0 page (its pfn), or a negative Status when a refill is refused.
  int64_t alloc(uint32_t* gen) {
    if (count_ == 0 && !refill()) return static_cast<int64_t>(Status::kNoMemWatermark);
    --count_;
    *gen = static_cast<uint32_t>(pairs_[2 * count_ + 1]);
    return pairs_[2 * count_];
  }

  // Takes back a page this task allocated (not validated here: the drain's
  // freeBulk validates every entry).
  void free(uint32_t pfn, uint32_t gen) {
    pairs_[2 * count_] = static_cast<int32_t>(pfn);
    pairs_[2 * count_ + 1] = static_cast<int32_t>(gen);
    if (++count_ > high_) drain(batch_);
  }

  uint32_t count() const { return count_; }

  // Returns the `n` coldest pages (the bottom of the stack) to the zone.
  void drain(uint32_t n) {
    if (n > count_) n = count_;
    if (n == 0) return;
    std::vector<BlockRef> refs(n);
    for (uint32_t i = 0; i < n; ++i) {
      refs[i] = {static_cast<uint32_t>(pairs_[2 * i]), 0, static_cast<uint32_t>(pairs_[2 * i + 1])};
    }
    uint32_t done = 0;
    pool_.freeBulk(refs.data(), n, &done);
    for (uint32_t i = n; i < count_; ++i) {
      pairs_[2 * (i - n)] = pairs_[2 * i];
      pairs_[2 * (i - n) + 1] = pairs_[2 * i + 1];
    }
    count_ -= n;
  }

 private:
  bool refill() {
    const int64_t got = pool_.allocBulk(batch_, 0, kAllocWmarkLow, task_, pairs_.data());
    if (got <= 0) return false;
    count_ = static_cast<uint32_t>(got);
    return true;
  }

  Pool& pool_;
  const uint32_t task_;
  const uint32_t batch_;
  const uint32_t high_;
  std::vector<int32_t> pairs_;  // (pfn, gen) pairs; the top is the most recently freed
  uint32_t count_ = 0;
};

}  // namespace nofail
