// Unit tests of native/core (no Node, no threads): the buddy allocator at
// every order, split and coalesce, exhaustion, fragmentation, the error
// statuses, and the watermark depth table.
#include <cstdlib>
#include <memory>
#include <vector>

#include "../core/zone.h"
#include "check.h"

using namespace nofail;

namespace {

struct TestZone {
  std::unique_ptr<PageMeta[]> meta;
  Zone zone;
  TestZone(uint32_t pages, unsigned maxOrder)
      : meta(new PageMeta[pages]()), zone(meta.get(), pages, maxOrder) {
    zone.initLocked();
  }
  int64_t alloc(unsigned order, uint32_t flags = kAllocWmarkMin, uint32_t* gen = nullptr) {
    uint32_t g = 0;
    const int64_t pfn = zone.allocLocked(order, flags, 1, &g);
    if (gen) *gen = g;
    return pfn;
  }
  Status free(uint32_t pfn, unsigned order, uint32_t gen = Zone::kAnyGen) {
    return zone.freeLocked(pfn, order, gen, nullptr, nullptr, nullptr);
  }
  bool ok() const { return zone.checkLocked() == nullptr; }
};

}  // namespace

TEST(init_seeds_largest_aligned_blocks) {
  TestZone t(1024 + 512 + 3, 10);  // one order-10, one order-9, then 2 + 1
  CHECK_EQ(t.zone.buddy().nrFree(10), 1u);
  CHECK_EQ(t.zone.buddy().nrFree(9), 1u);
  CHECK_EQ(t.zone.buddy().nrFree(1), 1u);
  CHECK_EQ(t.zone.buddy().nrFree(0), 1u);
  CHECK_EQ(t.zone.freePages(), 1539);
  CHECK(t.ok());
}

TEST(every_order_allocates_aligned_and_coalesces_back) {
  for (unsigned order = 0; order <= 10; ++order) {
    TestZone t(4096, 10);
    std::vector<int64_t> got;
    for (;;) {
      const int64_t pfn = t.alloc(order);
      if (pfn < 0) break;
      CHECK_EQ(pfn & ((int64_t{1} << order) - 1), 0);
      got.push_back(pfn);
    }
    CHECK_EQ(got.size(), size_t{4096} >> order);
    CHECK_EQ(t.zone.freePages(), 0);
    CHECK(t.ok());
    for (int64_t pfn : got) CHECK(t.free(static_cast<uint32_t>(pfn), order) == Status::kOk);
    CHECK_EQ(t.zone.buddy().nrFree(10), 4u);
    CHECK(t.ok());
  }
}

TEST(split_takes_low_half_and_frees_upper_halves) {
  TestZone t(1024, 10);
  const int64_t pfn = t.alloc(0);
  CHECK_EQ(pfn, 0);
  for (unsigned o = 0; o < 10; ++o) CHECK_EQ(t.zone.buddy().nrFree(o), 1u);
  CHECK_EQ(t.zone.buddy().nrFree(10), 0u);
  CHECK(t.free(0, 0) == Status::kOk);
  CHECK_EQ(t.zone.buddy().nrFree(10), 1u);
  CHECK(t.ok());
}

TEST(fragmentation_then_full_coalesce) {
  TestZone t(2048, 10);
  std::vector<int64_t> pfns;
  for (int i = 0; i < 2048; ++i) pfns.push_back(t.alloc(0));
  CHECK(t.alloc(0) < 0);
  for (size_t i = 0; i < pfns.size(); i += 2) CHECK(t.free(static_cast<uint32_t>(pfns[i]), 0) == Status::kOk);
  CHECK_EQ(t.zone.freePages(), 1024);
  // Every other page free: 1024 free pages, but not one order-1 block.
  CHECK_EQ(t.zone.buddy().nrFree(0), 1024u);
  CHECK(t.alloc(1) == static_cast<int64_t>(Status::kNoMemFragmented));
  CHECK(t.ok());
  for (size_t i = 1; i < pfns.size(); i += 2) CHECK(t.free(static_cast<uint32_t>(pfns[i]), 0) == Status::kOk);
  CHECK_EQ(t.zone.buddy().nrFree(10), 2u);
  CHECK_EQ(t.zone.buddy().nrFree(0), 0u);
  CHECK(t.ok());
}

TEST(double_free_tail_wrong_order_and_stale_gen_are_refused) {
  TestZone t(64, 4);
  uint32_t gen = 0;
  const int64_t pfn = t.alloc(2, kAllocWmarkMin, &gen);
  CHECK(pfn >= 0);
  const uint32_t p = static_cast<uint32_t>(pfn);
  CHECK(t.free(p + 1, 0) == Status::kBadPage);      // a tail of the block
  CHECK(t.free(p, 1) == Status::kBadPage);          // wrong order
  CHECK(t.free(p, 2, gen + 1) == Status::kBadPage); // stale generation
  CHECK(t.free(64, 0) == Status::kOutOfRange);
  CHECK(t.free(p, 2, gen) == Status::kOk);
  CHECK(t.free(p, 2, gen) == Status::kDoubleFree || t.free(p, 2, gen) == Status::kBadPage);
  CHECK(t.ok());
  CHECK_EQ(t.zone.freePages(), 64);
}

