/**
 * The allocation slow path: __alloc_pages_slowpath() of mm/page_alloc.c as
 * one function with named exits, in DESIGN §3's order:
 *
 *   wake kswapd → retry at min → (can't sleep? nopage) → (reclaim context?
 *   nopage) → direct reclaim → (NORETRY? nopage) → (costly without
 *   RETRY_MAYFAIL? nopage) → retry while reclaim makes progress, at most 16
 *   rounds without, and only while free + reclaimable could reach min →
 *   OOM → nopage: NOFAIL loops with last-resort reserves; the rest fail.
 *
 * It is a generator: where it must wait it yields a Wait, and a driver
 * blocks (workers: Atomics.wait) or awaits (allocAsync: Atomics.waitAsync).
 * One algorithm, two ways to wait.
 */
import { allocFailureText, COSTLY_ORDER, formatGfp, GFP, gfpToAllocFlags } from './gfp.js';
import { Kswapd, type KswapdHost, MAX_RECLAIM_RETRIES } from './reclaim/kswapd.js';
import type { VmStat } from './stats/vmstat.js';
import type { LockHost } from './task-lock.js';
import type { TaskTable } from './task-table.js';
import { ALLOC, native } from '../binding/native.js';
import { CTL } from '../binding/control.js';
import type { Wait } from './wait.js';
import { warn, warnOnce } from './stats/warn.js';

/** 'linux-4.0' (default): small NOFS/NOIO allocations loop. 'linux-3.19': they fail once reclaim stalls. */
export type Behavior = 'linux-4.0' | 'linux-3.19';

/** What the OOM call site learns (__alloc_pages_may_oom). */
export interface OomOutcome {
  /** A page obtained by the last try at `high` (encoded as native.alloc returns). */
  page?: number;
  /** Memory may be freed soon: retry without counting a round without progress. */
  progress: boolean;
}

/** What the OOM killer needs of the allocating thread's attachment (attachment.ts implements it). */
export interface OomHost {
  readonly slot: number;
  readonly ctl: Int32Array;
  readonly taskId: number;
  readonly tasks: TaskTable;
  readonly totalPages: number;
  readonly vmstat: VmStat;
  readonly lockHost: LockHost;
}

/** The OOM killer, pluggable (oom/killer.ts). Called only where the kernel would call out_of_memory(). */
export interface OomHandler {
  mayOom(core: OomHost, gfp: number, order: number, task: number): Generator<Wait, OomOutcome, void>;
  /** Is this task an OOM victim (gets ALLOC_OOM; may fail instead of looping)? */
  isVictim(core: OomHost, task: number): boolean;
}

/** What the slow path needs of the allocating thread's attachment (attachment.ts implements it). */
export interface SlowpathHost extends OomHost, Pick<KswapdHost, 'ctl' | 'vmstat' | 'wmark' | 'freePages'> {
  readonly behavior: Behavior;
  /** The OOM killer at the OOM call site; null: a too-small-to-fail allocation waits. */
  readonly oom: OomHandler | null;
  readonly psi: { stallEnter(): void; stallLeave(): void };
  /** Direct reclaim (reclaim/reclaim.ts). */
  readonly reclaim: { direct(gfp: number, order: number): Generator<Wait, number, void>; reclaimable(): number };
  /** Gives this thread's page cache back to the zone; drainAll() asks every thread. */
  drainOwn(): void;
  drainAll(): void;
  /** The mark a caller with these ALLOC_* rights must leave free (native's arithmetic). */
  effectiveMin(allocFlags: number): number;
}

/** memalloc_retry_wait(): about a jiffy when the caller may block, HZ/50 otherwise. */
export function retryWaitMs(gfp: number): number {
  return gfp & GFP.DIRECT_RECLAIM && !(gfp & GFP.NORETRY) ? 1 : 20;
}

/** Stall reports: first after 10 s, then every 10 s (the 4.9 kernel's warn_alloc stall). */
export const STALL_WARN_MS = 10_000;
/** With no OOM killer configured, how long a too-small-to-fail allocation waits for a free before reclaiming again. */
const OOM_ABSENT_WAIT_MS = 100;

