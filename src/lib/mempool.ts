/**
 * mempool (mm/mempool.c): a pool of `minNr` preallocated blocks that a
 * caller which must make progress can always fall back on, as long as the
 * blocks it takes come back. Shared by every thread that attaches to it.
 *
 * alloc(gfp), in the kernel's order:
 *   1. the underlying pool without direct reclaim or IO (cheap; the
 *      reserve is not touched while memory is free);
 *   2. a reserved element;
 *   3. the pool with the caller's full mask (reclaim allowed);
 *   4. null for callers that cannot sleep;
 *   5. wait for an element to come back — with a 5 s recheck, the
 *      kernel's io_schedule_timeout(5*HZ) — and go round again.
 * NOMEMALLOC | NORETRY | NOWARN are added: the mempool *is* the reserve.
 * __GFP_ZERO is refused (the kernel warns: elements come back dirty).
 * free() refills the reserve first, and wakes a waiter.
 *
 * Shared state (one SharedArrayBuffer; the reserve is a stack of (pfn,
 * gen) pairs guarded by LOCK):
 *   LOCK, CURR_NR, MIN_NR, WAIT_SEQ, ORDER, TASK, DESTROYED, CAPACITY
 * Reserved elements belong to the mempool's own task (oomScoreAdj -1000),
 * so no thread's exit takes them back and no OOM kill chooses them.
 *
 * Locking: LOCK guards the stack, CURR_NR, DESTROYED's setting, and every
 * change of an element's owner to or from the mempool's task; it is held
 * for a few stores and one native setOwner — no wait, no call out — and
 * released in `finally`. It is a task lock (tasks.ts): the word names the
 * holding thread's task (the pool's), so a waiter takes it over at once
 * from a thread terminated inside. A thread that may block waits for a live
 * holder in sleeps that unlock() ends; the main thread spins at most
 * MAIN_SPIN_MS and then does without: alloc yields a wait (ERR_WOULD_BLOCK,
 * or allocAsync awaits), free gives the element to the pool, a shrinking
 * resize and destroy throw ERR_WOULD_BLOCK (destroy before it changes
 * anything).
 * destroy() sets DESTROYED under the lock before it retires the mempool's
 * task, and a refill checks DESTROYED under the lock: so a free() racing
 * destroy() never makes a retired task an owner — it gives its element to
 * the pool instead.
 */
import { InvalidArgTypeError, InvalidGfpError, OutOfRangeError, PoolClosedError, WouldBlockError } from '../errors.js';
import { optionKeys, validateOptions } from '../validators.js';
import { GFP, type Page, type Pool } from '../mm/index.js';
import { canBlock, currentTaskId, driveAsync, driveSync, internals, lockHolder, type LockHost, lockTestPause, type PoolInternals, TASK_FLAG, taskUnlock, tryTaskLock, type Wait } from '../mm/internal.js';

const LOCK = 0;
const CURR_NR = 1;
const MIN_NR = 2;
const WAIT_SEQ = 3;
const ORDER = 4;
const TASK = 5;
const DESTROYED = 6;
const CAPACITY = 7;
const HEADER = 8;

/** The kernel's recheck while waiting for an element: io_schedule_timeout(5*HZ). */
export const MEMPOOL_RECHECK_MS = 5000;

/** How long the main thread spins for LOCK before it does without (Locking above). */
const MAIN_SPIN_MS = 0.1;
/** Longest sleep of a thread waiting for LOCK before it looks at the holder again. */
const LOCK_SLICE_MS = 1;
/** Tries between looks at the clock and at the holder (which asks the native ledger). */
const SPINS_PER_CHECK = 64;
/** #pop() on the main thread when a live holder kept LOCK past MAIN_SPIN_MS. */
const BUSY = Symbol('busy');

export interface MempoolOptions {
  /** Elements kept in reserve. */
  minNr: number;
  /** Block order of each element; default 0. */
  order?: number;
  /** Most elements the reserve can ever hold (resize() limit); default max(2 * minNr, 16). */
  capacity?: number;
  name?: string;
}

export interface MempoolHandle {
  readonly state: SharedArrayBuffer;
}

export interface MempoolStats {
  /** Elements in reserve now. */
  currNr: number;
  minNr: number;
  /** Where this thread's allocations came from (the kernel's order). */
  fromPool: number;
  fromReserve: number;
  fromFullMask: number;
  failedNonBlocking: number;
  waits: number;
  /** Frees that refilled the reserve / went to the pool. */
  refilled: number;
  returned: number;
}

type Source = 'pool' | 'reserve' | 'full';

