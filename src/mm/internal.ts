/**
 * The allocator's one internal surface: what nofail's own libraries (lib/)
 * and service layer (service/) may use beyond the public API (mm/index.ts).
 * Nothing else in mm/ is theirs to import; .dependency-cruiser.cjs enforces
 * it. Each entry says why a library needs it.
 */
import type { LockHost } from './task-lock.js';
import type { TaskTable } from './task-table.js';
import type { Page } from './page.js';
import { attachmentOf, type Pool } from './pool.js';
import type { VmStat } from './stats/vmstat.js';
import type { WaitHost } from './wait.js';

/**
 * What a library may do with a pool in this thread (internals(pool)). The
 * thread's attachment implements it; a library sees only this much of it.
 */
export interface PoolInternals extends WaitHost {
  /** The pool's id, as in its handle: a SharedMutex is bound to one pool. */
  readonly poolId: number;
  /** This thread's own task: the holder id of its locks. */
  readonly taskId: number;
  readonly closed: boolean;
  readonly totalPages: number;
  readonly maxOrder: number;
  /** vmstat counters shared by every thread (mempool_waits, pagecache_*). */
  readonly vmstat: VmStat;
  /** The task table: a SharedMutex records who blocks on whom there, for OOM reports; a killable lock reads the kill flags. */
  readonly tasks: TaskTable;
  /** Run by close() in this thread before it detaches: pending retry loops fail (XFS's fail_at_unmount). */
  readonly closeHooks: Set<() => void>;
  /** This thread's task as the holder of task locks (a mempool's lock, task-lock.ts). */
  readonly lockHost: LockHost;
  /** Between the slices of a lock's uninterruptible wait: answer other threads' reclaim requests. */
  serviceReclaimRequests(): void;
  /** Is the task live in the pool's ledger (a dead lock holder is not)? */
  taskLive(task: number): boolean;
  /** Hands an allocated block to `task` (a mempool parks its reserve on its own task); expectOwner 0: whoever owns it. */
  setOwner(pfn: number, order: number, gen: number, task: number, expectOwner: number): void;
  /** Returns every page a task holds and retires it (a mempool's destroy()). */
  retireTask(task: number): number;
  /** This thread's handle to a block just handed to it, charged to `task` (0: the thread's own). */
  pageFor(pfn: number, order: number, gen: number, task: number): Page;
  /** Checks that `page` is a live handle of this thread, as free() does (same errors), and returns its generation. */
  checkPage(page: unknown): number;
  /** The handle is given up (its block went to a mempool's reserve): every later use throws, as after free(). */
  markFreed(page: Page): void;
}

/** The internal surface of `pool` in this thread. */
export function internals(pool: Pool): PoolInternals {
  return attachmentOf(pool);
}

// How a library waits, as the allocator does (the one place that blocks).
export { canBlock, driveAsync, driveSync, type Wait } from './wait.js';
// The task allocations are charged to (task.run()): a lock's holder, a mempool element's owner.
export { currentTaskId } from './task.js';
export { TASK_FLAG, TASK_WORD } from './task-table.js';
// Task locks that survive their holder (a mempool's lock).
export { lockHolder, lockTestPause, setLockTestPause, TASK_LOCK_FLAG, taskUnlock, tryTaskLock, type LockHost } from './task-lock.js';
// memalloc_retry_wait(): how long a caller's retry loop waits between attempts.
export { retryWaitMs } from './slowpath.js';
// The one reporting path for warnings (a retry loop's canary).
export { warn } from './stats/warn.js';
// lockdep asks the locks above it which reclaimFs locks this thread holds.
export { registerReclaimFsLocks, type ReclaimFsLock } from './debug/lockdep.js';
export type { VmStat } from './stats/vmstat.js';
export type { TaskTable } from './task-table.js';
