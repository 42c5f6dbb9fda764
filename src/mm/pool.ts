/**
 * Pool: a bounded page pool over one mmap'd region, shared by every thread
 * that attaches to it. This file holds the public class, the fast path and
 * the bookkeeping of pages in this thread; what GFP flags mean lives in
 * gfp.ts, how deep each caller may go in the native zone.
 */
import { Attachment } from './attachment.js';
import { checkAttach, resolveCreate } from './setup.js';
import {
  type AllocAsyncOptions,
  ATTACH_OPTION_KEYS,
  type AttachOptions,
  asyncSignal,
  checkOrder,
  POOL_OPTION_KEYS,
  type PoolOptions,
  resolvePcp,
  resolvePolicy,
} from './options.js';
import { currentReservation, type Reservation, reserve, reserveAsync, type ReserveAsyncOptions, type ReserveOptions } from './reserve.js';
import { currentTaskId, Task, type TaskOptions } from './task.js';
import { TASK_FLAG } from './task-table.js';
import { AllocError, InvalidArgTypeError, NofailError, PoolClosedError } from '../errors.js';
import { validateOptions } from '../validators.js';
import { FaultInjector, type FaultInjectOptions } from './debug/faultinject.js';
import { allocFailureText, formatGfp, GFP, type GfpMask, isPlainMask, validateGfp } from './gfp.js';
import { applyScope, currentScope, GFP_SCOPE } from './scope.js';
import { ALLOC, type AttachResult, GEN_SCALE, native } from '../binding/native.js';
import {
  checkPage,
  makePage,
  markFreed,
  type Page,
  type PageDescriptor,
  pageGen,
  pageTask,
  pageView,
  setPageTask,
} from './page.js';
import type { Shrinker } from './reclaim/shrinker.js';
import { adopt, adoptBulk, allocBulk, freeBulk, transfer, transferBulk } from './bulk.js';
import { bufferOf, checkBufferSize, orderForSize, PoolBuffer } from './buffer.js';
import { contextsUsed } from './context.js';
import { checkFsReclaim } from './debug/lockdep.js';
import { cacheableOrder, PCP_MAX_ORDER } from './pcp.js';
import { handOut, touchesBytes } from './handout.js';
import { allocSlowpath } from './slowpath.js';
import { collectPressure, collectStats, type PoolPressure, type PoolStats } from './stats/stats.js';
import { driveAsync, driveSync } from './wait.js';
import { resolveWatermarks, type Watermarks } from './watermarks.js';

export type { AllocAsyncOptions, AttachOptions, PoolOptions } from './options.js';

/** A structured-clonable handle: send it to a worker and `Pool.attach()` it there. */
export interface PoolHandle {
  readonly id: number;
  readonly nonce: number;
  readonly control: SharedArrayBuffer;
}

/**
 * The thread's attachment behind a Pool. For mm/internal.ts, which hands
 * libraries a narrow view of it (PoolInternals), and for tests; nothing
 * else may import it (.dependency-cruiser.cjs).
 */
export let attachmentOf: (pool: Pool) => Attachment;

export class Pool {
  #core: Attachment;
  #handle: PoolHandle;
  #stats = new Float64Array(native.statsLength);
  #bulkScratch = { out: new Int32Array(2 * 64) };
  /** Pages in the pool. */
  readonly totalPages: number;
  /** Largest order this pool hands out. */
  readonly maxOrder: number;
  /** This thread's task id in the pool. */
  readonly taskId: number;

  private constructor(r: AttachResult, control: SharedArrayBuffer, o: AttachOptions) {
    this.#handle = Object.freeze({ id: r.id, nonce: r.nonce, control });
    this.#core = new Attachment(r, control, resolvePcp(o.pcp), resolvePolicy(o));
    this.totalPages = this.#core.totalPages;
    this.maxOrder = this.#core.maxOrder;
    this.taskId = this.#core.taskId;
  }

