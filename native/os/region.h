// The mapped region behind a pool: the only system calls in nofail.
//
// Preconditions stated once here so callers need not repeat them:
// - map() is called once, on a Region that owns nothing;
// - release() takes a page-aligned range inside the region that no caller
//   is using (the zone lock guarantees it: the range is a free block);
// - the destructor unmaps; nothing may touch the memory afterwards.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nofail {

struct RegionOptions {
  uint64_t bytes = 0;      // a multiple of the page size
  bool populate = false;   // MAP_POPULATE: fault every page in now
  bool mlock = false;      // mlock(): keep it resident (RLIMIT_MEMLOCK applies)
  bool hugepages = false;  // madvise(MADV_HUGEPAGE): ask for transparent huge pages
};

class Region {
 public:
  Region() = default;
  ~Region();
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  // Maps the region. Returns 0, or the errno of the call that failed, and
  // then names it in *failedCall ("mmap", "madvise" or "mlock"); the caller
  // decides what the errno means (no string to parse).
  int map(const RegionOptions& options, const char** failedCall);

  // MADV_DONTNEED: give the physical pages of a free range back to the
  // kernel; they read as zero when next touched.
  void release(uint64_t offset, uint64_t bytes);

  uint8_t* base() const { return base_; }
  uint64_t bytes() const { return bytes_; }
  bool locked() const { return locked_; }

 private:
  uint8_t* base_ = nullptr;
  uint64_t bytes_ = 0;
  bool locked_ = false;
};

}  // namespace nofail
