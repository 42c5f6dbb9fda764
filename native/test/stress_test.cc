// Multi-threaded stress of native/core + native/sync on a real mapped pool,
// in mimalloc's test-stress pattern: each thread allocates blocks of random
// order, fills every word with a value derived from (pfn, gen), frees some,
// swaps others into a shared transfer array so that other threads free
// them, and checks every word at free. Any overlap between two live blocks
// or any stray write shows up as a mismatch. An observer thread reads the
// lock-free counters, runs the locked identity check and takes reservations
// meanwhile. Built plain, under ASan+UBSan and under TSan (npm run
// test:sanitize); NOFAIL_STRESS_ITERS sets the iterations per thread.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "../sync/pcp.h"
#include "../sync/pool.h"
#include "check.h"

using namespace nofail;

namespace {

constexpr int kThreads = 4;
constexpr unsigned kMaxTestOrder = 5;
constexpr size_t kTransfer = 256;

struct Block {
  uint32_t pfn = 0, order = 0, gen = 0, task = 0;
  bool live = false;
};

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t cookie(const Block& b) { return (uint64_t{b.pfn} << 32) ^ b.gen ^ 0x6b6b6b6b00000000ull; }

void fill(Pool& p, const Block& b) {
  auto* w = reinterpret_cast<uint64_t*>(p.base() + (uint64_t{b.pfn} << kPageShift));
  const size_t words = (kPageSize << b.order) / 8;
  for (size_t i = 0; i < words; ++i) w[i] = cookie(b) + i;
}

bool verify(Pool& p, const Block& b) {
  auto* w = reinterpret_cast<uint64_t*>(p.base() + (uint64_t{b.pfn} << kPageShift));
  const size_t words = (kPageSize << b.order) / 8;
  for (size_t i = 0; i < words; ++i) {
    if (w[i] != cookie(b) + i) return false;
  }
  return true;
}

std::atomic<int> corruptions{0};
std::atomic<int> badFrees{0};
std::atomic<uint64_t> ops{0};

struct Slot {
  std::atomic<Block*> block{nullptr};
};

void worker(Pool& pool, uint32_t task, int tid, int iterations, Slot* transfer) {
  uint64_t seed = 0x1234 + tid;
  std::vector<Block*> mine;
  for (int it = 0; it < iterations; ++it) {
    const uint64_t r = splitmix(seed);
    if ((r % 100) < 55 || mine.empty()) {
      auto* b = new Block();
      b->order = static_cast<uint32_t>(splitmix(seed) % (kMaxTestOrder + 1));
      uint32_t gen = 0;
      const int64_t pfn = pool.alloc(b->order, kAllocWmarkMin, task, &gen);
      if (pfn < 0) {
        delete b;
      } else {
        b->pfn = static_cast<uint32_t>(pfn);
        b->gen = gen;
        b->task = task;
        b->live = true;
        fill(pool, *b);
        mine.push_back(b);
      }
    } else if ((r % 100) < 85) {
      const size_t i = splitmix(seed) % mine.size();
      Block* b = mine[i];
      mine[i] = mine.back();
      mine.pop_back();
      if (!verify(pool, *b)) corruptions.fetch_add(1);
      if (pool.free(b->pfn, b->order, b->gen) != Status::kOk) badFrees.fetch_add(1);
      delete b;
    } else {
      // Swap one of ours into the transfer array; whatever comes out was
      // most likely allocated by another thread, and is now ours to free.
      const size_t i = splitmix(seed) % mine.size();
      Block* b = mine[i];
      mine[i] = mine.back();
      mine.pop_back();
      Block* out = transfer[splitmix(seed) % kTransfer].block.exchange(b, std::memory_order_acq_rel);
      if (out != nullptr) mine.push_back(out);
    }
    ops.fetch_add(1, std::memory_order_relaxed);
  }
  for (Block* b : mine) {
    if (!verify(pool, *b)) corruptions.fetch_add(1);
    if (pool.free(b->pfn, b->order, b->gen) != Status::kOk) badFrees.fetch_add(1);
    delete b;
  }
}

// Beside the workers, what the binding does from other threads: lock-free
// reads of the counters, watermarks and ledger (atomics, documented as
// readable at any time, so TSan must stay quiet about them), the full
// identity check under the zone lock (Pool.checkInvariants), and watermark
// reservations taken and returned (pool.reserve). Stops when `stop` is set.
void observer(Pool& pool, uint32_t task, const std::vector<uint32_t>& tasks, const std::atomic<bool>& stop) {
  uint64_t seed = 0xabcd;
  uint64_t rounds = 0;
  int64_t held = 0;
  while (!stop.load(std::memory_order_acquire)) {
    const Zone& z = pool.zone();
    int64_t sum = z.freePages() + z.reserved() + z.allocatedPages();
    for (uint32_t t : tasks) sum += pool.taskPages(t);
    sum += static_cast<int64_t>(z.counters().allocs.load(std::memory_order_relaxed));
    if (z.watermarkOk(0, kAllocWmarkLow, 0)) ++sum;
    if (z.buddy().hasBlock(static_cast<unsigned>(splitmix(seed) % (kMaxTestOrder + 1)))) ++sum;
    if (sum < 0) corruptions.fetch_add(1);  // keeps the reads; cannot happen
    if ((rounds & 63) == 0 && pool.check() != nullptr) corruptions.fetch_add(1);
    if ((rounds & 15) == 0) {
      if (held > 0) {
        if (pool.addReserved(-held, task) < 0) badFrees.fetch_add(1);
        held = 0;
      } else if (pool.tryReserve(16, kAllocWmarkMin, task)) {
        held = 16;
      }
    }
    ++rounds;
    std::this_thread::yield();
  }
  if (held > 0 && pool.addReserved(-held, task) < 0) badFrees.fetch_add(1);
}

}  // namespace

