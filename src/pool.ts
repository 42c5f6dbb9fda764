/**
 * Pool: a bounded page pool over one mmap'd region, shared by every thread
 * that attaches to it. This file holds the public class, the fast path and
 * the bookkeeping of pages in this thread; what GFP flags mean lives in
 * gfp.ts, how deep each caller may go in the native zone.
 */
import { CONTROL_BYTES, CTL } from './control.js';
import {
  AllocError,
  BadPageError,
  InvalidArgTypeError,
  NofailError,
  OutOfRangeError,
  PoolClosedError,
} from './errors.js';
import { formatGfp, GFP, type GfpMask, gfpToAllocFlags, validateGfp } from './gfp.js';
import { ALLOC, GEN_SCALE, native, STAT } from './native.js';
import { CTL_CACHED_SLOTS, PoolCore } from './core.js';
import { checkPage, makePage, markFreed, markLive, markMoved, Page, type PageDescriptor, pageGen, pageView } from './page.js';
import { PCP_BATCH, PCP_HIGH } from './pcp.js';
import { PAGE_SIZE, parseSize } from './size.js';
import { resolveWatermarks, type Watermarks } from './watermarks.js';

export interface PoolOptions {
  /** Bytes, or a size string like '64MiB'. Rounded up to whole pages. Default '64MiB'. */
  size?: number | string;
  /** Largest buddy order: blocks up to 4096 << maxOrder bytes. 0..15, default 10 (4 MiB). */
  maxOrder?: number;
  /** Pages or size strings; kernel-style defaults (DESIGN §3) for what is omitted. */
  watermarks?: Partial<Record<keyof Watermarks, number | string>>;
  /** Fault every page in at creation (MAP_POPULATE). */
  populate?: boolean;
  /** Lock the region in memory (mlock; RLIMIT_MEMLOCK applies). */
  mlock?: boolean;
  /** Ask for transparent huge pages (MADV_HUGEPAGE). */
  hugepages?: boolean;
  /** Give free blocks of at least this order back to the kernel (MADV_DONTNEED). Default: never. */
  releaseFreedOrder?: number;
  /**
   * This thread's page cache for order-0 pages (the kernel's per-CPU lists):
   * `false` to disable, or `{ batch, high }`. Default { batch: 63, high: 252 }.
   * Each thread that attaches chooses its own.
   */
  pcp?: false | { batch?: number; high?: number };
}

/** Per-thread options of Pool.attach(). */
export interface AttachOptions {
  pcp?: PoolOptions['pcp'];
}

/** A structured-clonable handle: send it to a worker and `Pool.attach()` it there. */
export interface PoolHandle {
  readonly id: number;
  readonly nonce: number;
  readonly control: SharedArrayBuffer;
}

export interface PoolStats {
  totalPages: number;
  freePages: number;
  allocatedPages: number;
  reservedPages: number;
  watermarks: Watermarks;
  /** Free blocks per order, 0..maxOrder (/proc/buddyinfo). */
  buddyinfo: number[];
  /** Pages owned by this thread's task (its page cache included). */
  threadPages: number;
  /** Pages in this thread's page cache. */
  cachedPages: number;
  /** Pages in every thread's page cache, by task id (threads that published one). */
  cachedByTask: Record<number, number>;
  /** Live tasks (attached threads and registered tasks). */
  tasks: number;
  counters: {
    allocs: number;
    frees: number;
    pgalloc: number;
    pgfree: number;
    allocFailWatermark: number;
    allocFailFragmented: number;
  };
}

const DEFAULT_SIZE = 64 * 1024 * 1024;

function checkOrder(order: unknown, maxOrder: number): asserts order is number {
  if (typeof order !== 'number') {
    throw new InvalidArgTypeError(`order must be a number; received ${typeof order}`);
  }
  if (!Number.isInteger(order) || order < 0 || order > maxOrder) {
    throw new OutOfRangeError(`order must be an integer from 0 to ${maxOrder}; received ${order}`);
  }
}

function checkBool(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new InvalidArgTypeError(`${name} must be a boolean; received ${typeof value}`);
  return value;
}