TEST(generation_changes_on_reallocation) {
  TestZone t(16, 4);
  uint32_t g1 = 0, g2 = 0;
  const int64_t a = t.alloc(0, kAllocWmarkMin, &g1);
  CHECK(t.free(static_cast<uint32_t>(a), 0, g1) == Status::kOk);
  const int64_t b = t.alloc(0, kAllocWmarkMin, &g2);
  CHECK_EQ(a, b);
  CHECK(g1 != g2);
  CHECK(t.free(static_cast<uint32_t>(b), 0, g1) == Status::kBadPage);
}

TEST(watermark_depth_table) {
  // 1000 pages, min 400, low 500, high 600. Allocate down to the edge for
  // each caller class and check where each one stops.
  struct Case {
    uint32_t flags;
    int64_t keep;  // free pages that must remain: the allocation fails once free <= keep
  };
  const Case cases[] = {
      {kAllocWmarkLow, 500},
      {kAllocWmarkMin, 400},                                     // NOWAIT / KERNEL in the slow path
      {kAllocWmarkMin | kAllocMinReserve, 200},                  // __GFP_HIGH: 50 %
      {kAllocWmarkMin | kAllocMinReserve | kAllocNonBlock, 150}, // GFP_ATOMIC: 37.5 %
      {kAllocWmarkMin | kAllocOom, 200},                         // OOM victim: a further half
      {kAllocWmarkMin | kAllocMinReserve | kAllocNonBlock | kAllocOom, 75},
      {kAllocWmarkMin | kAllocNoWatermarks, -1},
  };
  for (const Case& c : cases) {
    TestZone t(1000, 0);
    t.zone.setWatermarks(400, 500, 600);
    int64_t n = 0;
    while (t.alloc(0, c.flags) >= 0) ++n;
    CHECK_EQ(t.zone.freePages(), c.keep < 0 ? 0 : c.keep + 0);
    CHECK_EQ(n, 1000 - (c.keep < 0 ? 0 : c.keep));
  }
}

TEST(reservation_raises_every_mark_except_for_reserve_callers) {
  TestZone t(1000, 0);
  t.zone.setWatermarks(100, 150, 200);
  t.zone.addReserved(300);
  int64_t n = 0;
  while (t.alloc(0, kAllocWmarkMin) >= 0) ++n;
  CHECK_EQ(t.zone.freePages(), 400);  // min 100 + reserved 300
  while (t.alloc(0, kAllocWmarkMin | kAllocReserve) >= 0) ++n;
  CHECK_EQ(t.zone.freePages(), 100);
  // Free pages (100) are within the reservation (300): even a MEMALLOC
  // caller keeps out of it, and a RESERVE caller is at min.
  CHECK(!t.zone.watermarkOk(0, kAllocWmarkMin, kAllocNoWatermarks));
  CHECK(t.zone.watermarkOk(0, kAllocWmarkMin, kAllocNoWatermarks | kAllocReserve));
  CHECK(!t.zone.watermarkOk(0, kAllocWmarkMin, kAllocReserve));
}

// One formula for every caller: `free - need >= effectiveMark()`, the
// NO_WATERMARKS branch included, whose mark is the reservation it keeps.
// The slow path asks for the same mark (native effectiveMark), so "could
// free + reclaimable pages pass?" cannot disagree with the zone by a page.
TEST(no_watermarks_boundary_is_the_reservation) {
  TestZone t(100, 0);
  t.zone.setWatermarks(10, 20, 30);
  t.zone.addReserved(5);
  CHECK_EQ(t.zone.effectiveMark(kAllocWmarkMin, kAllocNoWatermarks), 5);
  CHECK_EQ(t.zone.effectiveMark(kAllocWmarkMin, kAllocNoWatermarks | kAllocReserve), 0);
  CHECK_EQ(t.zone.effectiveMark(kAllocWmarkMin, 0), 15);  // min + reserved
  // Taking pages one at a time stops with exactly the reservation free.
  while (t.alloc(0, kAllocWmarkMin | kAllocNoWatermarks) >= 0) {
  }
  CHECK_EQ(t.zone.freePages(), 5);
  // At the boundary: free - need == mark - 1 is refused, == mark is taken.
  CHECK(!t.zone.watermarkOk(0, kAllocWmarkMin, kAllocNoWatermarks));
  CHECK(t.zone.watermarkOkBulk(0, 5, kAllocWmarkMin, kAllocNoWatermarks | kAllocReserve));
  CHECK(!t.zone.watermarkOkBulk(0, 6, kAllocWmarkMin, kAllocNoWatermarks | kAllocReserve));
  CHECK(t.ok());
}

