// A minimal test harness for the C++ tests: CHECK records a failure with its
// line and keeps going; each test binary ends with the plain closing line
// "N passed, N failed" and a non-zero exit status on any failure.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace check {
inline int failures = 0;
inline std::vector<std::pair<std::string, std::function<void()>>>& registry() {
  static std::vector<std::pair<std::string, std::function<void()>>> r;
  return r;
}
struct Reg {
  Reg(const char* name, std::function<void()> f) { registry().emplace_back(name, std::move(f)); }
};
inline int runAll() {
  int passed = 0, failed = 0;
  for (auto& [name, f] : registry()) {
    const int before = failures;
    f();
    if (failures == before) {
      ++passed;
      std::printf("ok   %s\n", name.c_str());
    } else {
      ++failed;
      std::printf("FAIL %s\n", name.c_str());
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
}  // namespace check

#define TEST(name)                                        \
  static void test_##name();                              \
  static check::Reg reg_##name(#name, test_##name);       \
  static void test_##name()

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      ++check::failures;                                                     \
      std::printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
    }                                                                        \
  } while (0)

#define CHECK_EQ(a, b)                                                                          \
  do {                                                                                          \
    const auto va = (a);                                                                        \
    const auto vb = (b);                                                                        \
    if (!(va == vb)) {                                                                          \
      ++check::failures;                                                                        \
      std::printf("  %s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, \
                  static_cast<long long>(va), static_cast<long long>(vb));                      \
    }                                                                                           \
  } while (0)