function resolvePcp(option: unknown): { batch: number; high: number } | false {
  if (option === undefined) return { batch: PCP_BATCH, high: PCP_HIGH };
  if (option === false) return false;
  if (option === null || typeof option !== 'object') {
    throw new InvalidArgTypeError('pcp must be false or an object { batch, high }');
  }
  const o = option as { batch?: unknown; high?: unknown };
  const batch = o.batch ?? PCP_BATCH;
  const high = o.high ?? Math.max(PCP_HIGH, 4 * (batch as number));
  if (typeof batch !== 'number' || !Number.isInteger(batch) || batch < 1 || batch > 4096) {
    throw new OutOfRangeError(`pcp.batch must be an integer from 1 to 4096; received ${String(batch)}`);
  }
  if (typeof high !== 'number' || !Number.isInteger(high) || high < batch || high > 65536) {
    throw new OutOfRangeError(`pcp.high must be an integer from pcp.batch to 65536; received ${String(high)}`);
  }
  return { batch, high };
}

export class Pool {
  #core: PoolCore;
  #handle: PoolHandle;
  #stats = new Float64Array(native.statsLength);
  #bulk = new Int32Array(2 * 64);
  /** Pages in the pool. */
  readonly totalPages: number;
  /** Largest order this pool hands out. */
  readonly maxOrder: number;
  /** This thread's task id in the pool. */
  readonly taskId: number;

  private constructor(r: readonly number[], control: SharedArrayBuffer, pcp: unknown) {
    const ctl = new Int32Array(control);
    this.#handle = Object.freeze({ id: r[1]!, nonce: r[2]!, control });
    const s = new Float64Array(native.statsLength);
    native.stats(r[0]!, s);
    const wmark = { min: s[STAT.min]!, low: s[STAT.low]!, high: s[STAT.high]! };
    this.#core = new PoolCore(r, ctl, wmark, resolvePcp(pcp));
    this.totalPages = this.#core.totalPages;
    this.maxOrder = this.#core.maxOrder;
    this.taskId = this.#core.taskId;
  }

  /** Creates a pool in this thread; other threads attach with `Pool.attach(pool.handle)`. */
  static create(options: PoolOptions = {}): Pool {
    if (options === null || typeof options !== 'object') {
      throw new InvalidArgTypeError(`options must be an object; received ${options === null ? 'null' : typeof options}`);
    }
    const bytes = parseSize(options.size ?? DEFAULT_SIZE, 'size');
    const pages = Math.ceil(bytes / PAGE_SIZE);
    if (pages < 1 || pages > 2 ** 29 - 1) {
      throw new OutOfRangeError(`size must be from 4096 bytes to 2 TiB; received ${options.size}`);
    }
    const maxOrder = options.maxOrder ?? 10;
    if (typeof maxOrder !== 'number') throw new InvalidArgTypeError('maxOrder must be a number');
    if (!Number.isInteger(maxOrder) || maxOrder < 0 || maxOrder > 15) {
      throw new OutOfRangeError(`maxOrder must be an integer from 0 to 15; received ${maxOrder}`);
    }
    const wm = resolveWatermarks(options.watermarks, pages);
    const flags =
      (checkBool(options.populate, 'populate') ? 1 : 0) |
      (checkBool(options.mlock, 'mlock') ? 2 : 0) |
      (checkBool(options.hugepages, 'hugepages') ? 4 : 0);
    let releaseOrder = -1;
    if (options.releaseFreedOrder !== undefined) {
      checkOrder(options.releaseFreedOrder, maxOrder);
      releaseOrder = options.releaseFreedOrder;
    }
    resolvePcp(options.pcp);
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const ctl = new Int32Array(control);
    const r = native.create(pages * PAGE_SIZE, maxOrder, wm.min, wm.low, wm.high, flags, releaseOrder, ctl);
    return new Pool(r, control, options.pcp);
  }

