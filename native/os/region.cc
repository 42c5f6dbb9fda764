#include "region.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace nofail {

namespace {
std::string sysError(const char* call) {
  return std::string(call) + " failed: " + std::strerror(errno);
}
}  // namespace

bool Region::map(const RegionOptions& options, std::string* error) {
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  if (options.populate) flags |= MAP_POPULATE;
  void* p = ::mmap(nullptr, options.bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) {
    *error = sysError("mmap");
    return false;
  }
  base_ = static_cast<uint8_t*>(p);
  bytes_ = options.bytes;
  if (options.hugepages && ::madvise(p, options.bytes, MADV_HUGEPAGE) != 0) {
    *error = sysError("madvise(MADV_HUGEPAGE)");
    return false;  // the destructor unmaps
  }
  if (options.mlock) {
    if (::mlock(p, options.bytes) != 0) {
      *error = sysError("mlock") + " (RLIMIT_MEMLOCK, see `ulimit -l`)";
      return false;
    }
    locked_ = true;
  }
  return true;
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
