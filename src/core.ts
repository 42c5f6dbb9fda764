/**
 * PoolCore: one thread's attachment to a pool — what Page handles point back
 * to and what the policy modules (slowpath, reclaim, ...) work on. Pool is
 * the public face; PoolCore holds the state, so modules need no access to
 * Pool's private fields.
 */
import { CTL } from './control.js';
import { native } from './native.js';
import type { PageOwner } from './page.js';
import { Pcp } from './pcp.js';
import { PAGE_SHIFT, PAGE_SIZE } from './size.js';
import type { Watermarks } from './watermarks.js';

export class PoolCore implements PageOwner {
  readonly slot: number;
  readonly id: number;
  readonly totalPages: number;
  readonly maxOrder: number;
  readonly taskId: number;
  readonly ctl: Int32Array;
  closed = false;
  /** null when the cache is disabled (Pool.create({ pcp: false })). */
  readonly pcp: Pcp | null;
  /** The watermarks as this thread last set or read them (the fast path's LOW). */
  wmark: Watermarks;
  #region: ArrayBuffer | undefined;

  constructor(
    r: readonly number[],
    ctl: Int32Array,
    wmark: Watermarks,
    pcp: { batch: number; high: number } | false,
  ) {
    this.slot = r[0]!;
    this.id = r[1]!;
    this.totalPages = r[3]!;
    this.maxOrder = r[4]!;
    this.taskId = r[5]!;
    this.ctl = ctl;
    this.wmark = wmark;
    this.pcp = pcp === false ? null : new Pcp(pcp.batch, pcp.high);
  }

  region(): ArrayBuffer {
    return (this.#region ??= native.region(this.slot));
  }

  view(pfn: number, order: number): Uint8Array {
    return new Uint8Array(this.region(), pfn << PAGE_SHIFT, PAGE_SIZE << order);
  }

  /** Free pages as native code last published them (a racy but recent read). */
  freePages(): number {
    return this.ctl[CTL.FREE_PAGES]!;
  }

  reserved(): number {
    return this.ctl[CTL.RESERVED]!;
  }

  /** Wakes threads waiting for free memory, if there are any. */
  wakeWaiters(): void {
    if (Atomics.load(this.ctl, CTL.WAITERS) !== 0) Atomics.notify(this.ctl, CTL.FREE_SEQ);
  }

  /** Drains this thread's cache if another thread asked for it (CTL.DRAIN_GEN). */
  checkDrain(): void {
    const pcp = this.pcp;
    if (pcp === null) return;
    const gen = this.ctl[CTL.DRAIN_GEN]!;
    if (gen !== pcp.drainSeen) {
      pcp.drainSeen = gen;
      if (pcp.drain(this.slot) > 0) this.wakeWaiters();
    }
  }

  /** Asks every thread to drain its cache (drain_all_pages) and drains this one now. */
  drainAll(): void {
    Atomics.add(this.ctl, CTL.DRAIN_GEN, 1);
    this.checkDrain();
  }

  /** Publishes this thread's cached page count for stats(). */
  publishCached(): void {
    if (this.pcp !== null && this.taskId < CTL_CACHED_SLOTS) {
      this.ctl[CTL.CACHED_BASE + this.taskId] = this.pcp.count;
    }
  }
}

export const CTL_CACHED_SLOTS = 16384;
