// Native core microbenchmark (no JavaScript): order-0 and order-3
// alloc+free through Pool (lock included), uncontended and on 2 threads.
// Prints ns per alloc+free pair, median of 7 runs.
//   cmake -S . -B build-cmake -DCMAKE_BUILD_TYPE=Release && cmake --build build-cmake --target core_bench
//   ./build-cmake/core_bench [--quick]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "../../native/sync/pool.h"

using namespace nofail;
using Clock = std::chrono::steady_clock;

namespace {

// One thread: hold a small working set so frees coalesce realistically,
// then alloc+free in a loop.
double run(Pool& pool, uint32_t task, unsigned order, long iters) {
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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const long iters = quick ? 200000 : 2000000;
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
  std::printf("{\"machine_threads\": %u, \"results\": [\n", std::thread::hardware_concurrency());
  bool first = true;
  for (unsigned order : {0u, 3u}) {
    std::vector<double> one, two;
    for (int r = 0; r < reps; ++r) {
      one.push_back(run(*pool, t1, order, iters));
      double a = 0, b = 0;
      std::thread x([&] { a = run(*pool, t1, order, iters); });
      std::thread y([&] { b = run(*pool, t2, order, iters); });
      x.join();
      y.join();
      // Throughput of two threads, as ns per pair of the pair: wall time / total ops.
      two.push_back(std::max(a, b) / 2);
    }
    std::printf("%s  {\"case\": \"order-%u alloc+free, 1 thread\", \"ns\": %.2f},\n", first ? "" : ",", order, median(one));
    std::printf("  {\"case\": \"order-%u alloc+free, 2 threads (ns per op, aggregate)\", \"ns\": %.2f}", order, median(two));
    first = false;
  }
  std::printf("\n]}\n");
  return pool->check() == nullptr ? 0 : 1;
}
