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
import {
  checkPage,
  makePage,
  markFreed,
  markLive,
  markMoved,
  Page,
  type PageDescriptor,
  type PageOwner,
  pageGen,
} from './page.js';
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
  /** Pages owned by this thread's task. */
  threadPages: number;
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

/** This thread's attachment to a pool: what Page handles point back to. */
class Attachment implements PageOwner {
  slot: number;
  closed = false;
  #region: ArrayBuffer | undefined;
  constructor(slot: number) {
    this.slot = slot;
  }
  region(): ArrayBuffer {
    return (this.#region ??= native.region(this.slot));
  }
}

export class Pool {
  #at: Attachment;
  #ctl: Int32Array;
  #handle: PoolHandle;
  #stats = new Float64Array(native.statsLength);
  #bulk = new Int32Array(2 * 64);
  /** Pages in the pool. */
  readonly totalPages: number;
  /** Largest order this pool hands out. */
  readonly maxOrder: number;
  /** This thread's task id in the pool. */
  readonly taskId: number;

  private constructor(result: readonly number[], control: SharedArrayBuffer, ctl: Int32Array) {
    const [slot, id, nonce, nrPages, maxOrder, task] = result as [number, number, number, number, number, number];
    this.#at = new Attachment(slot);
    this.#ctl = ctl;
    this.#handle = Object.freeze({ id, nonce, control });
    this.totalPages = nrPages;
    this.maxOrder = maxOrder;
    this.taskId = task;
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
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const ctl = new Int32Array(control);
    const r = native.create(pages * PAGE_SIZE, maxOrder, wm.min, wm.low, wm.high, flags, releaseOrder, ctl);
    return new Pool(r, control, ctl);
  }

  /** Attaches this thread to a pool created elsewhere. */
  static attach(handle: PoolHandle): Pool {
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
    const ctl = new Int32Array(handle.control);
    const r = native.attach(handle.id, handle.nonce, ctl);
    return new Pool(r, handle.control, ctl);
  }

  /** Structured-clonable: pass it in workerData or postMessage. */
  get handle(): PoolHandle {
    return this.#handle;
  }

  /** True once close() was called in this thread. */
  get closed(): boolean {
    return this.#at.closed;
  }

  #slot(): number {
    if (this.#at.closed) throw new PoolClosedError();
    return this.#at.slot;
  }

  /**
   * Allocates a block of 2^order pages. The fast path takes it while free
   * pages stay above `low`; otherwise the caller may go below `min` as deep
   * as its flags allow (DESIGN §3). Throws AllocError (ENOMEM) when even
   * that fails.
   */
  alloc(gfp: GfpMask = GFP.KERNEL, order = 0): Page {
    const slot = this.#slot();
    if (gfp !== GFP.KERNEL) validateGfp(gfp);
    if (order !== 0) checkOrder(order, this.maxOrder);
    let v = native.alloc(slot, order, ALLOC.WMARK_LOW | (gfp & GFP.RESERVE ? ALLOC.RESERVE : 0), 0);
    if (v < 0) v = native.alloc(slot, order, gfpToAllocFlags(gfp), 0);
    if (v < 0) throw this.#allocFailure(gfp, order);
    const pfn = Math.floor(v / GEN_SCALE);
    const page = makePage(this.#at, pfn, order, v - pfn * GEN_SCALE);
    if (gfp & GFP.ZERO) page.bytes.fill(0);
    return page;
  }

  #allocFailure(gfp: number, order: number): AllocError {
    return new AllocError(`page allocation failure: order:${order}, mode:${formatGfp(gfp)}`, { order, gfp });
  }

  /** Returns a page to the pool. */
  free(page: Page): void {
    checkPage(page, this.#at);
    native.free(this.#at.slot, page.pfn, page.order, pageGen(page));
    markFreed(page);
    this.#wake();
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
    if (r < 0) r = native.allocBulk(slot, n, order, gfpToAllocFlags(gfp), 0, out);
    if (r < 0) throw this.#allocFailure(gfp, order);
    const pages = new Array<Page>(n);
    for (let i = 0; i < n; i++) pages[i] = makePage(this.#at, out[2 * i]!, order, out[2 * i + 1]!);
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
        checkPage(p, this.#at);
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
      if (freed > 0) this.#wake();
      throw e;
    }
    this.#wake();
  }

  /**
   * Gives a page up so that another thread can `adopt()` it; the page is
   * unusable here afterwards. The descriptor is plain data.
   */
  transfer(page: Page): PageDescriptor {
    checkPage(page, this.#at);
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
    return makePage(this.#at, pfn, order, gen);
  }

  stats(): PoolStats {
    const s = this.#stats;
    native.stats(this.#slot(), s);
    const buddyinfo: number[] = [];
    for (let o = 0; o <= this.maxOrder; o++) buddyinfo.push(s[STAT.buddyinfo + o]!);
    return {
      totalPages: s[STAT.totalPages]!,
      freePages: s[STAT.freePages]!,
      allocatedPages: s[STAT.allocatedPages]!,
      reservedPages: s[STAT.reserved]!,
      watermarks: { min: s[STAT.min]!, low: s[STAT.low]!, high: s[STAT.high]! },
      buddyinfo,
      threadPages: s[STAT.threadPages]!,
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
    if (this.#at.closed) return 0;
    const returned = native.detach(this.#at.slot);
    this.#at.closed = true;
    this.#wake();
    return returned;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Wakes threads waiting for free memory, if there are any. */
  #wake(): void {
    if (Atomics.load(this.#ctl, CTL.WAITERS) !== 0) Atomics.notify(this.#ctl, CTL.FREE_SEQ);
  }

  /** @internal for tests: the native metadata word of a pfn. */
  _meta(pfn: number): { state: 'tail' | 'free' | 'allocated'; order: number; owner: number; gen: number } {
    const [state, order, owner, gen] = native.meta(this.#slot(), pfn);
    return { state: (['tail', 'free', 'allocated'] as const)[state]!, order, owner, gen };
  }
}

