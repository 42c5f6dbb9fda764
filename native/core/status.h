// Result codes of the native core. The core never throws and never prints:
// every operation returns one of these, and the binding turns them into
// typed JavaScript errors with stable codes (see src/errors.ts).
#pragma once

namespace nofail {

enum class Status : int {
  kOk = 0,
  kNoMemWatermark = -1,  // free pages would fall below the caller's watermark
  kNoMemFragmented = -2, // enough free pages, but no free block of the order
  kOutOfRange = -3,      // pfn or order outside the pool
  kDoubleFree = -4,      // the block is already free
  kBadPage = -5,         // not an allocated head, wrong order, stale generation
  kNoTask = -6,          // no free task slot / task id not live
};

inline bool isNoMem(Status s) {
  return s == Status::kNoMemWatermark || s == Status::kNoMemFragmented;
}

}  // namespace nofail