const MEMPOOL_KEYS = optionKeys<MempoolOptions>()('minNr', 'order', 'capacity', 'name');

export class Mempool {
  readonly #pool: Pool;
  readonly #core: PoolInternals;
  /** This thread's task, which LOCK names while it holds it. */
  readonly #host: LockHost;
  readonly #s: Int32Array;
  readonly #state: SharedArrayBuffer;
  readonly #stats = { fromPool: 0, fromReserve: 0, fromFullMask: 0, failedNonBlocking: 0, waits: 0, refilled: 0, returned: 0 };

  private constructor(pool: Pool, state: SharedArrayBuffer) {
    this.#pool = pool;
    this.#core = internals(pool);
    this.#host = this.#core.lockHost;
    this.#state = state;
    this.#s = new Int32Array(state);
  }

  /** mempool_create(): preallocates minNr elements with GFP_KERNEL, all or none. */
  static create(pool: Pool, options: MempoolOptions): Mempool {
    validateOptions(options, 'mempool options', MEMPOOL_KEYS);
    const core = internals(pool);
    if (core.closed) throw new PoolClosedError();
    const { minNr } = options;
    const order = options.order ?? 0;
    if (typeof minNr !== 'number' || !Number.isInteger(minNr) || minNr < 0 || minNr > core.totalPages) {
      throw new OutOfRangeError(`minNr must be an integer from 0 to ${core.totalPages}; received ${String(minNr)}`);
    }
    if (typeof order !== 'number' || !Number.isInteger(order) || order < 0 || order > core.maxOrder) {
      throw new OutOfRangeError(`order must be an integer from 0 to ${core.maxOrder}; received ${String(order)}`);
    }
    const capacity = options.capacity ?? Math.max(2 * minNr, 16);
    if (!Number.isInteger(capacity) || capacity < minNr || capacity > core.totalPages) {
      throw new OutOfRangeError(`capacity must be an integer from minNr to ${core.totalPages}; received ${String(capacity)}`);
    }
    const state = new SharedArrayBuffer(4 * (HEADER + 2 * capacity));
    const s = new Int32Array(state);
    const task = pool.registerTask({ name: options.name ?? `mempool-order${order}`, oomScoreAdj: -1000 });
    s[ORDER] = order;
    s[TASK] = task.id;
    s[CAPACITY] = capacity;
    s[MIN_NR] = minNr;
    const mp = new Mempool(pool, state);
    const pages = task.run(() => pool.allocBulk(minNr, GFP.KERNEL, order));
    for (const p of pages) mp.#push(p, false);
    return mp;
  }

  /** The same mempool in another thread (which attached to the same pool). */
  static attach(pool: Pool, handle: MempoolHandle): Mempool {
    if (handle === null || typeof handle !== 'object' || !(handle.state instanceof SharedArrayBuffer)) {
      throw new InvalidArgTypeError('handle must come from mempool.handle');
    }
    return new Mempool(pool, handle.state);
  }