export interface SlowpathRequest {
  readonly core: SlowpathHost;
  readonly gfp: number;
  readonly order: number;
  /** Task charged with the pages (0: this thread's). */
  readonly task: number;
  /** In reclaim context (PF_MEMALLOC): a shrinker allocating, or a NORECLAIM scope. */
  readonly reclaimContext: boolean;
}

function tryAlloc(core: SlowpathHost, order: number, allocFlags: number, task: number): number {
  return native.alloc(core.slot, order, allocFlags, task);
}

function waitForFree(core: SlowpathHost, ms: number, why: string): Wait {
  return { word: CTL.FREE_SEQ, expect: Atomics.load(core.ctl, CTL.FREE_SEQ), ms, forMemory: true, why };
}

/**
 * Returns native.alloc's encoding of the page (pfn * GEN_SCALE + gen), or -1
 * for failure (the caller throws ENOMEM or returns null).
 */
export function* allocSlowpath(req: SlowpathRequest): Generator<Wait, number, void> {
  const { core, order, task, reclaimContext } = req;
  const gfp = req.gfp;
  const costly = order > COSTLY_ORDER;
  const canReclaim = (gfp & GFP.DIRECT_RECLAIM) !== 0;
  const oom = core.oom;
  const victim = () => oom !== null && oom.isVictim(core, task);
  const start = performance.now();
  const stallEvery = Atomics.load(core.ctl, CTL.STALL_WARN_MS) || STALL_WARN_MS;
  let stallWarnAt = stallEvery;
  core.vmstat.add('alloc_slowpath');

  if (gfp & GFP.NOFAIL) {
    // The kernel's sanity checks, each reported once.
    if (order > 1) warnOnce('nofail-order', 'gfp-misuse', `__GFP_NOFAIL with order:${order} > 1 is strongly discouraged`, { order, gfp });
    if (!canReclaim) warnOnce('nofail-noreclaim', 'gfp-misuse', `__GFP_NOFAIL without __GFP_DIRECT_RECLAIM may fail: mode:${formatGfp(gfp)}`, { gfp });
    if (reclaimContext) warnOnce('nofail-memalloc', 'gfp-misuse', '__GFP_NOFAIL inside a reclaim context cannot reclaim and may loop forever', { gfp });
  }

  // Cached pages are taken from the zone; give this thread's back before
  // deciding anything (other threads' are asked for after reclaim fails).
  core.drainOwn();

  let allocFlags: number;
  let v: number;
  let noProgress = 0;
  let oomAttempted = false;
  for (;;) {
    nopage: for (;;) {
      // retry: (the first time round, this is the first try at MIN)
      if (gfp & GFP.KSWAPD_RECLAIM) Kswapd.wake(core);
      allocFlags = gfpToAllocFlags(gfp, { reclaimContext, oomVictim: victim() });
      v = tryAlloc(core, order, allocFlags, task);
      if (v >= 0) return v;

      // Exit: the caller cannot sleep (ATOMIC, NOWAIT).
      if (!canReclaim) break nopage;
      // Exit: reclaim must not recurse into reclaim.
      if (reclaimContext) break nopage;

      // Direct reclaim, counted as a memory stall.
      core.vmstat.add('allocstall');
      core.psi.stallEnter();
      let progress: number;
      try {
        progress = yield* core.reclaim.direct(gfp, order);
      } finally {
        core.psi.stallLeave();
      }
      v = tryAlloc(core, order, allocFlags, task);
      if (v >= 0) return v;
      if (progress === 0) {
        // drain_all_pages(): pages may sit in other threads' caches.
        core.vmstat.add('drain_all_pages');
        core.drainAll();
        v = tryAlloc(core, order, allocFlags, task);
        if (v >= 0) return v;
      }

      // Exit: NORETRY had its one reclaim pass.
      if (gfp & GFP.NORETRY) break nopage;
      // Exit: costly orders fail after reclaim unless RETRY_MAYFAIL.
      if (costly && !(gfp & GFP.RETRY_MAYFAIL)) break nopage;

      stallWarnAt = reportStall(core, gfp, order, start, stallWarnAt, stallEvery);

      // should_reclaim_retry(): progress resets the count for order <= 3.
      if (progress > 0 && !costly) noProgress = 0;
      else noProgress++;
      if (noProgress <= MAX_RECLAIM_RETRIES && couldReachMin(core, order, allocFlags)) {
        core.vmstat.add('reclaim_retries');
        yield waitForFree(core, retryWaitMs(gfp), 'retrying reclaim');
        continue;
      }

      // The OOM call site (__alloc_pages_may_oom).
      const outcome = yield* mayOom(req);
      oomAttempted = true;
      if (outcome.page !== undefined) return outcome.page;
      // Exit: an OOM victim that used its reserves fails instead of looping.
      if (victim() && (allocFlags & ALLOC.OOM || gfp & GFP.NOMEMALLOC)) break nopage;
      if (outcome.progress) {
        noProgress = 0;
        continue;
      }
      break nopage;
    }

    // nopage:
    if (!(gfp & GFP.NOFAIL) || !canReclaim) break;
    // NOFAIL never fails: last-resort reserves (half of min, or all of them
    // after an OOM attempt), then wait and go round again.
    core.vmstat.add('nofail_retries');
    v = tryAlloc(core, order, oomAttempted ? ALLOC.NO_WATERMARKS : allocFlags | ALLOC.MIN_RESERVE, task);
    if (v >= 0) return v;
    stallWarnAt = reportStall(core, gfp, order, start, stallWarnAt, stallEvery);
    yield waitForFree(core, retryWaitMs(gfp), '__GFP_NOFAIL retry');
  }

  // fail:
  core.vmstat.add('alloc_fail');
  warn('alloc-failure', allocFailureText(gfp, order), { order, gfp }, { gfp });
  return -1;
}

