// Native core microbenchmark (no JavaScript): order-0 and order-3
// alloc+free through Pool (zone lock and buddy split/merge every time), and
// order-0 through PcpCache (the per-thread cache JavaScript threads also
// use: a batch of 63 per zone-lock hold), each uncontended and on 2 threads.
// Prints ns per alloc+free pair, median of the runs, as JSON.
//   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel --target core_bench
//   ./build-rel/core_bench [--quick]
// (npm run bench runs it through bench/cases/native-core.mjs.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../../native/sync/pcp.h"
#include "../../native/sync/pool.h"

using namespace nofail;
using Clock = std::chrono::steady_clock;

namespace {

// Direct: hold a small working set so frees coalesce realistically, then
// alloc+free in a loop.
double runDirect(Pool& pool, uint32_t task, unsigned order, long iters) {
  uint32_t gen;
  std::vector<std::pair<uint32_t, uint32_t>> held;
  for (int i = 0; i < 32; ++i) {
    const int64_t p = pool.alloc(order, kAllocWmarkMin, task, &gen);
    held.emplace_back(static_cast<uint32_t>(p), gen);
  }
  const auto t0 = Clock::now();
  for (long i = 0; i < iters; ++i) {
    const int64_t p = pool.alloc(order, kAllocWmarkMin, task, &gen);
    pool.free(static_cast<uint32_t>(p), order, gen);
  }
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / iters;
  for (auto& [p, g] : held) pool.free(p, order, g);
  return ns;
}

// Through the per-thread cache, in bursts of 512 allocations then 512
// frees — twice the cache's high mark — so that it refills and drains
// (one zone-lock hold per 63 pages) as a real workload makes it do, rather
// than recycling one hot page.
double runPcp(Pool& pool, uint32_t task, unsigned, long iters) {
  PcpCache pcp(pool, task);
  constexpr size_t kBurst = 512;
  std::vector<std::pair<uint32_t, uint32_t>> burst(kBurst);
  const long rounds = iters / kBurst;
  const auto t0 = Clock::now();
  for (long r = 0; r < rounds; ++r) {
    for (auto& slot : burst) slot.first = static_cast<uint32_t>(pcp.alloc(&slot.second));
    for (auto& slot : burst) pcp.free(slot.first, slot.second);
  }
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / (rounds * kBurst);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

using Runner = std::function<double(Pool&, uint32_t, unsigned, long)>;

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const long iters = quick ? 300000 : 3000000;
  const int reps = quick ? 3 : 7;
  PoolConfig c;
  c.bytes = 64u << 20;
  std::string error;
  auto pool = Pool::create(c, &error);
  if (!pool) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  const uint32_t t1 = pool->createTask(), t2 = pool->createTask();
  struct Case {
    std::string name;
    unsigned order;
    Runner run;
  };
  const Case cases[] = {
      {"order-0 alloc+free via PcpCache", 0, runPcp},
      {"order-0 alloc+free, buddy directly", 0, runDirect},
      {"order-3 alloc+free, buddy directly", 3, runDirect},
  };
  std::printf("{\"machine_threads\": %u, \"results\": [\n", std::thread::hardware_concurrency());
  bool first = true;
  for (const Case& k : cases) {
    std::vector<double> one, two;
    for (int r = 0; r < reps; ++r) {
      one.push_back(k.run(*pool, t1, k.order, iters));
      double a = 0, b = 0;
      std::thread x([&] { a = k.run(*pool, t1, k.order, iters); });
      std::thread y([&] { b = k.run(*pool, t2, k.order, iters); });
      x.join();
      y.join();
      // Two threads' throughput as ns per operation: wall time / total operations.
      two.push_back(std::max(a, b) / 2);
    }
    std::printf("%s  {\"case\": \"%s, 1 thread\", \"ns\": %.2f},\n", first ? "" : ",\n", k.name.c_str(), median(one));
    std::printf("  {\"case\": \"%s, 2 threads (ns per op, aggregate)\", \"ns\": %.2f}", k.name.c_str(), median(two));
    first = false;
  }
  std::printf("\n]}\n");
  return pool->check() == nullptr ? 0 : 1;
}
