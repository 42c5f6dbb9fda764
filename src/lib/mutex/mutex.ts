/**
 * SharedMutex: a sleeping lock shared by threads (the kernel's struct
 * mutex), whose holder and waiters the pool can see, so that an OOM report
 * can say why a victim does not exit: it is blocked on a lock that an
 * allocating task holds (the 2015 TIF_MEMDIE deadlock, kernel-mm.md §6.5).
 *
 * The lock word (MUTEX_WORD.STATE) holds the holder's id, 0 when free — as a robust
 * futex holds its owner's TID — so who holds it is never out of date.
 * Holder ids:
 *   - with a pool: the caller's task in that pool — the logical task
 *     running (task.run, currentTaskId()) or else the thread's task
 *     (pool.taskId). A mutex is bound to the first pool it is locked with;
 *     its holder ids are that pool's task ids.
 *   - without a pool: worker_threads.threadId + THREAD_HOLDER_BASE (100000),
 *     never a task id.
 *
 * Lock operations, in the kernel's names:
 *   lock(pool)          mutex_lock: uninterruptible. It does not give up
 *                       when its task is chosen as an OOM victim, which is
 *                       what makes the TIF_MEMDIE deadlock reproducible.
 *   lockKillable(pool)  mutex_lock_killable: between wait slices, a caller
 *                       whose task is an OOM victim gives up (ERR_KILLED).
 *                       Like the kernel, an uncontended lock is taken even so.
 *   lockAsync(pool, o)  for the main thread (and any thread): Atomics.waitAsync;
 *                       abortable with o.signal, killable with o.killable.
 *   tryLock(pool)       mutex_trylock.
 * Sync waits spin briefly, then Atomics.wait in slices of SLICE_MS, between
 * which they recheck the holder, answer other threads' reclaim requests
 * (a blocked thread's event loop cannot) and refresh the task table's
 * BLOCKED_ON/HOLDER words (TaskTable.blockedOn). A contended sync lock on the
 * main thread throws ERR_WOULD_BLOCK (unless the pool allows main-thread
 * blocking); a sync lock of a mutex this thread already holds throws
 * EDEADLK instead of hanging the thread for good. lockAsync does not: two
 * async flows of one thread may contend, so it waits.
 *
 * Dead holders (robust futex, EOWNERDEAD): a holder whose thread was
 * terminated never unlocks. A waiter that passed the mutex's pool checks,
 * between slices, whether the holder's task is still live in the pool
 * (native.taskLive); if not, it takes the lock over, and `ownerDied` reads
 * true until that acquisition is unlocked — the one critical section that
 * should repair what the dead holder left half done. Holders without a pool
 * are never taken over (nothing says whether a thread id is alive).
 * A thread that closes the pool while it holds a lock bound to it ends its
 * task there, and a waiter may then take the lock over.
 * Limitation: the native ledger reuses task ids; a thread that attaches
 * after the holder died and before a waiter noticed may get the dead
 * holder's id, and the lock then looks held by a live task.
 *
 * Ownership is per thread: only the thread that acquired the lock (and,
 * with a pool, the same task) may unlock it (else ERR_NOT_HOLDER).
 *
 * Memory ordering: every access to the shared words is an Atomics
 * operation (sequentially consistent). unlock() stores STATE = 0 and then
 * reads WAITERS; a waiter adds to WAITERS and then rereads STATE before it
 * sleeps, so either the unlocker sees the waiter and notifies or the
 * waiter sees the lock free. Atomics.wait also compares the word itself.
 * Data written inside the critical section is published by the STATE
 * store of unlock() and acquired by the next locker's compareExchange.
 */
import { isMainThread, threadId } from 'node:worker_threads';
import { DeadlockError, InvalidArgTypeError, KilledError, NotHolderError, PoolClosedError, WouldBlockError } from '../../errors.js';
import { validateOptions } from '../../validators.js';
import type { Pool } from '../../mm/index.js';
import { canBlock, currentTaskId, internals, type PoolInternals, TASK_FLAG } from '../../mm/internal.js';
import { forgetHeld, heldRecord, isHeld, recordHeld, rememberName } from './held.js';
import { initMutexWords, MUTEX_FLAG, MUTEX_WORD, mutexWords, sharedName } from './layout.js';

