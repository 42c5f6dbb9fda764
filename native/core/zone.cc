#include "zone.h"

namespace nofail {

Zone::Zone(PageMeta* meta, uint32_t nrPages, unsigned maxOrder) : buddy_(meta, nrPages, maxOrder) {
  for (auto& w : wmark_) w.store(0, std::memory_order_relaxed);
}

void Zone::setWatermarks(int64_t min, int64_t low, int64_t high) {
  wmark_[kAllocWmarkMin].store(min, std::memory_order_relaxed);
  wmark_[kAllocWmarkLow].store(low, std::memory_order_relaxed);
  wmark_[kAllocWmarkHigh].store(high, std::memory_order_relaxed);
}

// Depth below the mark, as in the kernel since 6.3: MIN_RESERVE (__GFP_HIGH)
// may take half of it, a non-blocking MIN_RESERVE caller (GFP_ATOMIC) a
// further quarter of the rest, an OOM victim half of what is left. The
// reservation is added after scaling: reserve rights are a different axis
// from urgency, and an ATOMIC caller must not eat a reservation either.
// NO_WATERMARKS (MEMALLOC) has no mark, but a reservation is a promise,
// kept even from it (nofail's rule; the kernel has no reservations).
int64_t Zone::effectiveMark(unsigned level, uint32_t allocFlags) const {
  const int64_t keep = (allocFlags & kAllocReserve) ? 0 : reserved();
  if (allocFlags & kAllocNoWatermarks) return keep;
  int64_t min = wmark_[level & kAllocWmarkMask].load(std::memory_order_relaxed);
  if (allocFlags & kAllocMinReserve) {
    min -= min / 2;
    if (allocFlags & kAllocNonBlock) min -= min / 4;
  }
  if (allocFlags & kAllocOom) min -= min / 2;
  return min + keep;
}

bool Zone::watermarkOk(unsigned order, unsigned level, uint32_t allocFlags) const {
  return watermarkOkBulk(order, 1, level, allocFlags);
}

bool Zone::watermarkOkBulk(unsigned order, uint32_t nr, unsigned level, uint32_t allocFlags) const {
  const int64_t need = static_cast<int64_t>(uint64_t{nr} << order);
  if (buddy_.freePages() - need < effectiveMark(level, allocFlags)) return false;
  // One block: is one there (__zone_watermark_ok's free-list scan)? Several:
  // allocBulkLocked decides all or none, and counts a refusal as fragmented.
  return nr > 1 || buddy_.hasBlock(order);
}

int64_t Zone::allocLocked(unsigned order, uint32_t allocFlags, uint32_t owner, uint32_t* gen) {
  if (!watermarkOk(order, allocFlags & kAllocWmarkMask, allocFlags)) {
    const bool frag = buddy_.freePages() > 0 && !buddy_.hasBlock(order) &&
                      buddy_.freePages() - (int64_t{1} << order) >=
                          effectiveMark(allocFlags & kAllocWmarkMask, allocFlags);
    bump(frag ? counters_.failFragmented : counters_.failWatermark, 1);
    return static_cast<int64_t>(frag ? Status::kNoMemFragmented : Status::kNoMemWatermark);
  }
  const uint32_t pfn = buddy_.takeLocked(order);
  if (pfn == PageMeta::kNone) {  // unreachable after a passed check; kept as a guard
    bump(counters_.failFragmented, 1);
    return static_cast<int64_t>(Status::kNoMemFragmented);
  }
  const uint32_t g = nextGen_;
  nextGen_ = (nextGen_ + 1) & kGenMask;
  buddy_.metaMut(pfn) = PageMeta::make(PageState::kAllocated, order, owner, g);
  bump(counters_.allocs, 1);
  bump(counters_.pgalloc, uint64_t{1} << order);
  if (gen) *gen = g;
  return pfn;
}

int64_t Zone::allocBulkLocked(unsigned order, uint32_t n, uint32_t owner, int32_t* out) {
  // All or none, decided before anything changes.
  if (!buddy_.hasBlocks(order, n)) {
    bump(counters_.failFragmented, 1);
    return static_cast<int64_t>(Status::kNoMemFragmented);
  }
  buddy_.takeBulkLocked(order, n, owner, nextGen_, out);
  nextGen_ = (nextGen_ + n) & kGenMask;
  bump(counters_.allocs, n);
  bump(counters_.pgalloc, uint64_t{n} << order);
  return n;
}

Status Zone::checkAllocatedLocked(uint32_t pfn, unsigned order, uint32_t gen) const {
  if (pfn >= buddy_.nrPages() || order > buddy_.maxOrder()) return Status::kOutOfRange;
  const PageMeta m = buddy_.meta(pfn);
  switch (m.state()) {
    case PageState::kFree:
      return Status::kDoubleFree;
    case PageState::kTail:
      return Status::kBadPage;
    case PageState::kAllocated:
      break;
  }
  if (m.order() != order) return Status::kBadPage;
  if (gen != kAnyGen && m.gen() != gen) return Status::kBadPage;
  return Status::kOk;
}

Status Zone::freeLocked(uint32_t pfn, unsigned order, uint32_t gen, uint32_t* owner,
                        uint32_t* mergedPfn, unsigned* mergedOrder) {
  const Status s = checkAllocatedLocked(pfn, order, gen);
  if (s != Status::kOk) return s;
  if (owner) *owner = buddy_.meta(pfn).owner();
  buddy_.giveLocked(pfn, order, mergedPfn, mergedOrder);
  bump(counters_.frees, 1);
  bump(counters_.pgfree, uint64_t{1} << order);
  return Status::kOk;
}

void Zone::freeRunLocked(uint32_t start, unsigned k, uint32_t* mergedPfn, unsigned* mergedOrder) {
  const uint32_t count = 1u << k;
  // The head rule: inside the run only `start` stays a head.
  for (uint32_t t = 1; t < count; ++t) buddy_.metaMut(start + t) = PageMeta::tail();
  buddy_.metaMut(start) = PageMeta::make(PageState::kAllocated, k, 0, 0);
  buddy_.giveLocked(start, k, mergedPfn, mergedOrder);
  bump(counters_.frees, count);
  bump(counters_.pgfree, count);
}

Status Zone::setOwnerLocked(uint32_t pfn, unsigned order, uint32_t gen, uint32_t newOwner,
                            uint32_t* oldOwner) {
  const Status s = checkAllocatedLocked(pfn, order, gen);
  if (s != Status::kOk) return s;
  const PageMeta m = buddy_.meta(pfn);
  if (oldOwner) *oldOwner = m.owner();
  buddy_.metaMut(pfn) = PageMeta::make(PageState::kAllocated, order, newOwner, m.gen());
  return Status::kOk;
}

}  // namespace nofail