  static {
    attachmentOf = (pool) => {
      if (!(#core in pool)) throw new InvalidArgTypeError('not a Pool');
      return pool.#core;
    };
  }

  /** Creates a pool in this thread; other threads attach with `Pool.attach(pool.handle)`. */
  static create(options: PoolOptions = {}): Pool {
    validateOptions(options, 'options', POOL_OPTION_KEYS);
    const c = resolveCreate(options);
    const r = native.create(c.options, c.ctl);
    const pool = new Pool(r, c.control, options);
    // PSI averages are sampled every 2 s (an unref'd timer on the creating thread).
    pool.#core.stopSampler = pool.#core.psi.startSampler();
    return pool;
  }

  /** Attaches this thread to a pool created elsewhere. */
  static attach(handle: PoolHandle, options: AttachOptions = {}): Pool {
    validateOptions(options, 'options', ATTACH_OPTION_KEYS);
    checkAttach(handle, options);
    const r = native.attach(handle.id, handle.nonce, new Int32Array(handle.control));
    return new Pool(r, handle.control, options);
  }

  /** Structured-clonable: pass it in workerData or postMessage. */
  get handle(): PoolHandle {
    return this.#handle;
  }

  /** True once close() was called in this thread. */
  get closed(): boolean {
    return this.#core.closed;
  }

  #slot(): number {
    if (this.#core.closed) throw new PoolClosedError();
    return this.#core.slot;
  }

  /**
   * Allocates a block of 2^order pages. The fast path takes it while free
   * pages stay above `low` (order 0 from this thread's page cache); below
   * that the slow path (slowpath.ts) wakes kswapd, reclaims, retries, and
   * waits as the mask allows. Throws AllocError (ENOMEM) on failure, and
   * ERR_WOULD_BLOCK on the main thread where it would have to wait.
   */
  alloc(gfp: GfpMask = GFP.KERNEL, order = 0): Page {
    // The fast path, small enough to inline: a block of order 0 to
    // PCP_MAX_ORDER straight from this thread's page cache when nothing
    // needs the prologue (a common mask; no scope, task or reservation ever
    // entered; no debug option) and the cache may hand one out now
    // (Attachment.tryTakeCached()). V8 inlines it, with the page's `bytes`
    // and free()'s fast path, into a caller's loop only while all of their
    // bytecode fits its inlining budget: keep them small, and put the cold
    // code behind calls.
    const core = this.#core;
    if (cacheableOrder(order) && !contextsUsed && core.fastPathOk && isPlainMask(gfp)) {
      const page = core.tryTakeCached(order);
      if (page !== null) return page;
    }
    return this.#allocSlow(gfp, order);
  }

  #allocSlow(gfp: GfpMask, order: number): Page {
    const core = this.#core;
    if (core.closed) throw new PoolClosedError();
    if (gfp !== GFP.KERNEL) validateGfp(gfp);
    if (order !== 0) checkOrder(order, core.maxOrder);
    const a = this.#prologue(gfp, order);
    if (a.page !== null) return a.page;
    try {
      const page = this.#fast(a.gfp, order, a.task);
      if (page !== null) return page;
      const v = driveSync(core, allocSlowpath(this.#request(a.gfp, order, a.scope, a.task)));
      if (v < 0) throw this.#failure(a.gfp, order);
      return this.#page(v, order, a.gfp, a.task);
    } catch (e) {
      a.reservation?.uncharge(a.charged);
      throw e;
    }
  }

  /**
   * alloc() that waits without blocking the thread (Atomics.waitAsync), on
   * any thread. Rejects with the signal's reason on abort and with a
   * TimeoutError after timeoutMs; either way no waiter is left behind.
   */
  async allocAsync(gfp: GfpMask = GFP.KERNEL, order = 0, options: AllocAsyncOptions = {}): Promise<Page> {
    const core = this.#core;
    if (core.closed) throw new PoolClosedError();
    validateGfp(gfp);
    checkOrder(order, core.maxOrder);
    const makeSignal = asyncSignal(options);
    options.signal?.throwIfAborted();
    const a = this.#prologue(gfp, order);
    if (a.page !== null) return a.page;
    try {
      const page = this.#fast(a.gfp, order, a.task);
      if (page !== null) return page;
      const v = await driveAsync(core, allocSlowpath(this.#request(a.gfp, order, a.scope, a.task)), makeSignal());
      if (v < 0) throw this.#failure(a.gfp, order);
      return this.#page(v, order, a.gfp, a.task);
    } catch (e) {
      a.reservation?.uncharge(a.charged);
      throw e;
    }
  }

  /**
   * What every allocation off the inline fast path does first: deliver a
   * pending OOM kill, apply the GFP scope, lockdep and fault injection,
   * find the task it is charged to, and the reservation scope (a token, or
   * a charge that grants GFP.RESERVE rights; outside a reservation
   * GFP.RESERVE grants nothing). With nothing of that in force it costs a
   * few loads.
   */
  #prologue(gfp: number, order: number) {
    const core = this.#core;
    if (core.ctl[core.sigWord]! & TASK_FLAG.SIGPENDING) core.kills.deliver();
    if (!contextsUsed && !core.debugChecks) return { page: null, gfp: gfp & ~GFP.RESERVE, task: 0, scope: 0, reservation: undefined, charged: 0 };
    const scope = currentScope();
    if (scope !== 0) gfp = applyScope(gfp, scope);
    if (core.lockdep) checkFsReclaim(core, gfp, order);
    if (core.faults !== null && core.faults.shouldFail(gfp, order)) throw this.#injected(gfp, order);
    const task = currentTaskId();
    const reservation = currentReservation();
    let charged = 0;
    if (reservation !== undefined) {
      if (reservation.mode === 'tokens' && order === 0) {
        const v = reservation.takeToken(task);
        if (v >= 0) return { page: this.#page(v, 0, gfp, task), gfp, task, scope, reservation, charged };
      }
      if (gfp & GFP.RESERVE && reservation.charge(1 << order)) charged = 1 << order;
    }
    if (charged === 0) gfp &= ~GFP.RESERVE;
    return { page: null, gfp, task, scope, reservation: charged ? reservation : undefined, charged };
  }

  #request(gfp: number, order: number, scope: number, task: number) {
    const core = this.#core;
    return { core, gfp, order, task, reclaimContext: core.inReclaim > 0 || (scope & GFP_SCOPE.NORECLAIM) !== 0 };
  }

  /**
   * The fast path after the prologue: above LOW (plus the reservations the
   * caller may not use). Orders 0 to PCP_MAX_ORDER of the thread's own task
   * come from the page cache, each order's list refilled in one batch when
   * empty; anything else is one native allocation at LOW, and so is an
   * order > 0 block when the batch does not fit above LOW but the one block
   * does. Null sends the caller to the slow path.
   */
  #fast(gfp: number, order: number, task: number): Page | null {
    const core = this.#core;
    const reserve = gfp & GFP.RESERVE ? ALLOC.RESERVE : 0;
    const pcp = core.pcp;
    if (order <= PCP_MAX_ORDER && pcp !== null && task === 0) {
      core.checkDrain();
      if (!core.aboveLow(reserve !== 0)) return null;
      if (pcp.lists[order]!.count > 0 || pcp.refill(core.slot, order, ALLOC.WMARK_LOW | reserve, core.freePages() < core.wmark.high)) {
        return this.#handOut(core.takeCached(order), gfp);
      }
      if (order === 0) return null;
    }
    const v = native.alloc(core.slot, order, ALLOC.WMARK_LOW | reserve, task);
    return v < 0 ? null : this.#page(v, order, gfp, task);
  }

  /** A handle for a block native code allocated (pfn * GEN_SCALE + gen), charged to `task`. */
  #page(v: number, order: number, gfp: number, task: number): Page {
    const pfn = Math.floor(v / GEN_SCALE);
    const page = makePage(this.#core, pfn, order, v - pfn * GEN_SCALE);
    if (task !== 0) setPageTask(page, task);
    return this.#handOut(page, gfp);
  }

  /** The poison check and __GFP_ZERO (handout.ts); a block whose bytes cannot be reached goes back, not astray. */
  #handOut(page: Page, gfp: number): Page {
    if (!touchesBytes(this.#core, gfp)) return page;
    try {
      handOut(this.#core, page, gfp);
    } catch (e) {
      this.free(page);
      throw e;
    }
    return page;
  }

  #failure(gfp: number, order: number): AllocError {
    return new AllocError(allocFailureText(gfp, order), { order, gfp });
  }

  #injected(gfp: number, order: number): AllocError {
    this.#core.vmstat.add('fault_injected');
    return new AllocError(`page allocation failure (injected): order:${order}, mode:${formatGfp(gfp)}`, { order, gfp });
  }

  /** Returns a page to the pool. */
  free(page: Page): void {
    // The fast path: a live block of order 0 to PCP_MAX_ORDER of this
    // thread's own task goes into the page cache while it has room and takes
    // frees, and no debug option is on (Attachment.cacheFree()).
    if (!this.#core.cacheFree(page)) this.#freeSlow(page);
  }

  #freeSlow(page: Page): void {
    const core = this.#core;
    if (core.ctl[core.sigWord]! & TASK_FLAG.SIGPENDING) core.kills.deliver();
    checkPage(page, core);
    if (core.fill >= 0) page.bytes.fill(core.fill);
    const pcp = core.pcp;
    if (page.order <= PCP_MAX_ORDER && pcp !== null && pageTask(page) === 0 && core.cacheTakesFrees()) {
      markFreed(page);
      pcp.push(page.order, page.pfn, pageGen(page), pageView(page));
      if (pcp.count > pcp.high) pcp.overflow(core.slot, core.freePages() < core.wmark.high); // push and a drain publish the size
      return;
    }
    native.free(core.slot, page.pfn, page.order, pageGen(page));
    markFreed(page);
    core.wakeWaiters();
  }

  /**
   * Allocates `n` blocks of 2^order pages in one native call: all or none,
   * checking the watermark for all n at once (bulk.ts). Never reclaims.
   */
  allocBulk(n: number, gfp: GfpMask = GFP.KERNEL, order = 0): Page[] {
    this.#slot();
    return allocBulk(this.#core, n, gfp, order, this.#bulkScratch);
  }

  /** Frees many pages in one native call. A bad entry throws after the ones before it were freed. */
  freeBulk(pages: readonly Page[]): void {
    this.#slot();
    freeBulk(this.#core, pages);
  }

  /**
   * Gives a page up so that another thread can `adopt()` it; the page is
   * unusable here afterwards. The descriptor is plain data.
   */
  transfer(page: Page): PageDescriptor {
    return transfer(this.#core, page);
  }

  /** transfer() for many pages at once (all checked before any moves): descriptors in the same order. */
  transferBulk(pages: readonly Page[]): PageDescriptor[] {
    this.#slot();
    return transferBulk(this.#core, pages);
  }

  /** adopt() for many descriptors at once; on a bad one, those adopted before it go back in transit. */
  adoptBulk(descriptors: readonly PageDescriptor[]): Page[] {
    this.#slot();
    return adoptBulk(this.#core, descriptors);
  }

  /** Takes ownership of a page another thread transferred; returns this thread's handle to it. */
  adopt(descriptor: PageDescriptor): Page {
    this.#slot();
    return adopt(this.#core, descriptor);
  }

  stats(): PoolStats {
    return collectStats(this.#core, this.#stats);
  }

  /** Free and reserved pages, watermarks and PSI: the cheap part of stats(), for per-request admission checks. */
  pressure(): PoolPressure {
    return collectPressure(this.#core);
  }

  /**
   * A Node Buffer over `page`'s memory, no copy: `length` bytes from its
   * start, by default the whole block. Valid while the page is (buffer.ts).
   */
  buffer(page: Page, length?: number): Buffer {
    checkPage(page, this.#core);
    return bufferOf(page, length);
  }

  /** Allocates the smallest block that holds `size` bytes; `buf` is exactly `size` bytes of it. */
  allocBuffer(size: number, gfp: GfpMask = GFP.KERNEL): PoolBuffer {
    checkBufferSize(size, this.#core.maxOrder);
    return PoolBuffer.of(this.alloc(gfp, orderForSize(size)), size, this);
  }

  /** allocBuffer() that waits without blocking the thread, like allocAsync(). */
  async allocBufferAsync(size: number, gfp: GfpMask = GFP.KERNEL, options: AllocAsyncOptions = {}): Promise<PoolBuffer> {
    checkBufferSize(size, this.#core.maxOrder);
    return PoolBuffer.of(await this.allocAsync(gfp, orderForSize(size), options), size, this);
  }

  /**
   * Registers a shrinker: a cache that gives pages back under pressure.
   * Its count() and scan() run only on this thread — for this thread's
   * allocations, for kswapd here, and on request from other threads' direct
   * reclaim. Returns a function that unregisters it.
   */
  registerShrinker(shrinker: Shrinker): () => void {
    this.#slot();
    return this.#core.reclaim.register(shrinker);
  }

  /**
   * Registers a logical task: allocations inside task.run(fn) are charged to
   * it, and the OOM killer weighs it by its pages and oomScoreAdj.
   */
  registerTask(options: TaskOptions): Task {
    this.#slot();
    return Task.create(this.#core, options);
  }

  /**
   * Takes a reservation of `pages` (reserve.ts): 'watermark' (default)
   * raises every watermark by `pages` for callers without GFP.RESERVE;
   * 'tokens' takes the pages now. Waits — reclaiming — while free memory is
   * below the raised mark: blocks in a worker, throws ERR_WOULD_BLOCK on
   * the main thread (use reserveAsync there).
   */
  reserve(pages: number, options: ReserveOptions = {}): Reservation {
    return reserve(this.#core, pages, options);
  }

  /** reserve() that waits without blocking; abortable, and nothing stays reserved on abort or timeout. */
  async reserveAsync(pages: number, options: ReserveAsyncOptions = {}): Promise<Reservation> {
    return reserveAsync(this.#core, pages, options);
  }

  /** Fault injection for this thread's allocations (fail_page_alloc); null turns it off. */
  faultInject(options: FaultInjectOptions | null): void {
    this.#slot();
    this.#core.setFaults(options === null ? null : new FaultInjector(options));
  }

  /**
   * Changes the zone's watermarks (pages or size strings) for every
   * thread; missing levels are spaced as the kernel spaces them.
   */
  setWatermarks(watermarks: Partial<Record<keyof Watermarks, number | string>>): Watermarks {
    const wm = resolveWatermarks(watermarks, this.totalPages);
    native.setWatermarks(this.#slot(), wm.min, wm.low, wm.high);
    return wm;
  }

  /**
   * A PSI trigger (/proc/pressure/memory): calls back when tasks stalled
   * for at least stallUs within a windowUs window (500 ms .. 10 s), at most
   * once per window. Returns a function that removes it.
   */
  psiTrigger(
    trigger: { kind: 'some' | 'full'; stallUs: number; windowUs: number },
    callback: (event: { kind: 'some' | 'full'; stallUs: number; windowUs: number; growthUs: number }) => void,
  ): () => void {
    this.#slot();
    return this.#core.psi.trigger(trigger, callback);
  }

  /**
   * Checks every accounting identity of the pool (free lists, counters,
   * ledger; O(pages)) and throws an ERR_INVARIANT error naming the first
   * that does not hold. For tests and debugging.
   */
  checkInvariants(): void {
    const why = native.check(this.#slot());
    if (why !== null) throw new NofailError('ERR_INVARIANT', `pool accounting broken: ${why}`);
  }

  /**
   * Detaches this thread: its remaining pages go back to the pool, its views
   * become zero-length, and every later call throws ERR_POOL_CLOSED. The
   * pool is unmapped when the last thread detaches. Returns the pages that
   * were returned.
   */
  close(): number {
    return this.#core.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal for tests: the native metadata word of a pfn. */
  _meta(pfn: number): { state: 'tail' | 'free' | 'allocated'; order: number; owner: number; gen: number } {
    const [state, order, owner, gen] = native.meta(this.#slot(), pfn);
    return { state: (['tail', 'free', 'allocated'] as const)[state]!, order, owner, gen };
  }
}