TEST(threads_share_one_pool_without_overlap_or_loss) {
  PoolConfig c;
  c.bytes = 16u << 20;  // 4096 pages: small enough that threads run it dry
  c.maxOrder = 10;
  c.releaseOrder = 8;
  std::string error;
  auto pool = Pool::create(c, &error);
  CHECK(pool != nullptr);
  if (!pool) return;
  std::vector<Slot> transfer(kTransfer);
  const int iterations = std::getenv("NOFAIL_STRESS_ITERS") ? std::atoi(std::getenv("NOFAIL_STRESS_ITERS")) : 200000;
  std::vector<std::thread> threads;
  std::vector<uint32_t> tasks;
  for (int t = 0; t < kThreads; ++t) tasks.push_back(pool->createTask());
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, std::ref(*pool), tasks[t], t, iterations, transfer.data());
  std::atomic<bool> stop{false};
  std::thread watcher(observer, std::ref(*pool), pool->createTask(), std::cref(tasks), std::cref(stop));
  for (auto& th : threads) th.join();
  stop.store(true, std::memory_order_release);
  watcher.join();
  for (auto& s : transfer) {
    if (Block* b = s.block.load()) {
      if (!verify(*pool, *b)) corruptions.fetch_add(1);
      if (pool->free(b->pfn, b->order, b->gen) != Status::kOk) badFrees.fetch_add(1);
      delete b;
    }
  }
  CHECK_EQ(corruptions.load(), 0);
  CHECK_EQ(badFrees.load(), 0);
  CHECK(pool->check() == nullptr);
  CHECK_EQ(pool->zone().freePages(), 4096);
  CHECK_EQ(pool->zone().reserved(), 0);
  for (uint32_t t : tasks) CHECK_EQ(pool->taskPages(t), 0);
  std::printf("  %llu operations on %d threads\n", static_cast<unsigned long long>(ops.load()), kThreads);
}

