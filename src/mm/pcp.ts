/**
 * The per-thread page cache: the kernel's per-CPU page lists (pcp) for a
 * thread. Blocks of order 0 to PCP_MAX_ORDER (the kernel's
 * PAGE_ALLOC_COSTLY_ORDER, 3) are handed out from one list per order, each
 * refilled and drained a batch at a time by one native call, so the common
 * alloc+free never crosses into C++ nor takes the zone lock — a request
 * body of 16 KiB blocks or a cache with a mix of sizes included.
 *
 * Rules (mm/page_alloc.c, DESIGN §2):
 * - cached blocks are taken from the zone (owned by this thread's task) and
 *   held by no caller: stats() counts them as cached, watermarks as used;
 * - a refill is a bulk allocation that checks the watermark for the whole
 *   batch (alloc_pages_bulk checks LOW + n) and never reclaims;
 * - `count` and `high` are in pages, over all the lists (pcp->count): a
 *   free that takes the cache past `high` drains at least a batch of pages,
 *   the coldest block of each list in turn (free_pcppages_bulk's
 *   round-robin), so no one order hoards the cache;
 * - the slow path drains this cache at once, and other threads' caches
 *   through the drain generation in the control block (CTL.DRAIN_GEN), which
 *   every thread checks on its next alloc or free. A cached block of order
 *   1–3 keeps its buddy from merging, so a high-order allocation that finds
 *   no block drains every cache, as the kernel's does, before it reclaims.
 *   So at most `high` (+ one block) pages per idle thread can be stranded,
 *   and none once a thread exits.
 *
 * Each list is a ring of slots: blocks are pushed and popped at the hot end
 * (the most recently freed block is cache-warm) and drained from the cold
 * end, so a drain moves nothing. A slot keeps the Uint8Array view its block
 * had, so that recycling a block does not make a new view.
 *
 * Sizing adapts to the thread's demand, as the kernel's pcp does
 * (nr_pcp_high, decay_pcp_high, alloc_factor): `high` starts at 4 × batch,
 * doubles — up to `highMax`, an eighth of the pool and at most PCP_HIGH_MAX
 * (the kernel's high_max) — when frees overflow it (a thread that holds
 * bursts of pages and gives them back) while free memory is at or above the
 * HIGH watermark, and halves back toward its minimum when a refill finds
 * free memory below HIGH (the pages are wanted elsewhere; the slow path
 * drains every cache when they are short).
 * An order-0 refill asks for `batch` pages, doubled for every refill in a
 * row without an overflowing free in between (up to 2^5 ×,
 * PCP_BATCH_SCALE_MAX, and never more than high); an order-k refill asks for
 * batch >> k blocks, at least 2 (nr_pcp_alloc). Sizes given explicitly
 * (Pool.create({ pcp })) are kept as given.
 *
 * Publishing: the cache size in pages goes into the thread's task-table word
 * (CACHED) for other threads' stats(). It is written by every push and pop,
 * after a refill and before a drain's native call, so the published figure
 * never exceeds the pages the cache really holds (native stats() relies on
 * it: native/sync/pool.h). One plain store into this thread's own entry, a
 * cache line no other thread writes.
 */
import { native } from '../binding/native.js';

export const PCP_BATCH = 63;
export const PCP_HIGH = 4 * PCP_BATCH;
/** The most an adaptive high grows to, whatever the pool (it also stops at an eighth of the pool). */
export const PCP_HIGH_MAX = 8192;
/** The highest order the cache keeps (the kernel's PAGE_ALLOC_COSTLY_ORDER); above it every block goes to the zone. */
export const PCP_MAX_ORDER = 3;
/** How many doublings a refill's batch may take (the kernel's PCP_BATCH_SCALE_MAX). */
const BATCH_SCALE_MAX = 5;
/** The fewest blocks a refill of order > 0 asks for (nr_pcp_alloc). */
const MIN_HIGH_ORDER_REFILL = 2;

/** Sizing: batch and high, and whether they adapt (defaults) or stay as given. */
export interface PcpSizing {
  batch: number;
  high: number;
  adaptive: boolean;
}

/**
 * May a block of this order be cached? An integer from 0 to PCP_MAX_ORDER;
 * anything else (1.5, '1', -1, a symbol) is not. Strict compares only: the
 * argument is the caller's, unchecked, and must not be coerced.
 */
export function cacheableOrder(order: unknown): boolean {
  return order === 0 || order === 1 || order === 2 || order === PCP_MAX_ORDER;
}

/** One order's blocks: a ring of (pfn, gen) slots and their views. */
export class PcpList {
  /** Blocks in the list. */
  count = 0;
  /** (pfn, gen) pairs by slot. */
  readonly entries: Int32Array;
  /** The view each slot's block had, if it had one. */
  readonly views: (Uint8Array | undefined)[];
  /** The slot the next push fills; the hot end is the slot before it. */
  head = 0;
  readonly mask: number;

  constructor(slots: number) {
    this.mask = slots - 1;
    this.entries = new Int32Array(2 * slots);
    this.views = new Array<Uint8Array | undefined>(slots).fill(undefined);
  }
}

export class Pcp {
  /** The refill batch at its smallest, in pages. */
  readonly batch: number;
  /** Pages the cache may hold before a free drains; adapts between highMin and highMax. */
  high: number;
  readonly highMin: number;
  readonly highMax: number;
  readonly adaptive: boolean;
  /** Cached pages, over every order's list. */
  count = 0;
  /** The lists, by order (0 to PCP_MAX_ORDER). */
  readonly lists: PcpList[] = [];
  /** The drain generation this thread last acted on. */
  drainSeen = 0;
  readonly #totalPages: number;
  #allocFactor = 0;
  /** The order a drain starts at; it moves on, so drains take from every list in turn. */
  #drainOrder = 0;
  readonly #refs: Int32Array;
  // Where the size is published: the task-table word, or a scratch word
  // nobody reads (never null, so that push and pop store without a test).
  readonly #ctl: Int32Array;
  readonly #word: number;

