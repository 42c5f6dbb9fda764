#include "region.h"

#include <sys/mman.h>

#include <cerrno>

namespace nofail {

int Region::map(const RegionOptions& options, const char** failedCall) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  if (options.populate) flags |= MAP_POPULATE;
  void* p = ::mmap(nullptr, options.bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) {
    *failedCall = "mmap";
    return errno;
  }
  base_ = static_cast<uint8_t*>(p);
  bytes_ = options.bytes;
  // On a failure below the destructor unmaps; errno is read before it runs.
  if (options.hugepages && ::madvise(p, options.bytes, MADV_HUGEPAGE) != 0) {
    *failedCall = "madvise";
    return errno;
  }
  if (options.mlock) {
    if (::mlock(p, options.bytes) != 0) {
      *failedCall = "mlock";
      return errno;
    }
    locked_ = true;
  }
  return 0;
}

void Region::release(uint64_t offset, uint64_t bytes) {
  // Best effort: a failure only means the memory stays resident.
  if (!locked_) ::madvise(base_ + offset, bytes, MADV_DONTNEED);
}

Region::~Region() {
  if (base_ != nullptr) {
    if (locked_) ::munlock(base_, bytes_);
    ::munmap(base_, bytes_);
  }
}

}  // namespace nofail