  /** Attaches this thread to a pool created elsewhere. */
  static attach(handle: PoolHandle, options: AttachOptions = {}): Pool {
    if (
      handle === null ||
      typeof handle !== 'object' ||
      typeof handle.id !== 'number' ||
      typeof handle.nonce !== 'number' ||
      !(handle.control instanceof SharedArrayBuffer)
    ) {
      throw new InvalidArgTypeError('handle must be a pool handle { id, nonce, control } from pool.handle');
    }
    if (handle.control.byteLength < CONTROL_BYTES) throw new BadPageError('handle.control is not a pool control block');
    resolvePcp(options?.pcp);
    const r = native.attach(handle.id, handle.nonce, new Int32Array(handle.control));
    return new Pool(r, handle.control, options?.pcp);
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
   * pages stay above `low`; otherwise the caller may go below `min` as deep
   * as its flags allow (DESIGN §3). Throws AllocError (ENOMEM) when even
   * that fails.
   */
  alloc(gfp: GfpMask = GFP.KERNEL, order = 0): Page {
    const core = this.#core;
    if (core.closed) throw new PoolClosedError();
    if (gfp !== GFP.KERNEL) validateGfp(gfp);
    if (order !== 0) checkOrder(order, core.maxOrder);
    const reserve = gfp & GFP.RESERVE ? ALLOC.RESERVE : 0;
    const pcp = core.pcp;
    if (order === 0 && pcp !== null) {
      // The fast path: above LOW (plus any reservation), from this thread's cache.
      if (core.ctl[CTL.DRAIN_GEN] !== pcp.drainSeen) core.checkDrain();
      if (core.freePages() > core.wmark.low + (reserve ? 0 : core.reserved())) {
        if (pcp.count > 0 || pcp.refill(core.slot, ALLOC.WMARK_LOW | reserve)) {
          const i = --pcp.count;
          const e = pcp.entries;
          const page = makePage(core, e[2 * i]!, 0, e[2 * i + 1]!, pcp.views[i]);
          core.publishCached();
          if (gfp & GFP.ZERO) page.bytes.fill(0);
          return page;
        }
      }
    }
    let v = native.alloc(core.slot, order, ALLOC.WMARK_LOW | reserve, 0);
    if (v < 0) {
      // Below LOW: the caller may go as deep below MIN as its flags allow.
      // Cached pages count as allocated; give them back so they can be had.
      if (pcp !== null && pcp.count > 0) {
        pcp.drain(core.slot);
        core.publishCached();
      }
      v = native.alloc(core.slot, order, gfpToAllocFlags(gfp), 0);
    }
    if (v < 0) throw this.#allocFailure(gfp, order);
    const pfn = Math.floor(v / GEN_SCALE);
    const page = makePage(core, pfn, order, v - pfn * GEN_SCALE);
    if (gfp & GFP.ZERO) page.bytes.fill(0);
    return page;
  }

  #allocFailure(gfp: number, order: number): AllocError {
    return new AllocError(`page allocation failure: order:${order}, mode:${formatGfp(gfp)}`, { order, gfp });
  }

  /** Returns a page to the pool. */
  free(page: Page): void {
    const core = this.#core;
    checkPage(page, core);
    const pcp = core.pcp;
    // Into this thread's cache, unless another thread is waiting for memory
    // or asked for caches to be drained: then straight back to the zone.
    if (page.order === 0 && pcp !== null && core.ctl[CTL.WAITERS] === 0 && core.ctl[CTL.DRAIN_GEN] === pcp.drainSeen) {
      markFreed(page);
      const i = pcp.count++;
      pcp.entries[2 * i] = page.pfn;
      pcp.entries[2 * i + 1] = pageGen(page);
      pcp.views[i] = pageView(page);
      if (pcp.count > pcp.high) pcp.drain(core.slot, pcp.batch);
      core.publishCached();
      return;
    }
    native.free(core.slot, page.pfn, page.order, pageGen(page));
    markFreed(page);
    core.wakeWaiters();
  }