TEST(watermark_test_is_free_minus_need_at_or_above_the_mark) {
  const uint32_t flagSets[] = {
      kAllocWmarkMin,
      kAllocWmarkLow,
      kAllocWmarkHigh,
      kAllocWmarkMin | kAllocMinReserve,
      kAllocWmarkMin | kAllocMinReserve | kAllocNonBlock,
      kAllocWmarkMin | kAllocOom,
      kAllocWmarkMin | kAllocReserve,
      kAllocWmarkMin | kAllocNoWatermarks,
      kAllocWmarkMin | kAllocNoWatermarks | kAllocReserve,
  };
  for (const uint32_t flags : flagSets) {
    TestZone t(256, 0);
    t.zone.setWatermarks(40, 50, 60);
    t.zone.addReserved(7);
    const unsigned level = flags & kAllocWmarkMask;
    const int64_t mark = t.zone.effectiveMark(level, flags);
    uint32_t disagree = 0;  // counts of `nr` where the zone's verdict is not the formula's
    for (uint32_t nr = 1; nr <= 256; ++nr) {
      const bool want = t.zone.freePages() - static_cast<int64_t>(nr) >= mark;
      if (t.zone.watermarkOkBulk(0, nr, level, flags) != want) ++disagree;
    }
    CHECK_EQ(disagree, 0u);
  }
}

TEST(bulk_watermark_counts_all_blocks) {
  TestZone t(100, 0);
  t.zone.setWatermarks(10, 20, 30);
  CHECK(t.zone.watermarkOkBulk(0, 80, kAllocWmarkLow, 0));  // leaves exactly low free
  CHECK(!t.zone.watermarkOkBulk(0, 81, kAllocWmarkLow, 0));
}

TEST(owner_hand_over) {
  TestZone t(16, 2);
  uint32_t gen = 0, old = 0;
  const int64_t p = t.alloc(1, kAllocWmarkMin, &gen);
  CHECK(t.zone.setOwnerLocked(static_cast<uint32_t>(p), 1, gen, 7, &old) == Status::kOk);
  CHECK_EQ(old, 1u);
  CHECK_EQ(t.zone.meta(static_cast<uint32_t>(p)).owner(), 7u);
  CHECK(t.zone.setOwnerLocked(static_cast<uint32_t>(p) + 1, 0, gen, 7, &old) == Status::kBadPage);
}

TEST(bulk_carves_few_blocks_and_refuses_cleanly) {
  for (uint32_t n : {1u, 7u, 63u, 64u, 65u, 300u}) {
    TestZone t(1024, 10);
    std::vector<int32_t> out(2 * n);
    CHECK_EQ(t.zone.allocBulkLocked(0, n, 1, out.data()), static_cast<int64_t>(n));
    CHECK_EQ(t.zone.freePages(), 1024 - static_cast<int64_t>(n));
    CHECK(t.ok());
    for (uint32_t i = 0; i < n; ++i) CHECK(t.free(static_cast<uint32_t>(out[2 * i]), 0, static_cast<uint32_t>(out[2 * i + 1])) == Status::kOk);
    CHECK_EQ(t.zone.buddy().nrFree(10), 1u);
    CHECK(t.ok());
  }
  // Fragmented: every other page taken, then ask for more order-1 blocks than exist.
  TestZone t(64, 4);
  std::vector<int64_t> singles;
  for (int i = 0; i < 64; ++i) singles.push_back(t.alloc(0));
  for (size_t i = 0; i < 64; i += 2) t.free(static_cast<uint32_t>(singles[i]), 0);
  for (size_t i = 1; i < 8; i += 2) t.free(static_cast<uint32_t>(singles[i]), 0);  // pages 0..7 free: two order-2 blocks... one order-3
  // All or none, decided before anything changes: nothing taken, and
  // nothing written to `out`.
  std::vector<int32_t> out(2 * 8, -7);
  const int64_t free0 = t.zone.freePages();
  CHECK(t.zone.allocBulkLocked(1, 8, 1, out.data()) == static_cast<int64_t>(Status::kNoMemFragmented));
  CHECK_EQ(t.zone.freePages(), free0);
  for (int32_t w : out) CHECK_EQ(w, -7);
  CHECK(t.ok());
  // Exactly as many as there are is not too many: four order-1 blocks.
  std::vector<int32_t> four(2 * 4);
  CHECK_EQ(t.zone.allocBulkLocked(1, 4, 1, four.data()), 4);
  CHECK_EQ(t.zone.freePages(), free0 - 8);
  CHECK(t.ok());
}

int main() { return check::runAll(); }
