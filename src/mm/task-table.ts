/**
 * Tasks: who owns pages, for the OOM killer. Every thread attached to a
 * pool is a task (its id is the native ledger's); a service can register
 * logical tasks (pool.registerTask) and attribute allocations to one with
 * task.run(fn), sync or async.
 *
 * The task table lives in the control block so that every thread's OOM
 * killer sees every task: per task id (< MAX_TABLE_TASKS), TASK_WORDS words:
 *   FLAGS        LIVE | THREAD | VICTIM | SKIP (MMF_OOM_SKIP) | KILLED | SIGPENDING,
 *                and which task lock its thread is in (IN_*_LOCK, MAILBOX_OWNER)
 *   ADJ          oom_score_adj, -1000..1000 (-1000: never chosen)
 *   HOME         the thread task that runs this task's kill callback
 *   BLOCKED_ON   id of the SharedMutex it is blocked on, 0 when none
 *   HOLDER       that mutex's holder when it blocked
 *   VICTIM_AT    ms (pool clock) when it was chosen as a victim
 *   KILL_SEQ     bumped to deliver a kill; the home thread listens on it
 *   WAITING      this thread's share of CTL.WAITERS (native takes it back
 *                if the thread dies inside a wait: native/sync/control.h)
 *   CACHED       pages in the thread's page cache
 *   TOKENS       pages in the thread's token reservations
 *   NAME         up to 23 bytes of UTF-8, in the last 6 words
 * (native/sync/control.h clears WAITING, CACHED and TOKENS when a task
 * retires.) Each entry is one cache line, written mostly by its thread.
 * Pages held come from the native ledger (native.taskPages).
 */
import { markContextsUsed } from './context.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { MAX_TABLE_TASKS, TASK_TABLE_BASE, TASK_WORDS } from '../binding/control.js';
import { InvalidArgTypeError, OutOfRangeError } from '../errors.js';
import type { NativeAddon } from '../binding/native.js';

export const TF = {
  LIVE: 0x1,
  THREAD: 0x2,
  VICTIM: 0x4,
  SKIP: 0x8,
  KILLED: 0x10,
  SIGPENDING: 0x20,
  /**
   * The task's thread is inside (or taking) a short lock of one kind: the
   * OOM lock, PSI's, a mempool's, a reclaim mailbox's; or owns a mailbox.
   * What tells a live holder from a reused id (task locks, below).
   */
  IN_OOM_LOCK: 0x40,
  IN_PSI_LOCK: 0x80,
  IN_MEMPOOL_LOCK: 0x100,
  IN_MAILBOX_LOCK: 0x200,
  MAILBOX_OWNER: 0x400,
} as const;

export const T = {
  FLAGS: 0,
  ADJ: 1,
  HOME: 2,
  BLOCKED_ON: 3,
  HOLDER: 4,
  VICTIM_AT: 5,
  KILL_SEQ: 6,
  WAITING: 7,
  CACHED: 8,
  TOKENS: 9,
  NAME: 10,
} as const;

export const MAX_TASK_NAME = 23;
export const OOM_SCORE_ADJ_MIN = -1000;
export const OOM_SCORE_ADJ_MAX = 1000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function taskBase(id: number): number {
  return TASK_TABLE_BASE + id * TASK_WORDS;
}

/** Milliseconds on a clock every thread shares (process.hrtime is process-wide). */
export function poolClockMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n) & 0x7fffffff;
}

export function checkAdj(adj: unknown): number {
  if (typeof adj !== 'number') throw new InvalidArgTypeError(`oomScoreAdj must be a number; received ${typeof adj}`);
  if (!Number.isInteger(adj) || adj < OOM_SCORE_ADJ_MIN || adj > OOM_SCORE_ADJ_MAX) {
    throw new OutOfRangeError(`oomScoreAdj must be an integer from -1000 to 1000; received ${adj}`);
  }
  return adj;
}

/** A view of the task table over a pool's control block. */
export class TaskTable {
  readonly #ctl: Int32Array;
  readonly #bytes: Uint8Array;

  constructor(control: SharedArrayBuffer) {
    this.#ctl = new Int32Array(control);
    this.#bytes = new Uint8Array(control);
  }

  inTable(id: number): boolean {
    return id > 0 && id < MAX_TABLE_TASKS;
  }

  init(id: number, opts: { name: string; adj: number; home: number; thread: boolean }): void {
    if (!this.inTable(id)) return;
    const b = taskBase(id);
    const c = this.#ctl;
    for (let i = 0; i < TASK_WORDS; i++) Atomics.store(c, b + i, 0);
    Atomics.store(c, b + T.ADJ, opts.adj);
    Atomics.store(c, b + T.HOME, opts.home);
    const name = encoder.encode(opts.name).subarray(0, MAX_TASK_NAME);
    this.#bytes.set(name, (b + T.NAME) * 4);
    Atomics.store(c, b + T.FLAGS, TF.LIVE | (opts.thread ? TF.THREAD : 0));
  }

