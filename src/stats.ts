/**
 * pool.stats(): one snapshot of the zone (native counters), this thread's
 * and every thread's page caches, vmstat, zoneinfo and PSI.
 */
import { CTL, MAX_TABLE_TASKS } from './control.js';
import type { PoolCore } from './core.js';
import { T, taskBase } from './tasks.js';
import { native, STAT } from './native.js';
import type { VmStatName } from './vmstat.js';
import type { Watermarks } from './watermarks.js';

export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  /** Total stall time, microseconds. */
  total: number;
}

export interface PoolStats {
  totalPages: number;
  freePages: number;
  /** Pages handed out, page caches included (free + allocated == total). */
  allocatedPages: number;
  /** Pages held back by watermark reservations. */
  reservedPages: number;
  /** Pages held in token reservations (allocated; free + cached + allocated-by-users + tokens == total). */
  reservedTokens: number;
  watermarks: Watermarks;
  /** Free blocks per order, 0..maxOrder (/proc/buddyinfo). */
  buddyinfo: number[];
  /** Pages owned by this thread's task (its page cache included). */
  threadPages: number;
  /** Pages in this thread's page cache. */
  cachedPages: number;
  /** Pages in every thread's page cache, by task id. */
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

export function collectStats(core: PoolCore, s: Float64Array): PoolStats {
  native.stats(core.slot, s);
  const buddyinfo: number[] = [];
  for (let o = 0; o <= core.maxOrder; o++) buddyinfo.push(s[STAT.buddyinfo + o]!);
  const ctl = core.ctl;
  const cachedByTask: Record<number, number> = {};
  let reservedTokens = 0;
  for (let t = 1; t < MAX_TABLE_TASKS; t++) {
    const base = taskBase(t);
    const n = t === core.taskId ? (core.pcp?.count ?? 0) : ctl[base + T.CACHED]!;
    if (n !== 0) cachedByTask[t] = n;
    reservedTokens += ctl[base + T.TOKENS]!;
  }
  const watermarks = { min: s[STAT.min]!, low: s[STAT.low]!, high: s[STAT.high]! };
  const free = s[STAT.freePages]!;
  return {
    totalPages: s[STAT.totalPages]!,
    freePages: free,
    allocatedPages: s[STAT.allocatedPages]!,
    reservedPages: s[STAT.reserved]!,
    reservedTokens,
    watermarks,
    buddyinfo,
    threadPages: s[STAT.threadPages]!,
    cachedPages: core.pcp?.count ?? 0,
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
 * the watermarks and PSI — about a microsecond, where stats() walks the
 * whole task table (tens of microseconds).
 */
export interface PoolPressure {
  freePages: number;
  /** Pages in this thread's page cache: allocated for the zone, but this thread's next allocations take them first. */
  cachedPages: number;
  /** Pages held back by watermark reservations: they raise every mark. */
  reservedPages: number;
  watermarks: Watermarks;
  psi: { some: PsiLine; full: PsiLine };
}

export function collectPressure(core: PoolCore, s: Float64Array): PoolPressure {
  native.stats(core.slot, s);
  return {
    freePages: s[STAT.freePages]!,
    cachedPages: core.pcp?.count ?? 0,
    reservedPages: s[STAT.reserved]!,
    watermarks: { min: s[STAT.min]!, low: s[STAT.low]!, high: s[STAT.high]! },
    psi: core.psi.snapshot(),
  };
}
