/**
 * The control block: one SharedArrayBuffer per pool that every attached
 * thread shares. native/sync/control.h owns the first words; keep the two
 * in step. Layout (Int32 word indices unless noted):
 *
 *   0..15        native: MAGIC, FREE_SEQ, WAITERS, FREE_PAGES, RESERVED
 *   16..63       JavaScript words below (DRAIN_GEN, kswapd, OOM, ...)
 *   bytes 256..511    PSI state (psi.ts)
 *   bytes 512..1023   vmstat counters, BigInt64 (vmstat.ts)
 *   bytes 1024..4095  reclaim mailboxes, 48 x 16 words (reclaim.ts)
 *   words 1024..      the task table: TASK_WORDS (one cache line) per task id
 *                     < MAX_TABLE_TASKS (tasks.ts), with each thread's cached
 *                     and token pages
 */
export const CTL = {
  /** 'NOFL' once the pool is created (native). */
  MAGIC: 0,
  /** Bumped by native code after every free: the futex word waiters block on. */
  FREE_SEQ: 1,
  /** Threads blocked on FREE_SEQ; a free notifies only when it is non-zero. */
  WAITERS: 2,
  /** Mirror of the zone's free pages (native). */
  FREE_PAGES: 3,
  /** Mirror of the reservation counter (native). */
  RESERVED: 4,
  /** Threads attached to the pool (native; create/attach add one, detach and thread exit remove one). */
  ATTACHED: 5,
  /** The zone's watermarks (native publishes them on create and setWatermarks). */
  WMARK_MIN: 6,
  WMARK_LOW: 7,
  WMARK_HIGH: 8,
  /** drain_all_pages: bumped to ask every thread to drain its page cache. */
  DRAIN_GEN: 16,
  /** Bumped to wake kswapd (every thread that runs one waits on it). */
  KSWAPD_WAKE: 17,
  /** Consecutive kswapd runs that reclaimed nothing; at 16 kswapd is not woken until reclaim succeeds. */
  KSWAPD_FAILURES: 18,
  /** Threads whose kswapd is balancing right now. */
  KSWAPD_ACTIVE: 19,
  /** The OOM lock: 0 free, else the holder's task id (oom.ts). */
  OOM_LOCK: 20,
  /** The pool's behavior, set at creation: 0 'linux-4.0', 1 'linux-3.19'. */
  BEHAVIOR: 21,
  /** OOM killer configuration, set at creation (oom.ts): OOM_ENABLED | OOM_REAPER | OOM_PANIC. */
  OOM_FLAGS: 22,
  /** Weiner's victim timeout in ms (0: none). */
  OOM_VICTIM_TIMEOUT_MS: 23,
  /** How long the reaper lets a victim exit by itself first (OOM_REAPER_DELAY). */
  OOM_REAPER_DELAY_MS: 24,
  /** What a free page is filled with (Pool.create zeroOnFree / poison): -1 nothing, 0, or 0x6b. */
  FILL_ON_FREE: 26,
  /** When the stall warning first fires, ms (Pool.create stallWarnMs; 10 000 as the kernel). */
  STALL_WARN_MS: 27,
  /** 1 when lockdep checks are on (Pool.create({ lockdep }) or NOFAIL_LOCKDEP=1). */
  LOCKDEP: 28,
  /** Always 0: what a thread without a task-table entry reads as its flags. */
  ZERO: 63,
} as const;

export const PSI_BYTE_OFFSET = 256;
export const VMSTAT_BYTE_OFFSET = 512;
export const VMSTAT_SLOTS = 64;
export const MAILBOX_BASE = 256;
export const MAILBOX_WORDS = 16;
export const MAILBOXES = 48;

export const TASK_TABLE_BASE = 1024;
export const TASK_WORDS = 16;
export const MAX_TABLE_TASKS = 4096;

/** 4 KiB of words, then the task table. */
export const CONTROL_BYTES = 4 * (TASK_TABLE_BASE + TASK_WORDS * MAX_TABLE_TASKS);
