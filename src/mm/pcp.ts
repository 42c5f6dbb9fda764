/**
 * The per-thread page cache: the kernel's per-CPU page lists (pcp) for a
 * thread. Order-0 pages are handed out from a stash that is refilled and
 * drained a batch at a time by one native call each, so the common
 * alloc+free never crosses into C++ nor takes the zone lock.
 *
 * Rules (mm/page_alloc.c, DESIGN §2):
 * - cached pages are taken from the zone (owned by this thread's task) and
 *   held by no caller: stats() counts them as cached, watermarks as used;
 * - a refill is a bulk allocation that checks the watermark for the whole
 *   batch (alloc_pages_bulk checks LOW + n) and never reclaims;
 * - a free beyond `high` drains a batch of the coldest pages;
 * - the slow path drains this cache at once, and other threads' caches
 *   through the drain generation in the control block (CTL.DRAIN_GEN), which
 *   every thread checks on its next alloc or free. So at most `high` pages
 *   per idle thread can be stranded, and none once a thread exits.
 *
 * The stash is a ring of slots: pages are pushed and popped at the hot end
 * (the most recently freed page is cache-warm) and drained from the cold
 * end, so a drain moves nothing. A slot keeps the Uint8Array view its page
 * had, so that recycling a page does not make a new view.
 *
 * Sizing adapts to the thread's demand, as the kernel's pcp does
 * (nr_pcp_high, decay_pcp_high, alloc_factor): `high` starts at 4 × batch,
 * doubles — up to `highMax`, an eighth of the pool and at most PCP_HIGH_MAX
 * (the kernel's high_max) — when frees overflow it (a thread that holds
 * bursts of pages and gives them back) while free memory is at or above the
 * HIGH watermark, and halves back toward its minimum when a refill finds
 * free memory below HIGH (the pages are wanted elsewhere; the slow path
 * drains every cache when they are short).
 * A refill asks for `batch` pages, doubled for every refill in a row without
 * an overflowing free in between (up to 2^5 ×, PCP_BATCH_SCALE_MAX, and
 * never more than high). Sizes given explicitly (Pool.create({ pcp })) are
 * kept as given.
 *
 * Publishing: the cache size goes into the thread's task-table word (CACHED)
 * for other threads' stats(). It is written after a refill and before a
 * drain's native call, so the published figure never exceeds the pages the
 * cache really holds (native stats() relies on it: native/sync/pool.h).
 */
import { native } from '../binding/native.js';

export const PCP_BATCH = 63;
export const PCP_HIGH = 4 * PCP_BATCH;
/** The most an adaptive high grows to, whatever the pool (it also stops at an eighth of the pool). */
export const PCP_HIGH_MAX = 8192;
/** How many doublings a refill's batch may take (the kernel's PCP_BATCH_SCALE_MAX). */
const BATCH_SCALE_MAX = 5;

/** Sizing: batch and high, and whether they adapt (defaults) or stay as given. */
export interface PcpSizing {
  batch: number;
  high: number;
  adaptive: boolean;
}

export class Pcp {
  /** The refill batch at its smallest. */
  readonly batch: number;
  /** Pages the cache may hold before a free drains; adapts between highMin and highMax. */
  high: number;
  readonly highMin: number;
  readonly highMax: number;
  readonly adaptive: boolean;
  /** Cached pages. */
  count = 0;
  /** (pfn, gen) pairs by slot. */
  readonly entries: Int32Array;
  /** The view each slot's page had, if it had one. */
  readonly views: (Uint8Array | undefined)[];
  /** The drain generation this thread last acted on. */
  drainSeen = 0;
  /** The slot the next push fills; the hot end is the slot before it. */
  #head = 0;
  readonly #mask: number;
  #allocFactor = 0;
  readonly #refs: Int32Array;
  readonly #ctl: Int32Array | null;
  readonly #word: number;

