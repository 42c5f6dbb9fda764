/**
 * pool.stats(): one snapshot of the zone, taken by native code under the
 * zone lock (native/sync/pool.h PoolSnapshot), plus vmstat, zoneinfo and
 * PSI. Pages are in exactly one of three places, and every read adds up:
 *
 *   freePages + cachedPages + allocatedPages == totalPages
 *
 *   free       in the buddy lists
 *   cached     in threads' page caches: allocated in the zone, held by no caller
 *   allocated  held by callers (token reservations included): what a leak hunt reads
 */
import { CTL } from '../../binding/control.js';
import type { Attachment } from '../attachment.js';
import { native, STAT } from '../../binding/native.js';
import type { VmStatName } from './vmstat.js';
import type { Watermarks } from '../watermarks.js';

export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  /** Total stall time, microseconds. */
  total: number;
}

export interface PoolStats {
  totalPages: number;
  /** Pages in the buddy lists. */
  freePages: number;
  /** Pages in every thread's page cache: taken from the zone, held by no caller. */
  cachedPages: number;
  /** Pages held by callers, token reservations included. freePages + cachedPages + allocatedPages == totalPages. */
  allocatedPages: number;
  /** Pages held back by watermark reservations (they are free pages; they raise every watermark). */
  reservedPages: number;
  /** Pages held in token reservations (a part of allocatedPages). */
  reservedTokens: number;
  watermarks: Watermarks;
  /** Free blocks per order, 0..maxOrder (/proc/buddyinfo). */
  buddyinfo: number[];
  /** Pages held by this thread's callers (charged to its own task; its page cache not included). */
  threadPages: number;
  /** Pages in this thread's page cache. */
  threadCachedPages: number;
  /** Pages in every thread's page cache, by task id (they add up to cachedPages). */
  cachedByTask: Record<number, number>;
  /** Live tasks (attached threads and registered tasks). */
  tasks: number;
  /** Threads attached. */
  threads: number;
  counters: {
    allocs: number;
    frees: number;
    pgalloc: number;
    pgfree: number;
    allocFailWatermark: number;
    allocFailFragmented: number;
  };
  /** /proc/vmstat: pgalloc, pgfree, allocstall, pgscan_*, pgsteal_*, kswapd_wakeups, ... */
  vmstat: Record<VmStatName | 'pgalloc' | 'pgfree', number>;
  /** /proc/zoneinfo, the part that applies to one zone. */
  zoneinfo: {
    pagesFree: number;
    min: number;
    low: number;
    high: number;
    spanned: number;
    managed: number;
    reserved: number;
    nrFreePages: number[];
    kswapdFailures: number;
    waiters: number;
  };
  /** /proc/pressure/memory for this pool. */
  psi: { some: PsiLine; full: PsiLine };
}

export function collectStats(core: Attachment, s: Float64Array): PoolStats {
  native.stats(core.slot, s);
  const buddyinfo: number[] = [];
  for (let o = 0; o <= core.maxOrder; o++) buddyinfo.push(s[STAT.buddyinfo + o]!);
  const ctl = core.ctl;
  const cachedByTask: Record<number, number> = {};
  for (let i = 0, n = s[STAT.cachedTasks]!; i < n; i++) {
    cachedByTask[s[STAT.cachedTaskPairs + 2 * i]!] = s[STAT.cachedTaskPairs + 2 * i + 1]!;
  }
  const watermarks = { min: s[STAT.min]!, low: s[STAT.low]!, high: s[STAT.high]! };
  const free = s[STAT.freePages]!;
  return {
    totalPages: s[STAT.totalPages]!,
    freePages: free,
    cachedPages: s[STAT.cachedPages]!,
    allocatedPages: s[STAT.allocatedPages]!,
    reservedPages: s[STAT.reserved]!,
    reservedTokens: s[STAT.tokenPages]!,
    watermarks,
    buddyinfo,
    threadPages: s[STAT.threadPages]!,
    threadCachedPages: s[STAT.threadCachedPages]!,
    cachedByTask,
    tasks: s[STAT.liveTasks]!,
    threads: Atomics.load(ctl, CTL.ATTACHED),
    counters: {
      allocs: s[STAT.allocs]!,
      frees: s[STAT.frees]!,
      pgalloc: s[STAT.pgalloc]!,
      pgfree: s[STAT.pgfree]!,
      allocFailWatermark: s[STAT.failWatermark]!,
      allocFailFragmented: s[STAT.failFragmented]!,
    },
    vmstat: { pgalloc: s[STAT.pgalloc]!, pgfree: s[STAT.pgfree]!, ...core.vmstat.read() },
    zoneinfo: {
      pagesFree: free,
      ...watermarks,
      spanned: s[STAT.totalPages]!,
      managed: s[STAT.totalPages]!,
      reserved: s[STAT.reserved]!,
      nrFreePages: buddyinfo,
      kswapdFailures: Atomics.load(ctl, CTL.KSWAPD_FAILURES),
      waiters: Atomics.load(ctl, CTL.WAITERS),
    },
    psi: core.psi.snapshot(),
  };
}

/**
 * What admission control reads on every request: free and reserved pages,
 * the watermarks and PSI, from the words native code publishes in the
 * control block — no native call and no lock. Each value is recent; they
 * are not one snapshot (use stats() for that).
 */
export interface PoolPressure {
  freePages: number;
  /** Pages in this thread's page cache: held by no caller, and this thread's next allocations take them first. */
  threadCachedPages: number;
  /** Pages held back by watermark reservations: they raise every mark. */
  reservedPages: number;
  watermarks: Watermarks;
  psi: { some: PsiLine; full: PsiLine };
}

export function collectPressure(core: Attachment): PoolPressure {
  const ctl = core.ctl;
  return {
    freePages: Atomics.load(ctl, CTL.FREE_PAGES),
    threadCachedPages: core.pcp?.count ?? 0,
    reservedPages: Atomics.load(ctl, CTL.RESERVED),
    watermarks: { min: Atomics.load(ctl, CTL.WMARK_MIN), low: Atomics.load(ctl, CTL.WMARK_LOW), high: Atomics.load(ctl, CTL.WMARK_HIGH) },
    psi: core.psi.snapshot(),
  };
}