  clear(id: number): void {
    if (!this.inTable(id)) return;
    Atomics.store(this.#ctl, taskBase(id) + T.FLAGS, 0);
  }

  flags(id: number): number {
    return this.inTable(id) ? Atomics.load(this.#ctl, taskBase(id) + T.FLAGS) : 0;
  }

  setFlags(id: number, bits: number): void {
    if (this.inTable(id)) Atomics.or(this.#ctl, taskBase(id) + T.FLAGS, bits);
  }

  clearFlags(id: number, bits: number): void {
    if (this.inTable(id)) Atomics.and(this.#ctl, taskBase(id) + T.FLAGS, ~bits);
  }

  /** The control-block word index of a field (for Atomics.wait / notify). */
  wordOf(id: number, field: number): number {
    return taskBase(id) + field;
  }

  get(id: number, field: number): number {
    return this.inTable(id) ? Atomics.load(this.#ctl, taskBase(id) + field) : 0;
  }

  set(id: number, field: number, value: number): void {
    if (this.inTable(id)) Atomics.store(this.#ctl, taskBase(id) + field, value);
  }

  name(id: number): string {
    if (!this.inTable(id)) return `task-${id}`;
    const start = (taskBase(id) + T.NAME) * 4;
    const raw = this.#bytes.subarray(start, start + MAX_TASK_NAME + 1);
    const end = raw.indexOf(0);
    return decoder.decode(raw.slice(0, end < 0 ? MAX_TASK_NAME : end)) || `task-${id}`;
  }

  /** Every task id with the LIVE flag. */
  live(): number[] {
    const out: number[] = [];
    for (let id = 1; id < MAX_TABLE_TASKS; id++) {
      if (Atomics.load(this.#ctl, taskBase(id) + T.FLAGS) & TF.LIVE) out.push(id);
    }
    return out;
  }

  /** Records that `id` blocks on (or, with 0, no longer blocks on) a mutex held by `holder`. */
  blockedOn(id: number, mutexId: number, holder: number): void {
    this.set(id, T.BLOCKED_ON, mutexId);
    this.set(id, T.HOLDER, holder);
  }
}

/** The logical task allocations are attributed to here (task.run), or 0 for the thread's own. */
const taskStore = new AsyncLocalStorage<number>();
let tasksUsed = false;

export function currentTaskId(): number {
  return tasksUsed ? (taskStore.getStore() ?? 0) : 0;
}

export function runAsTask<T>(id: number, fn: () => T): T {
  tasksUsed = true;
  markContextsUsed();
  return taskStore.run(id, fn);
}

// --- task locks --------------------------------------------------------------
//
// The short locks that live in shared memory — the OOM lock (oom.ts), PSI's
// (psi.ts), a mempool's (mempool.ts), a reclaim mailbox's and its ownership
// (reclaim.ts) — survive their holder, as SharedMutex does (a robust futex):
// the lock word names the holding thread's task, so a waiter sees at once,
// with no timer, that a thread terminated inside the critical section is
// gone, and takes the lock over.
//
// Lock word: tag << HOLDER_BITS | holder. `holder` is the thread's task id,
// 0 when free (task ids are below 2^14: native/sync/ledger.h kMaxTasks).
// `tag` counts acquisitions and is kept on release, so the word a waiter
// read and later compares in its takeover cannot be a newer acquisition by
// the same task (ABA would take 2^18 acquisitions between the two).
//
// A waiter takes the word over when its holder h is gone:
//   - h is the waiter's own task: these locks do not nest (a mailbox
//     requester tracks the mailboxes it holds, `mine`), so the word is left
//     by a dead earlier task that had this id;
//   - the ledger says h is not live (native.taskLive): h retired (its thread
//     was terminated, or it closed the pool);
//   - h is live, has a task-table entry, and its FLAGS lack the lock's IN_*
//     bit: the id was reused (TaskTable.init clears FLAGS).
// Invariant: a task that holds a lock has the lock's bit in its FLAGS — set
// before the compareExchange that takes it, cleared only after the store that
// releases it (after the last one, for locks a thread may hold several of).
// So a live holder is never taken for gone, and a reused id looks like a
// holder only while its new task is inside a lock of the same kind itself:
// a few instructions, never for good. Task ids from 4096 up (handed out only
// while the 4095 below are all live) have no table entry: for them the
// ledger alone decides, and a reused one looks alive until its task ends.

export const HOLDER_BITS = 14;
const HOLDER_MASK = (1 << HOLDER_BITS) - 1;

/** The task a lock word names; 0 when free. */
export function lockHolder(word: number): number {
  return word & HOLDER_MASK;
}

/** Who takes a task lock: this thread's task in a pool (lockHost()). */
export interface LockHost {
  readonly taskId: number;
  readonly tasks: TaskTable;
  /** Is the task live in the pool's ledger? True when this thread cannot ask (it closed the pool). */
  taskLive(task: number): boolean;
}

/**
 * A thread's attachment (PoolCore) as a LockHost. The addon is passed in
 * so that this module, and psi.ts, which imports it, load none.
 */
export function lockHost(
  core: { readonly slot: number; readonly taskId: number; readonly tasks: TaskTable; readonly closed: boolean },
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
