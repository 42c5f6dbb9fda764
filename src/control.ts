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
} as const;

export const CONTROL_BYTES = 4096;
