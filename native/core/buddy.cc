#include "buddy.h"

namespace nofail {

Buddy::Buddy(PageMeta* meta, uint32_t nrPages, unsigned maxOrder)
    : meta_(meta), nrPages_(nrPages), maxOrder_(maxOrder) {
  for (unsigned o = 0; o <= kMaxOrderLimit; ++o) {
    head_[o] = PageMeta::kNone;
    nrFree_[o].store(0, std::memory_order_relaxed);
  }
}

void Buddy::setNrFree(unsigned order, int64_t delta) {
  nrFree_[order].store(nrFree_[order].load(std::memory_order_relaxed) + delta,
                       std::memory_order_relaxed);
  freePages_.store(freePages_.load(std::memory_order_relaxed) + (delta << order),
                   std::memory_order_relaxed);
}

void Buddy::initLocked() {
  uint32_t pfn = 0;
  while (pfn < nrPages_) {
    unsigned order = maxOrder_;
    while (order > 0 && ((pfn & ((1u << order) - 1)) != 0 ||
                         uint64_t{pfn} + (1u << order) > nrPages_)) {
      --order;
    }
    pushLocked(pfn, order);
    pfn += 1u << order;
  }
}

// Free lists are LIFO: the most recently freed (cache-warm) block goes first.
void Buddy::pushLocked(uint32_t pfn, unsigned order) {
  const uint32_t old = head_[order];
  meta_[pfn] = PageMeta::make(PageState::kFree, order, old == PageMeta::kNone ? 0 : old + 1, 0);
  if (old != PageMeta::kNone) {
    const PageMeta& o = meta_[old];
    meta_[old] = PageMeta::make(PageState::kFree, order, o.a(), pfn + 1);
  }
  head_[order] = pfn;
  setNrFree(order, +1);
}

void Buddy::unlinkLocked(uint32_t pfn, unsigned order) {
  const PageMeta m = meta_[pfn];
  const uint32_t next = m.next();
  const uint32_t prev = m.prev();
  if (prev == PageMeta::kNone) {
    head_[order] = next;
  } else {
    const PageMeta& p = meta_[prev];
    meta_[prev] = PageMeta::make(PageState::kFree, order, m.a(), p.b());
  }
  if (next != PageMeta::kNone) {
    const PageMeta& n = meta_[next];
    meta_[next] = PageMeta::make(PageState::kFree, order, n.a(), m.b());
  }
  setNrFree(order, -1);
}

uint32_t Buddy::takeLocked(unsigned order) {
  unsigned o = order;
  while (o <= maxOrder_ && head_[o] == PageMeta::kNone) ++o;
  if (o > maxOrder_) return PageMeta::kNone;
  const uint32_t pfn = head_[o];
  unlinkLocked(pfn, o);
  // expand(): keep the low half, give the upper halves back, largest first.
  while (o > order) {
    --o;
    pushLocked(pfn + (1u << o), o);
  }
  meta_[pfn] = PageMeta::make(PageState::kFree, order, 0, 0);
  return pfn;
}

void Buddy::pushRangeLocked(uint32_t pfn, uint32_t end) {
  while (pfn < end) {
    unsigned order = maxOrder_;
    while (order > 0 && ((pfn & ((1u << order) - 1)) != 0 || pfn + (1u << order) > end)) --order;
    pushLocked(pfn, order);
    pfn += 1u << order;
  }
}

void Buddy::takeBulkLocked(unsigned order, uint32_t n, uint32_t owner, uint32_t firstGen, int32_t* out) {
  uint32_t got = 0;
  while (got < n) {
    unsigned o = order;
    while (o <= maxOrder_ && head_[o] == PageMeta::kNone) ++o;
    if (o > maxOrder_) return;  // unreachable after hasBlocks(); kept as a guard
    const uint32_t pfn = head_[o];
    unlinkLocked(pfn, o);
    // The smallest block, at most this one, that holds what is still wanted.
    const uint32_t want = n - got;
    unsigned fit = order;
    while (fit < o && (1u << (fit - order)) < want) ++fit;
    while (o > fit) {
      --o;
      pushLocked(pfn + (1u << o), o);
    }
    // Carve it into blocks of `order`; what is left over goes back. Each
    // kept head is marked allocated at once: a stale Free word on a taken
    // head would let a later merge unlink a block that is in no list.
    const uint32_t count = 1u << (fit - order);
    const uint32_t keep = count < want ? count : want;
    for (uint32_t k = 0; k < keep; ++k, ++got) {
      const uint32_t head = pfn + (k << order);
      const uint32_t gen = (firstGen + got) & kGenMask;
      meta_[head] = PageMeta::make(PageState::kAllocated, order, owner, gen);
      out[2 * got] = static_cast<int32_t>(head);
      out[2 * got + 1] = static_cast<int32_t>(gen);
    }
    if (keep < count) pushRangeLocked(pfn + (keep << order), pfn + (count << order));
  }
}

bool Buddy::takeExactLocked(uint32_t pfn, unsigned order) {
  if (pfn >= nrPages_) return false;
  const PageMeta m = meta_[pfn];
  if (m.state() != PageState::kFree || m.order() != order) return false;
  unlinkLocked(pfn, order);
  meta_[pfn] = PageMeta::make(PageState::kFree, order, 0, 0);
  return true;
}

void Buddy::giveLocked(uint32_t pfn, unsigned order, uint32_t* mergedPfn, unsigned* mergedOrder) {
  while (order < maxOrder_) {
    const uint32_t buddy = pfn ^ (1u << order);
    if (uint64_t{buddy} + (1u << order) > nrPages_) break;
    const PageMeta b = meta_[buddy];
    if (b.state() != PageState::kFree || b.order() != order) break;
    unlinkLocked(buddy, order);
    // The higher of the two heads stops being a head (the head rule).
    meta_[pfn > buddy ? pfn : buddy] = PageMeta::tail();
    pfn = pfn < buddy ? pfn : buddy;
    ++order;
  }
  pushLocked(pfn, order);
  if (mergedPfn) *mergedPfn = pfn;
  if (mergedOrder) *mergedOrder = order;
}

bool Buddy::hasBlocks(unsigned order, uint32_t n) const {
  uint64_t blocks = 0;
  for (unsigned o = order; o <= maxOrder_ && blocks < n; ++o) blocks += nrFree(o) << (o - order);
  return blocks >= n;
}

bool Buddy::hasBlock(unsigned order) const {
  for (unsigned o = order; o <= maxOrder_; ++o) {
    if (nrFree_[o].load(std::memory_order_relaxed) != 0) return true;
  }
  return false;
}

const char* Buddy::checkLocked(int64_t allocatedPages) const {
  int64_t sum = 0;
  for (unsigned o = 0; o <= maxOrder_; ++o) {
    uint64_t count = 0;
    uint32_t prev = PageMeta::kNone;
    for (uint32_t p = head_[o]; p != PageMeta::kNone; p = meta_[p].next()) {
      if (p >= nrPages_) return "free list entry out of range";
      const PageMeta& m = meta_[p];
      if (m.state() != PageState::kFree || m.order() != o) return "free list entry is not a free head of its order";
      if (m.prev() != prev) return "free list back link broken";
      if ((p & ((1u << o) - 1)) != 0) return "free block misaligned";
      prev = p;
      if (++count > nrPages_) return "free list cycle";
    }
    if (count != nrFree(o)) return "nrFree[order] != length of free list";
    sum += static_cast<int64_t>(count) << o;
  }
  if (sum != freePages()) return "freePages != sum of nrFree[o] << o";
  if (freePages() + allocatedPages != nrPages_) return "freePages + allocatedPages != nrPages";
  int64_t walkedAlloc = 0;
  uint32_t p = 0;
  while (p < nrPages_) {
    const PageMeta& m = meta_[p];
    if (m.state() == PageState::kTail) return "page where a block head was expected is a tail";
    const uint32_t n = 1u << m.order();
    if (m.order() > maxOrder_ || uint64_t{p} + n > nrPages_) return "block order out of range";
    if (m.state() == PageState::kAllocated) walkedAlloc += n;
    for (uint32_t t = p + 1; t < p + n; ++t) {
      if (meta_[t].word != 0) return "tail page of a block is not a clean tail";
    }
    p += n;
  }
  if (walkedAlloc != allocatedPages) return "allocated blocks do not add up to allocatedPages";
  return nullptr;
}

}  // namespace nofail