/**
 * __alloc_pages_may_oom(): with no OOM killer configured a too-small-to-fail
 * allocation waits for memory to be freed (what the kernel does for a
 * !__GFP_FS caller). Never an OOM for costly orders or RETRY_MAYFAIL; for
 * !__GFP_FS callers the kernel reports progress without killing since 4.0
 * (they wait for an FS-capable allocation to kill for them) and reported
 * none in 3.19 (so they failed).
 */
function* mayOom(req: SlowpathRequest): Generator<Wait, OomOutcome, void> {
  const { core, gfp, order } = req;
  if (order > COSTLY_ORDER || gfp & GFP.RETRY_MAYFAIL) return { progress: false };
  if (!(gfp & GFP.FS)) {
    if (core.behavior === 'linux-3.19') return { progress: false };
    yield waitForFree(core, OOM_ABSENT_WAIT_MS, 'waiting for an OOM kill by an FS-capable allocation');
    return { progress: true };
  }
  if (core.oom !== null) return yield* core.oom.mayOom(core, gfp, order, req.task);
  yield waitForFree(core, OOM_ABSENT_WAIT_MS, 'waiting for memory to be freed (no OOM killer configured)');
  return { progress: true };
}

/** Could free + reclaimable pages pass the MIN watermark for this caller? */
function couldReachMin(core: SlowpathHost, order: number, allocFlags: number): boolean {
  const available = core.freePages() + core.reclaim.reclaimable();
  // The zone's test, with the zone's mark: free - need >= mark (native/core/zone.h).
  return available - (1 << order) >= core.effectiveMin(allocFlags);
}

function reportStall(core: SlowpathHost, gfp: number, order: number, start: number, warnAt: number, every: number): number {
  const ms = performance.now() - start;
  if (ms < warnAt) return warnAt;
  // As the kernel: the stall report ignores __GFP_NOWARN (warn_alloc(gfp & ~__GFP_NOWARN)).
  warn(
    'alloc-stall',
    `page allocation stalls for ${Math.round(ms)}ms, order:${order}, mode:${formatGfp(gfp)}`,
    { order, gfp, stalledMs: Math.round(ms) },
    { gfp: gfp & ~GFP.NOWARN },
  );
  return warnAt + every;
}