TEST(reclaim_task_returns_everything_it_owns) {
  PoolConfig c;
  c.bytes = 4u << 20;
  std::string error;
  auto pool = Pool::create(c, &error);
  const uint32_t a = pool->createTask(), b = pool->createTask();
  uint32_t gen;
  for (int i = 0; i < 100; ++i) pool->alloc(i % 4, kAllocWmarkMin, i % 2 ? a : b, &gen);
  const int64_t heldA = pool->taskPages(a);
  CHECK(heldA > 0);
  CHECK_EQ(pool->reclaimTask(a, true), heldA);
  CHECK_EQ(pool->taskPages(a), 0);
  CHECK(!pool->taskLive(a));
  CHECK(pool->check() == nullptr);
  const int64_t heldB = pool->taskPages(b);
  CHECK_EQ(pool->reclaimTask(b, true), heldB);
  CHECK_EQ(pool->zone().freePages(), static_cast<int64_t>(pool->zone().nrPages()));
  CHECK(pool->reclaimTask(b, true) < 0);  // retired: no such live task
}

TEST(per_thread_caches_on_every_thread_add_up) {
  PoolConfig c;
  c.bytes = 8u << 20;
  std::string error;
  auto pool = Pool::create(c, &error);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < kThreads; ++t) {
    const uint32_t task = pool->createTask();
    threads.emplace_back([&, task, t] {
      PcpCache pcp(*pool, task);
      uint64_t seed = 77 + t;
      std::vector<std::pair<uint32_t, uint32_t>> held;
      for (int i = 0; i < 100000; ++i) {
        if ((splitmix(seed) & 1) || held.empty()) {
          uint32_t gen;
          const int64_t pfn = pcp.alloc(&gen);
          if (pfn >= 0) held.emplace_back(static_cast<uint32_t>(pfn), gen);
        } else {
          pcp.free(held.back().first, held.back().second);
          held.pop_back();
        }
        if (held.size() > 300) {
          for (auto& [p, g] : held) pcp.free(p, g);
          held.clear();
        }
      }
      for (auto& [p, g] : held) pcp.free(p, g);
      if (pool->taskPages(task) != pcp.count()) bad.fetch_add(1);
    });
  }
  for (auto& th : threads) th.join();
  CHECK_EQ(bad.load(), 0);
  CHECK(pool->check() == nullptr);
  CHECK_EQ(pool->zone().freePages(), static_cast<int64_t>(pool->zone().nrPages()));
}

TEST(bulk_free_of_a_batch_merges_runs_and_falls_back_on_a_bad_entry) {
  PoolConfig c;
  c.bytes = 1u << 20;  // 256 pages
  std::string error;
  auto pool = Pool::create(c, &error);
  const uint32_t task = pool->createTask();
  std::vector<int32_t> out(2 * 64);
  CHECK_EQ(pool->allocBulk(64, 0, kAllocWmarkMin, task, out.data()), 64);
  std::vector<BlockRef> refs;
  for (int i = 63; i >= 0; --i) refs.push_back({static_cast<uint32_t>(out[2 * i]), 0, static_cast<uint32_t>(out[2 * i + 1])});
  // A duplicate: nothing is freed by the fast path; entry by entry stops at the duplicate.
  std::vector<BlockRef> dup(refs.begin(), refs.begin() + 10);
  dup.push_back(refs[3]);
  uint32_t done = 0;
  // (A double free reads as kBadPage once the page has merged into a bigger free block.)
  const Status st = pool->freeBulk(dup.data(), static_cast<uint32_t>(dup.size()), &done);
  CHECK(st == Status::kDoubleFree || st == Status::kBadPage);
  CHECK_EQ(done, 10u);
  CHECK(pool->check() == nullptr);
  // The rest, in reverse order: runs merge back into whole blocks.
  CHECK(pool->freeBulk(refs.data() + 10, 54, &done) == Status::kOk);
  CHECK_EQ(done, 54u);
  CHECK(pool->check() == nullptr);
  CHECK_EQ(pool->zone().freePages(), 256);
  CHECK_EQ(pool->taskPages(task), 0);
  CHECK_EQ(pool->zone().buddy().nrFree(8), 1u);
}

int main() { return check::runAll(); }
