/**
 * The per-thread page cache: the kernel's per-CPU page lists (pcp) for a
 * thread. Order-0 pages are handed out from a stash that is refilled and
 * drained `batch` pages at a time by one native call each, so the common
 * alloc+free never crosses into C++ nor takes the zone lock.
 *
 * Rules (mm/page_alloc.c, DESIGN §2):
 * - cached pages count as allocated for watermarks: they are allocated in
 *   the native zone, owned by this thread's task;
 * - a refill is a bulk allocation that checks the watermark for the whole
 *   batch (alloc_pages_bulk checks LOW + n) and never reclaims;
 * - a free beyond `high` drains `batch` of the coldest pages;
 * - the slow path drains this cache at once, and other threads' caches
 *   through the drain generation in the control block (CTL.DRAIN_GEN), which
 *   every thread checks on its next alloc or free. So at most `high` pages
 *   per idle thread can be stranded, and none once a thread exits.
 *
 * A stash entry keeps the Uint8Array view its page had, so that recycling a
 * page does not make a new view (≈ 45 ns, the dominant cost otherwise).
 *
 * Publishing: the cache size goes into the thread's task-table word (CACHED)
 * for other threads' stats(). It is written after a refill and before a
 * drain's native call, so the published figure never exceeds the pages the
 * cache really holds (native stats() relies on it: native/sync/pool.h).
 */
import { native } from '../binding/native.js';

export const PCP_BATCH = 63;
export const PCP_HIGH = 4 * PCP_BATCH;

export class Pcp {
  readonly batch: number;
  readonly high: number;
  /** Cached pages. */
  count = 0;
  /** (pfn, gen) pairs, stack order: the top is the most recently freed (cache-warm) page. */
  readonly entries: Int32Array;
  readonly views: (Uint8Array | undefined)[];
  /** The drain generation this thread last acted on. */
  drainSeen = 0;
  #refs: Int32Array;
  readonly #ctl: Int32Array | null;
  readonly #word: number;

  /** `ctl[word]` is where the cache size is published; word -1: nowhere (a task outside the table). */
  constructor(batch: number, high: number, ctl: Int32Array | null = null, word = -1) {
    this.batch = batch;
    this.high = high;
    this.#ctl = word >= 0 ? ctl : null;
    this.#word = word;
    this.entries = new Int32Array(2 * (high + batch + 1));
    this.views = new Array<Uint8Array | undefined>(high + batch + 1).fill(undefined);
    this.#refs = new Int32Array(3 * (high + batch + 1));
  }

  /** A freed page onto the top of the stash (the caller checks `high`). */
  push(pfn: number, gen: number, view: Uint8Array | undefined): void {
    const i = this.count++;
    this.entries[2 * i] = pfn;
    this.entries[2 * i + 1] = gen;
    this.views[i] = view;
  }

  /** One bulk allocation of `batch` pages onto the stash; false if the zone refused. */
  refill(slot: number, allocFlags: number): boolean {
    const n = Math.min(this.batch, this.high - this.count);
    if (n <= 0) return this.count > 0;
    const got = native.allocBulk(slot, n, 0, allocFlags, 0, this.entries.subarray(2 * this.count));
    if (got < 0) return false;
    for (let i = this.count; i < this.count + got; i++) this.views[i] = undefined;
    this.count += got;
    this.publish();
    return true;
  }

  /** Publishes the cache size (see above): a plain store into this thread's own task-table word. */
  publish(): void {
    if (this.#ctl !== null) this.#ctl[this.#word] = this.count;
  }

  /** Returns the `n` coldest (bottom) pages to the zone in one call. */
  drain(slot: number, n = this.count): number {
    n = Math.min(n, this.count);
    if (n === 0) return 0;
    const e = this.entries;
    const refs = this.#refs;
    for (let i = 0; i < n; i++) {
      refs[3 * i] = e[2 * i]!;
      refs[3 * i + 1] = 0;
      refs[3 * i + 2] = e[2 * i + 1]!;
    }
    if (this.#ctl !== null) this.#ctl[this.#word] = this.count - n;
    native.freeBulk(slot, refs, n);
    e.copyWithin(0, 2 * n, 2 * this.count);
    this.views.copyWithin(0, n, this.count);
    this.count -= n;
    for (let i = this.count; i < this.count + n; i++) this.views[i] = undefined;
    return n;
  }
}