  /**
   * `highMax` bounds the adaptive high; refills never ask for more than
   * `totalPages`; `ctl[word]` is where the cache size is published (word -1:
   * nowhere, a task outside the table).
   */
  constructor(sizing: PcpSizing, highMax: number, totalPages: number, ctl: Int32Array | null = null, word = -1) {
    this.batch = sizing.batch;
    this.adaptive = sizing.adaptive;
    this.highMin = sizing.high;
    this.high = sizing.high;
    this.highMax = sizing.adaptive ? Math.max(sizing.high, highMax) : sizing.high;
    this.#totalPages = totalPages;
    this.#ctl = word >= 0 && ctl !== null ? ctl : new Int32Array(1);
    this.#word = word >= 0 ? word : 0;
    // A list holds at most what the cache may: high pages, plus the blocks a
    // free adds before it drains (below 2 << PCP_MAX_ORDER pages), or a
    // refill, which lands in an empty ring and never exceeds high (order 0)
    // or MIN_HIGH_ORDER_REFILL blocks.
    let total = 0;
    for (let order = 0; order <= PCP_MAX_ORDER; order++) {
      const blocks = Math.max((this.highMax + (2 << PCP_MAX_ORDER)) >> order, MIN_HIGH_ORDER_REFILL) + 2;
      let slots = 1;
      while (slots < blocks) slots *= 2;
      this.lists.push(new PcpList(slots));
      total += slots;
    }
    this.#refs = new Int32Array(3 * total);
  }

  /**
   * A freed block onto its list's hot end (the caller checks `high` first,
   * or calls overflow() after); publishes the new size.
   */
  push(order: number, pfn: number, gen: number, view: Uint8Array | undefined): void {
    const list = this.lists[order]!;
    const s = list.head++ & list.mask;
    list.entries[2 * s] = pfn;
    list.entries[2 * s + 1] = gen;
    list.views[s] = view;
    list.count++;
    this.#ctl[this.#word] = this.count += 1 << order;
  }

  /**
   * Takes the hot end's block of `list`, this order's (lists[order]), and
   * returns its slot (read the list's entries[2 * slot], [2 * slot + 1],
   * views[slot]); publishes the new size.
   */
  pop(list: PcpList, order: number): number {
    list.count--;
    this.#ctl[this.#word] = this.count -= 1 << order;
    return --list.head & list.mask;
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
   * One bulk allocation onto the empty list of this order: for order 0,
   * `batch` pages, more after refills in a row; for order k, batch >> k
   * blocks, at least 2. False if the zone refused. `belowHigh`: free memory
   * is below the HIGH watermark, so an adaptive high shrinks back first.
   */
  refill(slot: number, order: number, allocFlags: number, belowHigh: boolean): boolean {
    if (this.adaptive && belowHigh && this.high > this.highMin) this.high = Math.max(this.highMin, this.high >> 1);
    const n =
      order === 0
        ? Math.min(this.batch << this.#allocFactor, this.high)
        : Math.min(Math.max(Math.min(this.batch, this.high) >> order, MIN_HIGH_ORDER_REFILL), this.#totalPages >> order);
    if (n === 0) return false;
    const list = this.lists[order]!;
    // An empty ring restarts at slot 0, so the refill lands in one contiguous run.
    list.head = 0;
    const got = native.allocBulk(slot, n, order, allocFlags, 0, list.entries);
    if (got < 0) return false;
    for (let i = 0; i < got; i++) list.views[i] = undefined;
    list.head = got;
    list.count = got;
    this.count += got << order;
    if (order === 0 && this.#allocFactor < BATCH_SCALE_MAX) this.#allocFactor++;
    this.publish();
    return true;
  }

  /** Publishes the cache size (see above): a plain store into this thread's own task-table word. */
  publish(): void {
    this.#ctl[this.#word] = this.count;
  }

  /**
   * Returns at least `n` pages (all of them by default), the coldest block
   * of each list in turn, to the zone in one call. Returns the pages
   * returned.
   */
  drain(slot: number, n = this.count): number {
    n = Math.min(n, this.count);
    if (n <= 0) return 0;
    const refs = this.#refs;
    const lists = this.lists;
    let order = this.#drainOrder;
    let pages = 0;
    let blocks = 0;
    while (pages < n) {
      const list = lists[order]!;
      if (list.count > 0) {
        const s = (list.head - list.count) & list.mask;
        refs[3 * blocks] = list.entries[2 * s]!;
        refs[3 * blocks + 1] = order;
        refs[3 * blocks + 2] = list.entries[2 * s + 1]!;
        list.views[s] = undefined;
        list.count--;
        pages += 1 << order;
        blocks++;
      }
      order = order === PCP_MAX_ORDER ? 0 : order + 1;
    }
    this.#drainOrder = order;
    this.#ctl[this.#word] = this.count - pages;
    native.freeBulk(slot, refs, blocks);
    this.count -= pages;
    return pages;
  }

  /** Forgets every block without returning it (native took them back: thread exit, the reaper). */
  forget(): void {
    for (const list of this.lists) {
      list.count = 0;
      list.head = 0;
    }
    this.count = 0;
    this.publish();
  }
}