  /**
   * `highMax` bounds the adaptive high; `ctl[word]` is where the cache size
   * is published (word -1: nowhere, a task outside the table).
   */
  constructor(sizing: PcpSizing, highMax: number, ctl: Int32Array | null = null, word = -1) {
    this.batch = sizing.batch;
    this.adaptive = sizing.adaptive;
    this.highMin = sizing.high;
    this.high = sizing.high;
    this.highMax = sizing.adaptive ? Math.max(sizing.high, highMax) : sizing.high;
    this.#ctl = word >= 0 ? ctl : null;
    this.#word = word;
    // The cache holds at most high + 1 pages (a free past high, before it
    // drains), and a refill (at most high) lands in an empty ring.
    let slots = 1;
    while (slots < this.highMax + 2) slots *= 2;
    this.#mask = slots - 1;
    this.entries = new Int32Array(2 * slots);
    this.views = new Array<Uint8Array | undefined>(slots).fill(undefined);
    this.#refs = new Int32Array(3 * slots);
  }

  /** A freed page onto the hot end (the caller checks `high` first, or drains after). */
  push(pfn: number, gen: number, view: Uint8Array | undefined): void {
    const s = this.#head++ & this.#mask;
    this.entries[2 * s] = pfn;
    this.entries[2 * s + 1] = gen;
    this.views[s] = view;
    this.count++;
  }

  /** Takes the hot end's page and returns its slot (read entries[2 * slot], [2 * slot + 1], views[slot]). */
  pop(): number {
    this.count--;
    return --this.#head & this.#mask;
  }

  /**
   * A free took the cache past `high`. With adaptive sizing, room to grow,
   * and free memory at or above the HIGH watermark (`belowHigh` false), high
   * doubles and nothing is drained; otherwise the cache drains a batch of
   * its coldest pages. Either way the next refill starts small.
   */
  overflow(slot: number, belowHigh: boolean): void {
    this.#allocFactor = 0;
    if (this.adaptive && !belowHigh && this.high < this.highMax) {
      this.high = Math.min(this.highMax, 2 * this.high);
      return;
    }
    this.drain(slot, Math.max(this.count - this.high, this.batch));
  }

  /**
   * One bulk allocation onto an empty cache: `batch` pages, more after
   * refills in a row; false if the zone refused. `belowHigh`: free memory is
   * below the HIGH watermark, so an adaptive high shrinks back first.
   */
  refill(slot: number, allocFlags: number, belowHigh: boolean): boolean {
    if (this.adaptive && belowHigh && this.high > this.highMin) this.high = Math.max(this.highMin, this.high >> 1);
    const n = Math.min(this.batch << this.#allocFactor, this.high);
    // An empty ring restarts at slot 0, so the refill lands in one contiguous run.
    this.#head = 0;
    const got = native.allocBulk(slot, n, 0, allocFlags, 0, this.entries);
    if (got < 0) return false;
    for (let i = 0; i < got; i++) this.views[i] = undefined;
    this.#head = got;
    this.count = got;
    if (this.#allocFactor < BATCH_SCALE_MAX) this.#allocFactor++;
    this.publish();
    return true;
  }

  /** Publishes the cache size (see above): a plain store into this thread's own task-table word. */
  publish(): void {
    if (this.#ctl !== null) this.#ctl[this.#word] = this.count;
  }

  /** Returns the `n` coldest pages to the zone in one call (all of them by default). */
  drain(slot: number, n = this.count): number {
    n = Math.min(n, this.count);
    if (n === 0) return 0;
    const e = this.entries;
    const refs = this.#refs;
    const mask = this.#mask;
    const cold = this.#head - this.count;
    for (let i = 0; i < n; i++) {
      const s = (cold + i) & mask;
      refs[3 * i] = e[2 * s]!;
      refs[3 * i + 1] = 0;
      refs[3 * i + 2] = e[2 * s + 1]!;
      this.views[s] = undefined;
    }
    if (this.#ctl !== null) this.#ctl[this.#word] = this.count - n;
    native.freeBulk(slot, refs, n);
    this.count -= n;
    return n;
  }

  /** Forgets every page without returning it (native took them back: thread exit, the reaper). */
  forget(): void {
    this.count = 0;
    this.#head = 0;
    this.publish();
  }
}