/** Holder id of a caller that passed no pool: its threadId plus this. */
export const THREAD_HOLDER_BASE = 100_000;
/** Spin iterations before a sync waiter sleeps: a holder on another core often unlocks within microseconds. */
const SPIN = 100;
/** Longest single Atomics.wait of a sync waiter before it rechecks the holder. */
const SLICE_MS = 5;
/** Longest single Atomics.waitAsync of an async waiter before it rechecks the holder. */
const ASYNC_SLICE_MS = 20;
/** Task flags that make a killable wait give up: chosen as an OOM victim (TIF_MEMDIE), or killed. */
const KILL_FLAGS = TASK_FLAG.VICTIM | TASK_FLAG.KILLED;

export interface SharedMutexOptions {
  /** For reports; default `mutex-<id in hex>`. At most 96 bytes of it are shared with other threads. */
  name?: string;
  /** A lock that filesystem reclaim could need (the kernel's fs_reclaim lockdep annotation). */
  reclaimFs?: boolean;
}

/** Structured-clonable: send it to a worker and `SharedMutex.attach()` it there. */
export interface SharedMutexHandle {
  readonly sab: SharedArrayBuffer;
  readonly id: number;
  readonly name: string;
  readonly reclaimFs: boolean;
}

export interface LockAsyncOptions {
  /** Stop waiting: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Give up like lockKillable() when the caller's task is chosen as an OOM victim. */
  killable?: boolean;
}

/** The public method a lock went through (Error.captureStackTrace's constructorOpt). */
type Entry = (...args: never[]) => unknown;

/** SharedMutex.attach() hands the constructor existing words through this. */
let attaching: { words: Int32Array; id: number; name: string; reclaimFs: boolean } | null = null;

function randomId(): number {
  for (;;) {
    const id = crypto.getRandomValues(new Int32Array(1))[0]!;
    if (id !== 0) return id;
  }
}

export class SharedMutex {
  readonly #words: Int32Array;
  readonly #handle: SharedMutexHandle;
  /** The random non-zero id stored in the shared words. */
  readonly id: number;
  readonly name: string;
  readonly reclaimFs: boolean;

  constructor(options: SharedMutexOptions = {}) {
    const a = attaching;
    attaching = null;
    if (a !== null) {
      // SharedMutex.attach(): the words exist already.
      this.#words = a.words;
      this.id = a.id;
      this.name = a.name;
      this.reclaimFs = a.reclaimFs;
      this.#handle = Object.freeze({ sab: a.words.buffer as SharedArrayBuffer, id: a.id, name: a.name, reclaimFs: a.reclaimFs });
      this.#register();
      return;
    }
    validateOptions(options, 'options', ['name', 'reclaimFs'] satisfies (keyof SharedMutexOptions)[]);
    const { name, reclaimFs } = options;
    if (name !== undefined && typeof name !== 'string') {
      throw new InvalidArgTypeError(`options.name must be a string; received ${typeof name}`);
    }
    if (reclaimFs !== undefined && typeof reclaimFs !== 'boolean') {
      throw new InvalidArgTypeError(`options.reclaimFs must be a boolean; received ${typeof reclaimFs}`);
    }
    const id = randomId();
    const fullName = name ?? `mutex-${(id >>> 0).toString(16)}`;
    const words = initMutexWords(id, fullName, reclaimFs === true);
    const sab = words.buffer as SharedArrayBuffer;
    this.#words = words;
    this.id = id;
    this.name = fullName;
    this.reclaimFs = reclaimFs === true;
    this.#handle = Object.freeze({ sab, id, name: fullName, reclaimFs: this.reclaimFs });
    this.#register();
  }