  get handle(): MempoolHandle {
    return { state: this.#state };
  }

  get order(): number {
    return this.#s[ORDER]!;
  }

  stats(): MempoolStats {
    return { currNr: Atomics.load(this.#s, CURR_NR), minNr: Atomics.load(this.#s, MIN_NR), ...this.#stats };
  }

  /** mempool_alloc(): a block, or null for a caller that cannot sleep. Blocks in a worker; ERR_WOULD_BLOCK on the main thread. */
  alloc(gfp: number = GFP.KERNEL): Page | null {
    return driveSync(this.#core, this.#alloc(this.#checkGfp(gfp)));
  }

  /** alloc() that waits without blocking, on any thread. */
  allocAsync(gfp: number = GFP.KERNEL, options: { signal?: AbortSignal } = {}): Promise<Page | null> {
    return driveAsync(this.#core, this.#alloc(this.#checkGfp(gfp)), options.signal);
  }

  #checkGfp(gfp: number): number {
    if (Atomics.load(this.#s, DESTROYED)) throw new PoolClosedError('the mempool was destroyed');
    if (typeof gfp !== 'number') throw new InvalidArgTypeError('gfp must be a number');
    if (gfp & GFP.ZERO) throw new InvalidGfpError('mempool_alloc does not support __GFP_ZERO: elements come back with old data');
    return gfp | GFP.NOMEMALLOC | GFP.NORETRY | GFP.NOWARN;
  }

  *#alloc(gfp: number): Generator<Wait, Page | null, void> {
    let gfpTemp = gfp & ~(GFP.DIRECT_RECLAIM | GFP.IO);
    for (;;) {
      // destroy() wakes the waiters: they stop here.
      if (Atomics.load(this.#s, DESTROYED)) throw new PoolClosedError('the mempool was destroyed');
      const seq = Atomics.load(this.#s, WAIT_SEQ);
      const page = this.#fromPool(gfpTemp);
      if (page !== null) {
        this.#count(gfpTemp === gfp ? 'full' : 'pool');
        return page;
      }
      const element = this.#pop();
      if (element === BUSY) {
        // The main thread may not wait for the lock: ERR_WOULD_BLOCK, or
        // allocAsync awaits a change of the lock word.
        const lock = Atomics.load(this.#s, LOCK);
        yield { on: this.#s, word: LOCK, expect: lock, ms: LOCK_SLICE_MS, forMemory: false, why: `task ${lockHolder(lock)} holds the mempool's lock` };
        continue;
      }
      if (element !== null) {
        this.#count('reserve');
        return element;
      }
      // The reserve is empty: try again with the caller's own mask.
      if (gfpTemp !== gfp) {
        gfpTemp = gfp;
        continue;
      }
      if (!(gfp & GFP.DIRECT_RECLAIM)) {
        this.#stats.failedNonBlocking++;
        return null;
      }
      // Wait for an element to come back (mempool_free wakes us), with a
      // 5 s recheck in case memory was freed to the pool instead.
      this.#stats.waits++;
      this.#core.vmstat.add('mempool_waits');
      yield { on: this.#s, word: WAIT_SEQ, expect: seq, ms: MEMPOOL_RECHECK_MS, forMemory: false, stall: true, why: 'waiting for a mempool element' };
      gfpTemp = gfp & ~(GFP.DIRECT_RECLAIM | GFP.IO);
    }
  }

  #count(src: Source): void {
    if (src === 'pool') this.#stats.fromPool++;
    else if (src === 'reserve') this.#stats.fromReserve++;
    else this.#stats.fromFullMask++;
  }

  #fromPool(gfp: number): Page | null {
    try {
      return this.#pool.alloc(gfp, this.#s[ORDER]!);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOMEM') return null;
      throw e;
    }
  }

  /** mempool_free(): refills the reserve first, else back to the pool. */
  free(page: Page): void {
    this.#core.checkPage(page);
    if (page.order !== this.#s[ORDER]) throw new OutOfRangeError(`this mempool holds order-${this.#s[ORDER]} blocks; the page is order ${page.order}`);
    const s = this.#s;
    const refill = !Atomics.load(s, DESTROYED) && Atomics.load(s, CURR_NR) < Atomics.load(s, MIN_NR);
    if (refill) {
      lockTestPause?.('mempool-free');
      if (this.#push(page, true)) {
        this.#stats.refilled++;
        return;
      }
    }
    this.#stats.returned++;
    this.#pool.free(page);
    if (refill) {
      // It went to the pool instead (destroyed meanwhile, full, or the main
      // thread could not wait for the lock): a waiter for an element looks there.
      Atomics.add(s, WAIT_SEQ, 1);
      Atomics.notify(s, WAIT_SEQ);
    }
  }

  /** mempool_resize(): grows (best effort, GFP_KERNEL) or frees the surplus. */
  resize(minNr: number): void {
    if (typeof minNr !== 'number' || !Number.isInteger(minNr) || minNr < 0 || minNr > this.#s[CAPACITY]!) {
      throw new OutOfRangeError(`minNr must be an integer from 0 to the capacity ${this.#s[CAPACITY]}; received ${String(minNr)}`);
    }
    Atomics.store(this.#s, MIN_NR, minNr);
    let surplus: Page | null | typeof BUSY;
    while (Atomics.load(this.#s, CURR_NR) > minNr && (surplus = this.#pop()) !== null) {
      if (surplus === BUSY) throw this.#busy('resize()');
      this.#pool.free(surplus);
    }
    while (Atomics.load(this.#s, CURR_NR) < minNr) {
      const p = this.#fromPool(GFP.KERNEL | GFP.NORETRY);
      if (p === null || !this.#push(p, true)) {
        if (p !== null) this.#pool.free(p);
        break;
      }
    }
  }

  /** mempool_destroy(): every reserved element goes back to the pool. */
  destroy(): void {
    const s = this.#s;
    if (Atomics.load(s, DESTROYED)) return;
    if (!this.#lock()) throw this.#busy('destroy()');
    try {
      if (Atomics.load(s, DESTROYED)) return;
      Atomics.store(s, DESTROYED, 1);
      Atomics.store(s, CURR_NR, 0);
    } finally {
      this.#unlock();
    }
    // Every reserved element is owned by the mempool's task — with any that
    // a holder terminated inside the lock left half moved: retiring the task
    // returns them all.
    this.#core.retireTask(s[TASK]!);
    Atomics.add(s, WAIT_SEQ, 1);
    Atomics.notify(s, WAIT_SEQ);
  }

  #busy(what: string): WouldBlockError {
    return new WouldBlockError(
      `mempool ${what}: task ${lockHolder(Atomics.load(this.#s, LOCK))} holds the mempool's lock; the main thread does not wait for it: try again, or call it in a worker`,
    );
  }

  /**
   * Takes LOCK, from a holder that is gone too. A thread that may block
   * waits for a live holder; the main thread returns false once it has spun
   * MAIN_SPIN_MS (Locking above).
   */
  #lock(): boolean {
    const host = this.#host;
    host.tasks.setFlags(host.taskId, TASK_FLAG.IN_MEMPOOL_LOCK);
    if (tryTaskLock(host, this.#s, LOCK, TASK_FLAG.IN_MEMPOOL_LOCK, false) || this.#lockSlow()) {
      lockTestPause?.('mempool');
      return true;
    }
    host.tasks.clearFlags(host.taskId, TASK_FLAG.IN_MEMPOOL_LOCK);
    return false;
  }

  #lockSlow(): boolean {
    const host = this.#host;
    const s = this.#s;
    const blocking = canBlock(this.#core);
    const deadline = performance.now() + MAIN_SPIN_MS;
    for (let n = 1; ; n++) {
      const check = n % SPINS_PER_CHECK === 0;
      if (tryTaskLock(host, s, LOCK, TASK_FLAG.IN_MEMPOOL_LOCK, check)) return true;
      if (!check) continue;
      if (!blocking) {
        if (performance.now() > deadline) return false;
        continue;
      }
      const seen = Atomics.load(s, LOCK);
      if (lockHolder(seen) !== 0) Atomics.wait(s, LOCK, seen, LOCK_SLICE_MS);
    }
  }

  #unlock(): void {
    const host = this.#host;
    taskUnlock(host, this.#s, LOCK);
    host.tasks.clearFlags(host.taskId, TASK_FLAG.IN_MEMPOOL_LOCK);
    // Pairs with the Atomics.wait in #lockSlow (which rereads the word first).
    Atomics.notify(this.#s, LOCK, 1);
  }

  /**
   * Parks a caller's page in the reserve (owned by the mempool's task).
   * False when full or destroyed, or on the main thread when the lock is busy.
   */
  #push(page: Page, wake: boolean): boolean {
    const s = this.#s;
    if (!this.#lock()) return false;
    try {
      const n = s[CURR_NR]!;
      if (Atomics.load(s, DESTROYED) || n >= s[CAPACITY]!) return false;
      const gen = this.#core.checkPage(page);
      this.#core.setOwner(page.pfn, page.order, gen, s[TASK]!, 0);
      s[HEADER + 2 * n] = page.pfn;
      s[HEADER + 2 * n + 1] = gen;
      // Last: a holder terminated before it leaves the page with the
      // mempool's task (destroy returns it), never an entry it did not fill.
      Atomics.store(s, CURR_NR, n + 1);
    } finally {
      this.#unlock();
    }
    this.#core.markFreed(page);
    if (wake) {
      Atomics.add(s, WAIT_SEQ, 1);
      Atomics.notify(s, WAIT_SEQ);
    }
    return true;
  }

  /** Takes a reserved element for this thread: null when there is none, BUSY (main thread) when the lock is. */
  #pop(): Page | null | typeof BUSY {
    const s = this.#s;
    if (!this.#lock()) return BUSY;
    try {
      const n = s[CURR_NR]!;
      if (n === 0) return null;
      const pfn = s[HEADER + 2 * (n - 1)]!;
      const gen = s[HEADER + 2 * (n - 1) + 1]!;
      // First: a holder terminated before the setOwner leaves the element
      // with the mempool's task (destroy returns it), never an entry naming
      // a page that someone else owns.
      Atomics.store(s, CURR_NR, n - 1);
      // Under the lock: destroy() retires the mempool's task only after its
      // own turn at the lock, so the element is still the mempool's here.
      const task = currentTaskId();
      this.#core.setOwner(pfn, s[ORDER]!, gen, task, s[TASK]!);
      return this.#core.pageFor(pfn, s[ORDER]!, gen, task);
    } finally {
      this.#unlock();
    }
  }
}
