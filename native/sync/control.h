// The control block: a SharedArrayBuffer that the creating thread allocates
// and every attached thread shares (Node 20 cannot wrap native memory in a
// SharedArrayBuffer, DESIGN §2, so the pool borrows JavaScript's). Native
// code publishes what JavaScript must read without a call — the free-page
// count, and a sequence word bumped by every free, on which waiters block
// with Atomics.wait — and JavaScript keeps its own shared state after it.
//
// The whole layout is declared here, once, with who writes each word — the
// words only JavaScript touches included. The binding exports these tables
// (layout.ctl, layout.regions, layout.task) and src/binding/control.ts builds
// CTL, the offsets and TASK_WORD from them at load, failing there if a name
// it expects is missing.
//
// Memory ordering: native stores are release, JavaScript's Atomics loads are
// sequentially consistent; a waiter that reads kFreeSeq, rechecks the pool
// and then waits on the old value cannot miss a free that happened after
// its read (Atomics.wait compares first).
#pragma once

#include <cstddef>
#include <cstdint>

namespace nofail {

// Int32 word indices, words 0..63. X(name exported to JavaScript, constant, index)
#define NOFAIL_CTL_WORDS(X)                                                                    \
  /* native: kMagicValue once the pool is created */                                           \
  X(MAGIC, kMagic, 0)                                                                          \
  /* native: bumped after every free; the futex word waiters block on */                      \
  X(FREE_SEQ, kFreeSeq, 1)                                                                     \
  /* JavaScript (wait.ts): threads blocked on FREE_SEQ; native subtracts a retired            \
     task's WAITING share */                                                                   \
  X(WAITERS, kWaiters, 2)                                                                      \
  /* native: the zone's free pages, after every alloc and free */                              \
  X(FREE_PAGES, kFreePages, 3)                                                                 \
  /* native: the reservation counter */                                                        \
  X(RESERVED, kReserved, 4)                                                                    \
  /* native: threads attached (create/attach +1, detach or thread exit -1) */                  \
  X(ATTACHED, kAttached, 5)                                                                    \
  /* native: the zone's watermarks, on create and setWatermarks */                             \
  X(WMARK_MIN, kWmarkMin, 6)                                                                   \
  X(WMARK_LOW, kWmarkLow, 7)                                                                   \
  X(WMARK_HIGH, kWmarkHigh, 8)                                                                 \
  /* words 9..15: free, for native */                                                          \
  /* JavaScript (pcp.ts): drain_all_pages, bumped to ask every thread to drain its cache */   \
  X(DRAIN_GEN, kDrainGen, 16)                                                                  \
  /* JavaScript (kswapd.ts): bumped to wake kswapd; every thread that runs one waits on it */ \
  X(KSWAPD_WAKE, kKswapdWake, 17)                                                              \
  /* JavaScript (kswapd.ts): consecutive runs that reclaimed nothing */                        \
  X(KSWAPD_FAILURES, kKswapdFailures, 18)                                                      \
  /* JavaScript (kswapd.ts): threads whose kswapd is balancing now */                          \
  X(KSWAPD_ACTIVE, kKswapdActive, 19)                                                          \
  /* JavaScript (oom.ts): the OOM lock, 0 free or the holder's task id */                      \
  X(OOM_LOCK, kOomLock, 20)                                                                    \
  /* JavaScript, at creation (create.ts): the behavior, 0 'linux-4.0', 1 'linux-3.19' */       \
  X(BEHAVIOR, kBehavior, 21)                                                                   \
  /* JavaScript, at creation: OOM_ENABLED | OOM_REAPER | OOM_PANIC */                          \
  X(OOM_FLAGS, kOomFlags, 22)                                                                  \
  /* JavaScript, at creation: Weiner's victim timeout in ms (0: none) */                       \
  X(OOM_VICTIM_TIMEOUT_MS, kOomVictimTimeoutMs, 23)                                            \
  /* JavaScript, at creation: how long the reaper lets a victim exit by itself */              \
  X(OOM_REAPER_DELAY_MS, kOomReaperDelayMs, 24)                                                \
  /* word 25: free */                                                                          \
  /* JavaScript, at creation: what a page freed from JavaScript is filled with, one of        \
     layout.constants.fill (native fills what it takes back: PoolConfig::fillOnReclaim) */    \
  X(FILL_ON_FREE, kFillOnFree, 26)                                                             \
  /* JavaScript, at creation: when the stall warning first fires, ms */                        \
  X(STALL_WARN_MS, kStallWarnMs, 27)                                                           \
  /* JavaScript, at creation: 1 when lockdep checks are on */                                  \
  X(LOCKDEP, kLockdep, 28)                                                                     \
  /* words 29..62: free */                                                                     \
  /* nobody: always 0, what a thread without a task-table entry reads as its flags */         \
  X(ZERO, kZero, 63)

// The regions after the words (sizes and offsets). X(name, constant, value)
#define NOFAIL_CTL_REGIONS(X)                                                                  \
  /* bytes 256..511: PSI state, written by JavaScript (src/mm/stats/psi.ts) */                 \
  X(PSI_BYTE_OFFSET, kPsiByteOffset, 256)                                                      \
  X(PSI_BYTES, kPsiBytes, 256)                                                                 \
  /* bytes 512..1023: vmstat counters, BigInt64, written by JavaScript (vmstat.ts) */          \
  X(VMSTAT_BYTE_OFFSET, kVmstatByteOffset, 512)                                                \
  X(VMSTAT_SLOTS, kVmstatSlots, 64)                                                            \
  /* words 256..1023: reclaim mailboxes, MAILBOXES x MAILBOX_WORDS, written by JavaScript      \
     (src/mm/reclaim/reclaim.ts) */                                                            \
  X(MAILBOX_BASE, kMailboxBase, 256)                                                           \
  X(MAILBOX_WORDS, kMailboxWords, 16)                                                          \
  X(MAILBOXES, kMailboxes, 48)                                                                 \
  /* words 1024..: the task table, TASK_WORDS (one cache line) per task id below              \
     MAX_TABLE_TASKS, each entry written mostly by its own thread (src/mm/task-table.ts) */   \
  X(TASK_TABLE_BASE, kTaskTableBase, 1024)                                                     \
  X(TASK_WORDS, kTaskWords, 16)                                                                \
  X(MAX_TABLE_TASKS, kTaskTableTasks, 4096)                                                    \
  /* the whole block */                                                                        \
  X(CONTROL_BYTES, kControlBytes, 4 * (1024 + 16 * 4096))

// The words of a task's entry, from its first word. X(name, constant, index)
#define NOFAIL_TASK_WORDS(X)                                                                   \
  /* its thread and the OOM killer: TASK_FLAG bits (task-table.ts, task-lock.ts) */            \
  X(FLAGS, kTaskFlags, 0)                                                                      \
  /* JavaScript, at registration: oom_score_adj, -1000..1000 */                                \
  X(ADJ, kTaskAdj, 1)                                                                          \
  /* JavaScript, at registration: the thread task that runs its kill callback */              \
  X(HOME, kTaskHome, 2)                                                                        \
  /* its thread: the SharedMutex it is blocked on (0 none), and that mutex's holder */         \
  X(BLOCKED_ON, kTaskBlockedOn, 3)                                                             \
  X(HOLDER, kTaskHolder, 4)                                                                    \
  /* the OOM killer: when it was chosen as a victim, ms on the pool clock */                   \
  X(VICTIM_AT, kTaskVictimAt, 5)                                                               \
  /* the OOM killer: bumped to deliver a kill; the home thread listens on it */                \
  X(KILL_SEQ, kTaskKillSeq, 6)                                                                 \
  /* its thread: its share of WAITERS; native takes it back when the task retires */           \
  X(WAITING, kTaskWaiting, 7)                                                                  \
  /* its thread: pages in its page cache (on refill and drain); native reads it in            \
     snapshots and clears it when the reaper takes the task's pages */                         \
  X(CACHED, kTaskCached, 8)                                                                    \
  /* its thread: pages in its token reservations; native reads it, clears it on retire */      \
  X(TOKENS, kTaskTokens, 9)                                                                    \
  /* JavaScript, at registration: the name, up to 23 bytes of UTF-8 in the last 6 words */    \
  X(NAME, kTaskName, 10)

namespace ctl {
#define NOFAIL_CTL_CONSTANT(name, k, value) constexpr int k = value;
NOFAIL_CTL_WORDS(NOFAIL_CTL_CONSTANT)
NOFAIL_CTL_REGIONS(NOFAIL_CTL_CONSTANT)
NOFAIL_TASK_WORDS(NOFAIL_CTL_CONSTANT)
#undef NOFAIL_CTL_CONSTANT
constexpr int kWords = 64;
constexpr int kSlots = kTaskTableBase + kTaskWords * kTaskTableTasks;  // the block's size in words
constexpr int32_t kMagicValue = 0x4e4f464c;  // "NOFL"

// The layout cannot overlap itself: each check below fails the build.
namespace check {
constexpr int kWordIndex[] = {
#define NOFAIL_CTL_INDEX(name, k, value) value,
    NOFAIL_CTL_WORDS(NOFAIL_CTL_INDEX)
};
constexpr int kTaskWordIndex[] = {NOFAIL_TASK_WORDS(NOFAIL_CTL_INDEX)};
#undef NOFAIL_CTL_INDEX
template <size_t N>
constexpr bool distinctBelow(const int (&v)[N], int limit) {
  for (size_t i = 0; i < N; ++i) {
    if (v[i] < 0 || v[i] >= limit) return false;
    for (size_t j = 0; j < i; ++j) {
      if (v[i] == v[j]) return false;
    }
  }
  return true;
}
static_assert(distinctBelow(kWordIndex, kWords), "control words: distinct, within words 0..63");
static_assert(distinctBelow(kTaskWordIndex, kTaskName + 1) && kTaskName + 6 == kTaskWords,
              "task words: distinct, NAME the last 6 of the entry");
static_assert(kWords * 4 <= kPsiByteOffset && kPsiByteOffset + kPsiBytes <= kVmstatByteOffset,
              "PSI state: after the words, before vmstat");
static_assert(kVmstatByteOffset + 8 * kVmstatSlots <= 4 * kMailboxBase, "vmstat: before the mailboxes");
static_assert(kMailboxBase + kMailboxes * kMailboxWords <= kTaskTableBase, "mailboxes: before the task table");
static_assert(kControlBytes == 4 * kSlots, "CONTROL_BYTES is the block's size");
}  // namespace check
}  // namespace ctl

// A borrowed view of the control block; null in the C++ tests.
// Any thread can write any word of the block at any time (it is a
// SharedArrayBuffer JavaScript holds), so whatever native code reads from
// it is untrusted: each word is read once, and used only clamped to what
// the pool knows (Pool::snapshot) or as a count to subtract, never as an
// index or a size.
class ControlBlock {
 public:
  explicit ControlBlock(int32_t* words = nullptr) : w_(words) {}
  bool attached() const { return w_ != nullptr; }
  int32_t* words() const { return w_; }

