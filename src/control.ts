/**
 * The control block's slots (Int32 indices into a SharedArrayBuffer that
 * every thread attached to a pool shares). native/sync/control.h owns the
 * first ones; keep the two in step. JavaScript uses the rest.
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
  /** drain_all_pages: bumped to ask every thread to drain its page cache. */
  DRAIN_GEN: 16,
  /** Pages cached per thread, indexed by task id (16384 slots). */
  CACHED_BASE: 1024,
} as const;

/** 4 KiB of words, then 16384 per-task words. */
export const CONTROL_BYTES = 4 * (1024 + 16384);