  /** The same mutex in this thread, from a handle another thread sent. */
  static attach(handle: SharedMutexHandle): SharedMutex {
    if (handle === null || typeof handle !== 'object' || !(handle.sab instanceof SharedArrayBuffer)) {
      throw new InvalidArgTypeError('handle must be a mutex handle { sab, ... } from mutex.handle');
    }
    const words = mutexWords(handle.sab);
    if (words === null) throw new InvalidArgTypeError('handle.sab is not a SharedMutex');
    const id = Atomics.load(words, MUTEX_WORD.ID);
    if (handle.id !== undefined && handle.id !== id) {
      throw new InvalidArgTypeError(`handle.id ${String(handle.id)} does not match the mutex's id ${id}`);
    }
    // The full name travels in the handle; the shared words keep its first NAME_MAX bytes.
    const name = typeof handle.name === 'string' ? handle.name : sharedName(words);
    const reclaimFs = (Atomics.load(words, MUTEX_WORD.FLAGS) & MUTEX_FLAG.RECLAIM_FS) !== 0;
    attaching = { words, id, name, reclaimFs };
    return new SharedMutex();
  }

  /** Structured-clonable: pass it in workerData or postMessage. */
  get handle(): SharedMutexHandle {
    return this.#handle;
  }

  /** The holder's id (a task id, or threadId + 100000 for callers without a pool); 0 when free. */
  get holder(): number {
    return Atomics.load(this.#words, MUTEX_WORD.STATE);
  }

  /** Callers waiting for the lock right now, on every thread. */
  get waiters(): number {
    return Atomics.load(this.#words, MUTEX_WORD.WAITERS);
  }

  /** True from an acquisition that took the lock over from a dead holder until it is unlocked (EOWNERDEAD). */
  get ownerDied(): boolean {
    return (Atomics.load(this.#words, MUTEX_WORD.FLAGS) & MUTEX_FLAG.OWNER_DIED) !== 0;
  }

  /** True if this thread (any of its tasks) holds the lock. */
  get heldByThisThread(): boolean {
    const h = heldRecord(this.id);
    return h !== undefined && isHeld(h);
  }

  /** mutex_lock: waits as long as it takes, even if its task is chosen as an OOM victim. */
  lock(pool?: Pool): void {
    this.#lockSync(pool, false, this.lock);
  }

  /** mutex_lock_killable: waits unless its task is chosen as an OOM victim (then throws ERR_KILLED). */
  lockKillable(pool?: Pool): void {
    this.#lockSync(pool, true, this.lockKillable);
  }

  /** mutex_trylock: true if it took the lock (also from a dead holder, see ownerDied). */
  tryLock(pool?: Pool): boolean {
    const { me, core } = this.#caller(pool);
    if (this.#tryAcquire(me, pool, this.tryLock)) return true;
    const h = Atomics.load(this.#words, MUTEX_WORD.STATE);
    return h !== 0 && this.#takeOver(core, pool, h, me, this.tryLock);
  }

  /** Waits without blocking the thread; any thread. */
  async lockAsync(pool?: Pool, options: LockAsyncOptions = {}): Promise<void> {
    validateOptions(options, 'options', ['signal', 'killable'] satisfies (keyof LockAsyncOptions)[]);
    const { signal, killable } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new InvalidArgTypeError('options.signal must be an AbortSignal');
    }
    if (killable !== undefined && typeof killable !== 'boolean') {
      throw new InvalidArgTypeError(`options.killable must be a boolean; received ${typeof killable}`);
    }
    const { me, core } = this.#caller(pool);
    signal?.throwIfAborted();
    const entry = this.lockAsync;
    if (this.#tryAcquire(me, pool, entry)) return;
    const w = this.#words;
    Atomics.add(w, MUTEX_WORD.WAITERS, 1);
    let recorded = -1;
    try {
      for (;;) {
        signal?.throwIfAborted();
        const h = Atomics.load(w, MUTEX_WORD.STATE);
        if (h === 0) {
          if (this.#tryAcquire(me, pool, entry)) return;
          continue;
        }
        if (killable === true) this.#checkKilled(core, me);
        if (this.#takeOver(core, pool, h, me, entry)) return;
        if (core !== null && recorded !== h) {
          core.tasks.blockedOn(me, this.id, h);
          recorded = h;
        }
        const r = Atomics.waitAsync(w, MUTEX_WORD.STATE, h, ASYNC_SLICE_MS);
        if (r.async) await untilWokenOrAborted(r.value, signal);
      }
    } finally {
      Atomics.sub(w, MUTEX_WORD.WAITERS, 1);
      if (recorded !== -1 && core !== null) core.tasks.blockedOn(me, 0, 0);
    }
  }

  /**
   * Unlocks. Only the thread that locked it, and with a pool the same
   * task, may; anyone else gets ERR_NOT_HOLDER.
   */
  unlock(): void {
    const w = this.#words;
    const h = heldRecord(this.id);
    if (h === undefined || !isHeld(h)) {
      if (h !== undefined) forgetHeld(this.id);
      throw new NotHolderError(
        `${this.name}: unlock by a thread that does not hold it (holder ${Atomics.load(w, MUTEX_WORD.STATE) || 'none'})`,
      );
    }
    if (h.pool !== undefined) {
      const caller = currentTaskId() || internals(h.pool).taskId;
      if (caller !== h.holder) {
        throw new NotHolderError(`${this.name}: unlock by task ${caller}; task ${h.holder} holds it`);
      }
    }
    forgetHeld(this.id);
    Atomics.and(w, MUTEX_WORD.FLAGS, ~MUTEX_FLAG.OWNER_DIED);
    Atomics.store(w, MUTEX_WORD.STATE, 0);
    // Pairs with the waiter's WAITERS add and STATE reload (file comment).
    if (Atomics.load(w, MUTEX_WORD.WAITERS) > 0) Atomics.notify(w, MUTEX_WORD.STATE, 1);
  }

  /** lock(); fn(); unlock() — even if fn throws. */
  withLock<T>(fn: () => T, pool?: Pool): T {
    if (typeof fn !== 'function') throw new InvalidArgTypeError(`fn must be a function; received ${typeof fn}`);
    this.lock(pool);
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }

  /** await lockAsync(); await fn(); unlock() — even if fn rejects. */
  async withLockAsync<T>(fn: () => T | Promise<T>, pool?: Pool, options?: LockAsyncOptions): Promise<T> {
    if (typeof fn !== 'function') throw new InvalidArgTypeError(`fn must be a function; received ${typeof fn}`);
    await this.lockAsync(pool, options);
    try {
      return await fn();
    } finally {
      this.unlock();
    }
  }

  // --- internals -------------------------------------------------------------

  #register(): void {
    rememberName(this, this.id, this.name);
  }

  /** The caller's holder id, and the pool's internals when a pool was given (binding the mutex to it). */
  #caller(pool: Pool | undefined): { me: number; core: PoolInternals | null } {
    if (pool === undefined) return { me: threadId + THREAD_HOLDER_BASE, core: null };
    let core: PoolInternals;
    try {
      core = internals(pool);
    } catch {
      throw new InvalidArgTypeError('pool must be a Pool');
    }
    if (core.closed) throw new PoolClosedError();
    const bound = Atomics.compareExchange(this.#words, MUTEX_WORD.POOL, 0, core.poolId);
    if (bound !== 0 && bound !== core.poolId) {
      throw new InvalidArgTypeError(
        `pool: ${this.name} is used with pool ${bound}, not pool ${core.poolId}; a mutex's holders are tasks of one pool`,
      );
    }
    return { me: currentTaskId() || core.taskId, core };
  }

  // `entry` is the public method called: the recorded stack of a reclaimFs
  // lock starts at its caller.
  #tryAcquire(me: number, pool: Pool | undefined, entry: Entry): boolean {
    if (Atomics.compareExchange(this.#words, MUTEX_WORD.STATE, 0, me) !== 0) return false;
    this.#acquired(me, pool, entry);
    return true;
  }

  /** A dead holder's lock, taken over by `me` (robust futex): true if it did. */
  #takeOver(core: PoolInternals | null, pool: Pool | undefined, h: number, me: number, entry: Entry): boolean {
    if (core === null || h >= THREAD_HOLDER_BASE || core.closed) return false;
    if (core.taskLive(h)) return false;
    if (Atomics.compareExchange(this.#words, MUTEX_WORD.STATE, h, me) !== h) return false;
    Atomics.or(this.#words, MUTEX_WORD.FLAGS, MUTEX_FLAG.OWNER_DIED);
    this.#acquired(me, pool, entry);
    return true;
  }

  #acquired(me: number, pool: Pool | undefined, entry: Entry): void {
    const seq = Atomics.add(this.#words, MUTEX_WORD.SEQ, 1) + 1;
    let where: { stack?: string } | null = null;
    if (this.reclaimFs) {
      // captureStackTrace records the frames now and formats them only when
      // .stack is read: cheap enough for every reclaimFs acquisition.
      where = {};
      Error.captureStackTrace(where, entry);
    }
    recordHeld({ words: this.#words, id: this.id, name: this.name, holder: me, seq, pool, where });
  }

  #checkKilled(core: PoolInternals | null, me: number): void {
    if (core !== null && core.tasks.flags(me) & KILL_FLAGS) {
      throw new KilledError(`${this.name}: task ${me} was chosen as an OOM victim while waiting for the lock`);
    }
  }

  #lockSync(pool: Pool | undefined, killable: boolean, entry: Entry): void {
    const { me, core } = this.#caller(pool);
    if (this.#tryAcquire(me, pool, entry)) return;
    const w = this.#words;
    if (this.heldByThisThread) {
      throw new DeadlockError(`${this.name}: this thread already holds it; a sync lock would never wake`);
    }
    if (!(core !== null ? canBlock(core) : !isMainThread)) {
      throw new WouldBlockError(
        `${this.name} is held by ${Atomics.load(w, MUTEX_WORD.STATE)}; a sync lock on the main thread would block the event loop: use lockAsync()`,
      );
    }
    for (let i = 0; i < SPIN; i++) {
      if (Atomics.load(w, MUTEX_WORD.STATE) === 0 && this.#tryAcquire(me, pool, entry)) return;
    }
    Atomics.add(w, MUTEX_WORD.WAITERS, 1);
    let recorded = -1;
    try {
      for (;;) {
        const h = Atomics.load(w, MUTEX_WORD.STATE);
        if (h === 0) {
          if (this.#tryAcquire(me, pool, entry)) return;
          continue;
        }
        if (killable) this.#checkKilled(core, me);
        if (this.#takeOver(core, pool, h, me, entry)) return;
        if (core !== null && recorded !== h) {
          core.tasks.blockedOn(me, this.id, h);
          recorded = h;
        }
        // Answer other threads' reclaim requests, but take no OOM kill here
        // (serviceRequests() would): an uninterruptible sleep does not
        // handle signals, and lockKillable() gives up by throwing instead.
        if (Atomics.wait(w, MUTEX_WORD.STATE, h, SLICE_MS) === 'timed-out' && core !== null) core.serviceReclaimRequests();
      }
    } finally {
      Atomics.sub(w, MUTEX_WORD.WAITERS, 1);
      if (recorded !== -1 && core !== null) core.tasks.blockedOn(me, 0, 0);
    }
  }
}

/** Resolves when the wait ends; rejects with the signal's reason on abort. */
function untilWokenOrAborted(wake: Promise<unknown>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return wake.then(() => undefined);
  // V8 keeps its own record of the wait until the (bounded) slice ends; ours — WAITERS — goes at once.
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    void wake.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