  void publishFree(int64_t freePages) const {
    if (!w_) return;
    __atomic_store_n(&w_[ctl::kFreePages], static_cast<int32_t>(freePages), __ATOMIC_RELEASE);
    __atomic_fetch_add(&w_[ctl::kFreeSeq], 1, __ATOMIC_RELEASE);
  }
  void publishAlloc(int64_t freePages) const {
    if (!w_) return;
    __atomic_store_n(&w_[ctl::kFreePages], static_cast<int32_t>(freePages), __ATOMIC_RELEASE);
  }
  // A retired task has no page cache, no token reservation and no thread
  // waiting: clear what its thread last published, and take its waits out
  // of kWaiters (a thread terminated inside Atomics.wait never could).
  void clearTask(uint32_t task) const {
    if (!w_ || task >= static_cast<uint32_t>(ctl::kTaskTableTasks)) return;
    int32_t* t = &w_[ctl::kTaskTableBase + task * ctl::kTaskWords];
    __atomic_store_n(&t[ctl::kTaskCached], 0, __ATOMIC_RELEASE);
    __atomic_store_n(&t[ctl::kTaskTokens], 0, __ATOMIC_RELEASE);
    const int32_t n = __atomic_exchange_n(&t[ctl::kTaskWaiting], 0, __ATOMIC_ACQ_REL);
    if (n > 0) __atomic_fetch_sub(&w_[ctl::kWaiters], n, __ATOMIC_RELEASE);
  }
  void publishWatermarks(int64_t min, int64_t low, int64_t high) const {
    if (!w_) return;
    __atomic_store_n(&w_[ctl::kWmarkMin], static_cast<int32_t>(min), __ATOMIC_RELEASE);
    __atomic_store_n(&w_[ctl::kWmarkLow], static_cast<int32_t>(low), __ATOMIC_RELEASE);
    __atomic_store_n(&w_[ctl::kWmarkHigh], static_cast<int32_t>(high), __ATOMIC_RELEASE);
  }
  void addAttached(int32_t delta) const {
    if (w_) __atomic_fetch_add(&w_[ctl::kAttached], delta, __ATOMIC_RELEASE);
  }
  // What a task's thread last published of its page cache and token
  // reservations (plain JavaScript stores; read here with relaxed loads, so
  // a reader sees a recent value, never a torn one). 0 outside the table.
  int32_t taskCached(uint32_t task) const { return taskWord(task, ctl::kTaskCached); }
  int32_t taskTokens(uint32_t task) const { return taskWord(task, ctl::kTaskTokens); }
  // The reaper took a task's pages, its page cache's with them: nothing of
  // what it last published is cached any more. Its thread republishes on
  // its next cache operation (src/mm/attachment.ts discardCache).
  void clearTaskCache(uint32_t task) const {
    if (!w_ || task >= static_cast<uint32_t>(ctl::kTaskTableTasks)) return;
    __atomic_store_n(&w_[ctl::kTaskTableBase + task * ctl::kTaskWords + ctl::kTaskCached], 0, __ATOMIC_RELEASE);
  }
  void publishReserved(int64_t reserved) const {
    if (!w_) return;
    __atomic_store_n(&w_[ctl::kReserved], static_cast<int32_t>(reserved), __ATOMIC_RELEASE);
  }

 private:
  int32_t taskWord(uint32_t task, int field) const {
    if (!w_ || task >= static_cast<uint32_t>(ctl::kTaskTableTasks)) return 0;
    return __atomic_load_n(&w_[ctl::kTaskTableBase + task * ctl::kTaskWords + field], __ATOMIC_RELAXED);
  }

  int32_t* w_;
};

}  // namespace nofail
