/**
 * Task locks: the short locks that live in shared memory — the OOM lock
 * (oom/killer.ts), PSI's (stats/psi.ts), a mempool's (lib/mempool.ts), a
 * reclaim mailbox's and its ownership (reclaim/reclaim.ts) — and survive
 * their holder, as SharedMutex does (a robust futex): the lock word names
 * the holding thread's task, so a waiter sees at once, with no timer, that
 * a thread terminated inside the critical section is gone, and takes the
 * lock over.
 *
 * Lock word: tag << HOLDER_BITS | holder. `holder` is the thread's task id,
 * 0 when free (task ids are below 2^14: native/sync/ledger.h kMaxTasks).
 * `tag` counts acquisitions and is kept on release, so the word a waiter
 * read and later compares in its takeover cannot be a newer acquisition by
 * the same task (ABA would take 2^18 acquisitions between the two).
 *
 * A waiter takes the word over when its holder h is gone:
 *   - h is the waiter's own task: these locks do not nest (a mailbox
 *     requester tracks the mailboxes it holds, `mine`), so the word is left
 *     by a dead earlier task that had this id;
 *   - the ledger says h is not live (native.taskLive): h retired (its thread
 *     was terminated, or it closed the pool);
 *   - h is live, has a task-table entry, and its FLAGS lack the lock's IN_*
 *     bit: the id was reused (TaskTable.init clears FLAGS).
 * Invariant: a task that holds a lock has the lock's bit in its FLAGS — set
 * before the compareExchange that takes it, cleared only after the store that
 * releases it (after the last one, for locks a thread may hold several of).
 * So a live holder is never taken for gone, and a reused id looks like a
 * holder only while its new task is inside a lock of the same kind itself:
 * a few instructions, never for good. Task ids from 4096 up (handed out only
 * while the 4095 below are all live) have no table entry: for them the
 * ledger alone decides, and a reused one looks alive until its task ends.
 */
import type { NativeAddon } from '../binding/native.js';

/**
 * The bits of a task's FLAGS word (task-table.ts) that say its thread is
 * inside (or taking) a task lock of one kind, or owns a reclaim mailbox:
 * what tells a live holder from a reused id (see above). Declared here, where
 * they mean something; TASK_FLAG includes them.
 */
export const TASK_LOCK_FLAG = {
  IN_OOM_LOCK: 0x40,
  IN_PSI_LOCK: 0x80,
  IN_MEMPOOL_LOCK: 0x100,
  IN_MAILBOX_LOCK: 0x200,
  MAILBOX_OWNER: 0x400,
} as const;

export const HOLDER_BITS = 14;
const HOLDER_MASK = (1 << HOLDER_BITS) - 1;

/** The task a lock word names; 0 when free. */
export function lockHolder(word: number): number {
  return word & HOLDER_MASK;
}

/** Who takes a task lock: this thread's task in a pool (lockHost()). */
export interface LockHost {
  readonly taskId: number;
  /** The task table (task-table.ts): its FLAGS words say who is in which lock. */
  readonly tasks: { inTable(id: number): boolean; flags(id: number): number; setFlags(id: number, bits: number): void; clearFlags(id: number, bits: number): void };
  /** Is the task live in the pool's ledger? True when this thread cannot ask (it closed the pool). */
  taskLive(task: number): boolean;
}

/**
 * A thread's attachment (Attachment) as a LockHost. The addon is passed in
 * so that this module, and psi.ts, which imports it, load none.
 */
export function lockHost(
  core: { readonly slot: number; readonly taskId: number; readonly tasks: LockHost['tasks']; readonly closed: boolean },
  addon: Pick<NativeAddon, 'taskLive'>,
): LockHost {
  return { taskId: core.taskId, tasks: core.tasks, taskLive: (task) => core.closed || addon.taskLive(core.slot, task) };
}

/**
 * Is the task a lock word names gone (see above)? `mine`: this thread holds
 * that very lock now. Asks the ledger (a native call under the zone lock):
 * call it when the lock is seen busy, not on every spin.
 */
export function holderGone(host: LockHost, holder: number, bit: number, mine: boolean): boolean {
  if (holder === 0) return false;
  if (holder === host.taskId) return !mine;
  if (!host.taskLive(holder)) return true;
  const t = host.tasks;
  return t.inTable(holder) && (t.flags(holder) & bit) === 0;
}

/**
 * One attempt at the task lock w[i] for this thread's task: true if it took
 * it — free, or, with `checkHolder`, from a holder that is gone. The caller
 * has set `bit` in its task's FLAGS.
 */
export function tryTaskLock(host: LockHost, w: Int32Array, i: number, bit: number, checkHolder: boolean, mine = false): boolean {
  const seen = Atomics.load(w, i);
  const h = seen & HOLDER_MASK;
  if (h !== 0 && !(checkHolder && holderGone(host, h, bit, mine))) return false;
  const next = ((((seen >>> HOLDER_BITS) + 1) << HOLDER_BITS) | host.taskId) | 0;
  return Atomics.compareExchange(w, i, seen, next) === seen;
}

/** Releases a task lock this thread's task holds (a no-op if a waiter took it over). */
export function taskUnlock(host: LockHost, w: Int32Array, i: number): void {
  const seen = Atomics.load(w, i);
  if ((seen & HOLDER_MASK) === host.taskId) Atomics.compareExchange(w, i, seen, seen & ~HOLDER_MASK);
}

/** Frees a task lock word whose holder is gone, if it still reads `seen` (holderGone said so). */
export function dropHolder(w: Int32Array, i: number, seen: number): boolean {
  return Atomics.compareExchange(w, i, seen, seen & ~HOLDER_MASK) === seen;
}

/** Where a test worker may stop inside a critical section (lockTestPause). */
export type LockPausePoint = 'oom' | 'psi' | 'mempool' | 'mempool-free' | 'mailbox';

/**
 * TEST ONLY (test/mm/workers/74-dead-holder.test.ts): called inside each task
 * lock's critical section, so that a test can terminate a worker there.
 * Undefined outside tests; a critical section only tests that it is.
 */
export let lockTestPause: ((point: LockPausePoint) => void) | undefined;

/** TEST ONLY: sets or clears lockTestPause for this thread. */
export function setLockTestPause(fn: ((point: LockPausePoint) => void) | undefined): void {
  lockTestPause = fn;
}
