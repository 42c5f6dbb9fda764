// The ownership ledger: which task owns how many pages. Every allocated
// head records its owner id in its PageMeta; the ledger keeps the per-task
// totals that OOM badness and stats() read, and hands out task ids.
//
// Locking: every method needs the zone lock (Pool::zoneLock_), except
// pages(), which reads an atomic.
// Identities: sum over tasks of pages(t) == Zone::allocatedPages(), and
// sum over tasks of reserved(t) == Zone::reserved().
// Ids: 0 is never a task; ids of released tasks are reused only after their
// pages are all returned, so no page can name a reused owner.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "../core/page_meta.h"

namespace nofail {

class Ledger {
 public:
  static constexpr uint32_t kMaxTasks = 16384;
  static constexpr uint32_t kPreferFresh = 4096;  // src/binding/control.ts MAX_TABLE_TASKS

  Ledger()
      : pages_(new std::atomic<int64_t>[kMaxTasks]()),
        reserved_(new std::atomic<int64_t>[kMaxTasks]()),
        live_(kMaxTasks, false) {}

  // Returns a task id, or 0 when every slot is taken. Fresh ids first (up
  // to the task table's 4096), then the id retired longest ago: an id that
  // a stale reference (a dead lock holder, an old OOM-lock word) may still
  // name is reused as late as possible.
  uint32_t createLocked() {
    uint32_t id;
    if (used_ + 1 < kPreferFresh || (freeIds_.empty() && used_ + 1 < kMaxTasks)) {
      id = ++used_;  // ids start at 1
    } else if (!freeIds_.empty()) {
      id = freeIds_.front();
      freeIds_.pop_front();
    } else {
      return 0;
    }
    live_[id] = true;
    pages_[id].store(0, std::memory_order_relaxed);
    reserved_[id].store(0, std::memory_order_relaxed);
    return id;
  }

  bool liveLocked(uint32_t id) const { return id != 0 && id <= used_ && live_[id]; }

  // The caller must have returned every page of the task first.
  void releaseLocked(uint32_t id) {
    live_[id] = false;
    freeIds_.push_back(id);
  }

  void chargeLocked(uint32_t id, int64_t pages) {
    pages_[id].store(pages_[id].load(std::memory_order_relaxed) + pages, std::memory_order_relaxed);
  }

  // Pages of watermark reservations the task holds (returned when it retires).
  void reserveLocked(uint32_t id, int64_t pages) {
    reserved_[id].store(reserved_[id].load(std::memory_order_relaxed) + pages, std::memory_order_relaxed);
  }
  int64_t reservedLocked(uint32_t id) const { return reserved_[id].load(std::memory_order_relaxed); }

  // Lock-free: the array never moves.
  int64_t pages(uint32_t id) const {
    return id < kMaxTasks ? pages_[id].load(std::memory_order_relaxed) : 0;
  }

  int64_t totalLocked() const {
    int64_t sum = 0;
    for (uint32_t id = 1; id <= used_; ++id) sum += pages_[id].load(std::memory_order_relaxed);
    return sum;
  }

  int64_t totalReservedLocked() const {
    int64_t sum = 0;
    for (uint32_t id = 1; id <= used_; ++id) sum += reserved_[id].load(std::memory_order_relaxed);
    return sum;
  }

  uint32_t liveCountLocked() const { return used_ - static_cast<uint32_t>(freeIds_.size()); }
  // The highest id ever handed out: every live id is at most this.
  uint32_t highestLocked() const { return used_; }

 private:
  std::unique_ptr<std::atomic<int64_t>[]> pages_;     // atomically updated under the zone lock
  std::unique_ptr<std::atomic<int64_t>[]> reserved_;  // atomically updated under the zone lock
  std::vector<bool> live_;
  std::deque<uint32_t> freeIds_;  // FIFO: retired longest ago first
  uint32_t used_ = 0;  // highest id handed out
};

}  // namespace nofail
