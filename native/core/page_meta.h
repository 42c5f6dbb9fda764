// Per-page metadata: one 64-bit word per 4 KiB page (8 / 4096 = 0.195 % of
// the pool), kept in native memory outside the mapped region so that no
// write through a page's view can reach it.
//
//   bits  0..1   state   (Tail / Free / Allocated)
//   bits  2..5   order   (valid on heads only)
//   bits  6..34  a       Free head: next pfn + 1 in its free list (0 = none)
//                        Allocated head: owning task id
//   bits 35..63  b       Free head: previous pfn + 1 (0 = list head)
//                        Allocated head: generation (kGenBits wide)
//
// Invariant (the "head rule"): a page is a head exactly when it starts a
// block that is currently free or allocated; every other page is Tail with
// an all-zero word. Split and coalesce keep it in O(1) per step: a split
// makes the upper half's first page a head, a merge turns the absorbed
// head back into a tail. So "is pfn an allocated head of order k" is one
// load, and freeing a tail or a free block is always detected.
#pragma once

#include <cstdint>

namespace nofail {

enum class PageState : uint8_t { kTail = 0, kFree = 1, kAllocated = 2 };

constexpr unsigned kPageShift = 12;
constexpr uint64_t kPageSize = uint64_t{1} << kPageShift;
constexpr unsigned kFieldBits = 29;
constexpr uint32_t kFieldMask = (1u << kFieldBits) - 1;
// pfn + 1 must fit a field, so a pool has at most 2^29 - 1 pages (2 TiB).
constexpr uint32_t kMaxPages = kFieldMask;
constexpr unsigned kMaxOrderLimit = 15;  // the order field is 4 bits
// JavaScript sees the region through one ArrayBuffer per chunk of 2^30
// bytes (an ArrayBuffer is at most 4 GiB, and offsets stay in int32 range).
// A block is naturally aligned and at most 2^(15+12) bytes, so none crosses
// a chunk boundary.
constexpr unsigned kRegionChunkShift = 30;
static_assert(kMaxOrderLimit + kPageShift <= kRegionChunkShift, "a block must fit one region chunk");
constexpr unsigned kGenBits = 20;
constexpr uint32_t kGenMask = (1u << kGenBits) - 1;

struct PageMeta {
  uint64_t word;  // trivial, so calloc()ed memory is an array of Tail pages

  PageState state() const { return static_cast<PageState>(word & 3u); }
  unsigned order() const { return static_cast<unsigned>((word >> 2) & 15u); }
  uint32_t a() const { return static_cast<uint32_t>((word >> 6) & kFieldMask); }
  uint32_t b() const { return static_cast<uint32_t>((word >> 35) & kFieldMask); }

  static PageMeta make(PageState s, unsigned order, uint32_t a, uint32_t b) {
    PageMeta m{0};
    m.word = static_cast<uint64_t>(s) | (static_cast<uint64_t>(order & 15u) << 2) |
             (static_cast<uint64_t>(a & kFieldMask) << 6) |
             (static_cast<uint64_t>(b & kFieldMask) << 35);
    return m;
  }
  static PageMeta tail() { return PageMeta{0}; }

  // Free-list links, stored as pfn + 1 so that 0 means "none".
  static constexpr uint32_t kNone = 0xffffffffu;
  uint32_t next() const { return a() == 0 ? kNone : a() - 1; }
  uint32_t prev() const { return b() == 0 ? kNone : b() - 1; }
  uint32_t owner() const { return a(); }
  uint32_t gen() const { return b(); }
};

static_assert(sizeof(PageMeta) == 8, "per-page metadata must stay 8 bytes");

}  // namespace nofail