  /**
   * Allocates `n` blocks of 2^order pages in one native call: all or none,
   * checking the watermark for all n at once.
   */
  allocBulk(n: number, gfp: GfpMask = GFP.KERNEL, order = 0): Page[] {
    const slot = this.#slot();
    if (typeof n !== 'number') throw new InvalidArgTypeError(`n must be a number; received ${typeof n}`);
    if (!Number.isInteger(n) || n < 0 || n > this.totalPages) {
      throw new OutOfRangeError(`n must be an integer from 0 to ${this.totalPages}; received ${n}`);
    }
    validateGfp(gfp);
    checkOrder(order, this.maxOrder);
    if (this.#bulk.length < 2 * n) this.#bulk = new Int32Array(2 * n);
    const out = this.#bulk;
    let r = native.allocBulk(slot, n, order, ALLOC.WMARK_LOW | (gfp & GFP.RESERVE ? ALLOC.RESERVE : 0), 0, out);
    if (r < 0) {
      const pcp = this.#core.pcp;
      if (pcp !== null && pcp.count > 0) {
        pcp.drain(slot);
        this.#core.publishCached();
      }
      r = native.allocBulk(slot, n, order, gfpToAllocFlags(gfp), 0, out);
    }
    if (r < 0) throw this.#allocFailure(gfp, order);
    const pages = new Array<Page>(n);
    for (let i = 0; i < n; i++) pages[i] = makePage(this.#core, out[2 * i]!, order, out[2 * i + 1]!);
    if (gfp & GFP.ZERO) for (const p of pages) p.bytes.fill(0);
    return pages;
  }

  /** Frees many pages in one native call. A bad entry throws after the ones before it were freed. */
  freeBulk(pages: readonly Page[]): void {
    if (!Array.isArray(pages)) throw new InvalidArgTypeError('pages must be an array of Page');
    const slot = this.#slot();
    const refs = new Int32Array(3 * pages.length);
    let i = 0;
    try {
      // Mark as we validate, so the same page twice in the array is a double free.
      for (; i < pages.length; i++) {
        const p = pages[i];
        checkPage(p, this.#core);
        markFreed(p);
        refs[3 * i] = p.pfn;
        refs[3 * i + 1] = p.order;
        refs[3 * i + 2] = pageGen(p);
      }
    } catch (e) {
      for (let j = 0; j < i; j++) markLive(pages[j]!);
      throw e;
    }
    try {
      native.freeBulk(slot, refs, pages.length);
    } catch (e) {
      const freed = (e as { freed?: number }).freed ?? 0;
      for (let j = freed; j < pages.length; j++) markLive(pages[j]!);
      if (freed > 0) this.#core.wakeWaiters();
      throw e;
    }
    this.#core.wakeWaiters();
  }

  /**
   * Gives a page up so that another thread can `adopt()` it; the page is
   * unusable here afterwards. The descriptor is plain data.
   */
  transfer(page: Page): PageDescriptor {
    checkPage(page, this.#core);
    markMoved(page);
    return Object.freeze({ pool: this.#handle.id, pfn: page.pfn, order: page.order, gen: pageGen(page) });
  }

  /** Takes ownership of a page another thread transferred; returns this thread's handle to it. */
  adopt(descriptor: PageDescriptor): Page {
    const slot = this.#slot();
    if (descriptor === null || typeof descriptor !== 'object') {
      throw new InvalidArgTypeError('descriptor must come from pool.transfer()');
    }
    const { pool, pfn, order, gen } = descriptor;
    if (pool !== this.#handle.id) throw new BadPageError('the descriptor belongs to another pool');
    native.setOwner(slot, pfn, order, gen, 0);
    return makePage(this.#core, pfn, order, gen);
  }

  stats(): PoolStats {
    const s = this.#stats;
    native.stats(this.#slot(), s);
    const buddyinfo: number[] = [];
    for (let o = 0; o <= this.maxOrder; o++) buddyinfo.push(s[STAT.buddyinfo + o]!);
    const cachedByTask: Record<number, number> = {};
    const ctl = this.#core.ctl;
    for (let t = 1; t < CTL_CACHED_SLOTS; t++) {
      const n = ctl[CTL.CACHED_BASE + t]!;
      if (n !== 0) cachedByTask[t] = n;
    }
    return {
      totalPages: s[STAT.totalPages]!,
      freePages: s[STAT.freePages]!,
      allocatedPages: s[STAT.allocatedPages]!,
      reservedPages: s[STAT.reserved]!,
      watermarks: { min: s[STAT.min]!, low: s[STAT.low]!, high: s[STAT.high]! },
      buddyinfo,
      threadPages: s[STAT.threadPages]!,
      cachedPages: this.#core.pcp?.count ?? 0,
      cachedByTask,
      tasks: s[STAT.liveTasks]!,
      counters: {
        allocs: s[STAT.allocs]!,
        frees: s[STAT.frees]!,
        pgalloc: s[STAT.pgalloc]!,
        pgfree: s[STAT.pgfree]!,
        allocFailWatermark: s[STAT.failWatermark]!,
        allocFailFragmented: s[STAT.failFragmented]!,
      },
    };
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
    const core = this.#core;
    if (core.closed) return 0;
    const returned = native.detach(core.slot);
    core.closed = true;
    if (core.pcp !== null) {
      core.pcp.count = 0;  // the detach returned them with the rest of this thread's pages
      core.publishCached();
    }
    core.wakeWaiters();
    return returned;
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

