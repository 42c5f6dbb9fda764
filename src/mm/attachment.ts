/**
 * Attachment: one thread's attachment to a pool (native/binding/env_data.h
 * keeps the native half of it) — what Page handles point back to, and the
 * host that the policy modules work on: it implements SlowpathHost,
 * ReclaimHost, KswapdHost, OomHost, KillHost and WaitHost, which those
 * modules declare, and PoolInternals (internal.ts), what libraries may use.
 * Pool is the public face; the attachment holds the state, so no module
 * needs access to Pool's private fields.
 */
import { CTL, PSI_BYTE_OFFSET, PSI_BYTES as LAYOUT_PSI_BYTES } from '../binding/control.js';
import type { FaultInjector } from './debug/faultinject.js';
import { Kswapd } from './reclaim/kswapd.js';
import { ALLOC, type AttachResult, CHUNK_PAGE_SHIFT, native } from '../binding/native.js';

const CHUNK_PAGE_MASK = 2 ** CHUNK_PAGE_SHIFT - 1;
import { checkPage, makePage, markFreed, type Page, type PageOwner, pageGen, pageView, setPageTask, takeForCache } from './page.js';
import { Pcp, PCP_HIGH_MAX, PCP_MAX_ORDER, type PcpSizing } from './pcp.js';
import { Psi, PSI_BYTES } from './stats/psi.js';
import { KillDelivery, type OnOomKill } from './oom/delivery.js';
import { OOM_ENABLED, OomKiller } from './oom/killer.js';
import { Reclaim } from './reclaim/reclaim.js';
import { type LockHost, lockHost } from './task-lock.js';
import { TASK_FLAG, TASK_WORD, TaskTable } from './task-table.js';
import { PAGE_SIZE } from './size.js';
import type { Behavior, OomHandler } from './slowpath.js';
import { VmStat } from './stats/vmstat.js';
import type { WaitHost } from './wait.js';
import type { Watermarks } from './watermarks.js';

// The control words and the flag the fast paths test, as constants (see tryTakeCached).
const { DRAIN_GEN, FREE_PAGES, WMARK_LOW, RESERVED, WAITERS } = CTL;
const { SIGPENDING } = TASK_FLAG;

// psi.ts loads no addon (its unit test runs it on the bare source), so it
// keeps its own size of the PSI region; the layout declares the region, and
// the two must agree: checked here, at load.
if (PSI_BYTES > LAYOUT_PSI_BYTES) {
  throw new Error(`nofail: psi.ts needs ${PSI_BYTES} bytes of PSI state; the control-block layout has ${LAYOUT_PSI_BYTES} (native/sync/control.h)`);
}

/** The zone's watermarks, read from the control block (native publishes them). */
class WatermarkView implements Watermarks {
  readonly #ctl: Int32Array;
  constructor(ctl: Int32Array) {
    this.#ctl = ctl;
  }
  get min(): number {
    return this.#ctl[CTL.WMARK_MIN]!;
  }
  get low(): number {
    return this.#ctl[CTL.WMARK_LOW]!;
  }
  get high(): number {
    return this.#ctl[CTL.WMARK_HIGH]!;
  }
}

/** Per-thread policy settings of an attachment. */
export interface AttachmentPolicy {
  allowMainThreadBlocking: boolean;
  /** This thread's task in the OOM killer's table. */
  name: string;
  oomScoreAdj: number;
  onOomKill: OnOomKill | undefined;
}

export class Attachment implements PageOwner, WaitHost {
  readonly slot: number;
  readonly id: number;
  readonly totalPages: number;
  readonly maxOrder: number;
  readonly taskId: number;
  readonly ctl: Int32Array;
  closed = false;
  /** null when the cache is disabled (Pool.create({ pcp: false })). */
  readonly pcp: Pcp | null;
  /** The watermarks in force, as every thread sees them. */
  readonly wmark: Watermarks;
  readonly allowMainThreadBlocking: boolean;
  readonly vmstat: VmStat;
  readonly psi: Psi;
  readonly reclaim: Reclaim;
  readonly kswapd: Kswapd;
  /** The OOM killer at the slow path's OOM site; null: too-small-to-fail allocations wait. */
  oom: OomHandler | null = null;
  /** Fault injection for allocations made in this thread; null when off. */
  faults: FaultInjector | null = null;
  /** Fault injection or lockdep is on: every allocation takes the full prologue. */
  debugChecks = false;
  /**
   * Nothing that needs the slow path on every call: no debug checks, no
   * fill on free, a task-table entry to publish into. The alloc and free
   * fast paths test this one field.
   */
  fastPathOk = false;
  /** What free pages are filled with: -1 nothing, 0 (zeroOnFree) or POISON_BYTE (poison). */
  readonly fill: number;
  /** lockdep's fs_reclaim check on every allocation (lockdep.ts). */
  readonly lockdep: boolean;
  /** > 0 while this thread runs shrinkers: reclaim context (PF_MEMALLOC). */
  inReclaim = 0;
  /** Run by close() in this thread before it detaches (pending retry loops fail, ...). */
  readonly closeHooks = new Set<() => void>();
  /** Stops the PSI sampler, in the thread that created the pool (it runs it). */
  stopSampler: (() => void) | undefined;
  /** The task table in the control block (tasks.ts). */
  readonly tasks: TaskTable;
  /** Delivers OOM kills of this thread's tasks on this thread (kill.ts). */
  readonly kills: KillDelivery;
  /** Control-block index of this thread's task flags (SIGPENDING is checked on every alloc). */
  readonly sigWord: number;
  /** This thread's share of CTL.WAITERS (wait.ts), or -1 outside the task table. */
  readonly waitingWord: number;
  /** Where this thread publishes its cached and token pages, or -1 outside the task table. */
  readonly cachedWord: number;
  readonly tokensWord: number;
  /** This thread's task as the holder of task locks (task-lock.ts). */
  readonly lockHost: LockHost;
  /** This thread's ArrayBuffers over the region, by chunk, made when first needed. */
  readonly #regions: ArrayBuffer[] = [];

  constructor(
    r: AttachResult,
    control: SharedArrayBuffer,
    pcp: PcpSizing | false,
    policy: AttachmentPolicy,
  ) {
    const ctl = new Int32Array(control);
    this.slot = r.slot;
    this.id = r.id;
    this.totalPages = r.nrPages;
    this.maxOrder = r.maxOrder;
    this.taskId = r.task;
    this.ctl = ctl;
    this.fill = ctl[CTL.FILL_ON_FREE]!;
    this.lockdep = ctl[CTL.LOCKDEP] === 1;
    this.debugChecks = this.lockdep;
    this.wmark = new WatermarkView(ctl);
    this.tasks = new TaskTable(control);
    const inTable = this.tasks.inTable(this.taskId);
    this.sigWord = inTable ? this.tasks.wordOf(this.taskId, TASK_WORD.FLAGS) : CTL.ZERO;
    this.waitingWord = inTable ? this.tasks.wordOf(this.taskId, TASK_WORD.WAITING) : -1;
    this.cachedWord = inTable ? this.tasks.wordOf(this.taskId, TASK_WORD.CACHED) : -1;
    this.tokensWord = inTable ? this.tasks.wordOf(this.taskId, TASK_WORD.TOKENS) : -1;
    // A refill is all or none, so a batch can never exceed the pool; an
    // adaptive high stops at an eighth of the pool (the kernel's high_max).
    this.pcp =
      pcp === false
        ? null
        : new Pcp(
            { batch: Math.min(pcp.batch, this.totalPages), high: Math.min(pcp.high, this.totalPages), adaptive: pcp.adaptive },
            Math.min(PCP_HIGH_MAX, this.totalPages >> 3),
            this.totalPages,
            ctl,
            this.cachedWord,
          );
    this.allowMainThreadBlocking = policy.allowMainThreadBlocking;
    this.vmstat = new VmStat(control);
    this.lockHost = lockHost(this, native);
    this.psi = new Psi(control, PSI_BYTE_OFFSET, this.lockHost);
    this.psi.taskStart();
    this.reclaim = new Reclaim(this);
    this.kills = new KillDelivery(this);
    this.updateFastPathOk();
    this.tasks.init(this.taskId, { name: policy.name, adj: policy.oomScoreAdj, home: this.taskId, thread: true });
    this.kills.register(this.taskId, policy.onOomKill);
    if (Atomics.load(ctl, CTL.OOM_FLAGS) & OOM_ENABLED) this.oom = new OomKiller();
    this.kswapd = new Kswapd(this);
  }

  /** The pool's behavior (Pool.create({ behavior })), the same in every thread. */
  get behavior(): Behavior {
    return this.ctl[CTL.BEHAVIOR] === 1 ? 'linux-3.19' : 'linux-4.0';
  }

  updateFastPathOk(): void {
    this.fastPathOk = !this.debugChecks && !this.closed && this.fill < 0 && this.cachedWord >= 0;
  }

  /** Turns this thread's fault injection on (an injector) or off (null). */
  setFaults(faults: FaultInjector | null): void {
    this.faults = faults;
    this.debugChecks = faults !== null || this.lockdep;
    this.updateFastPathOk();
  }

  /**
   * Detaches this thread (pool.close()): close hooks, the PSI sampler,
   * shrinkers and the PSI task go; native returns the thread's pages —
   * its page cache with them — and waiters are woken. Returns the pages
   * returned; 0 when already closed.
   */
  close(): number {
    if (this.closed) return 0;
    for (const hook of [...this.closeHooks]) hook();
    this.closeHooks.clear();
    this.stopSampler?.();
    this.reclaim.release();
    this.psi.taskStop();
    const returned = native.detach(this.slot);
    this.closed = true;
    this.updateFastPathOk();
    this.pcp?.forget(); // the detach returned them with the rest of this thread's pages
    this.wakeWaiters();
    return returned;
  }

  /** Between wait slices: answer reclaim requests, and take a pending OOM kill. */
  serviceRequests(): void {
    this.reclaim.serviceRequests();
    if (this.kills.pending()) this.kills.deliver();
  }

  /**
   * The reaper took this thread's pages, its page cache's included: those
   * entries are no longer ours to hand out or free.
   */
  discardCache(): void {
    this.pcp?.forget();
  }

  /**
   * The MIN mark a caller with these ALLOC_* rights must leave free pages
   * at or above after taking its pages (`free - need >= mark`), asked of
   * the native zone, where the one formula lives (native/core/zone.cc).
   */
  effectiveMin(allocFlags: number): number {
    return native.effectiveMark(this.slot, ALLOC.WMARK_MIN, allocFlags);
  }

  /** Gives this thread's cached pages back to the zone. */
  drainOwn(): void {
    const pcp = this.pcp;
    if (pcp !== null && pcp.count > 0) {
      pcp.drain(this.slot); // publishes the new size
      this.wakeWaiters();
    }
  }

  /**
   * A view of a block's memory. The region is seen through one ArrayBuffer
   * per chunk (CHUNK_PAGE_SHIFT), made once per thread; a block never
   * crosses a chunk. No shift of the pfn itself: pfn << 12 leaves int32 at
   * 2 GiB.
   */
  view(pfn: number, order: number): Uint8Array {
    const chunk = pfn >>> CHUNK_PAGE_SHIFT;
    const ab = this.#regions[chunk] ?? (this.#regions[chunk] = native.region(this.slot, chunk));
    return new Uint8Array(ab, (pfn & CHUNK_PAGE_MASK) * PAGE_SIZE, PAGE_SIZE << order);
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

  // --- the page cache's fast-path conditions, written once -------------------
  //
  // alloc() and free() test these inline; the prologue paths (pool.ts #fast,
  // #freeSlow) act on the same conditions: drain on request, refill when
  // empty, free past `high` with a drain.

  /** Free pages above LOW plus the reservations, unless the caller may use them: where the fast path may take pages. */
  aboveLow(reserveRights: boolean): boolean {
    const ctl = this.ctl;
    return ctl[FREE_PAGES]! > ctl[WMARK_LOW]! + (reserveRights ? 0 : ctl[RESERVED]!);
  }

  /**
   * The alloc fast path's take: the hot end's block of this order
   * (cacheableOrder()) from the page cache, or null when the cache may not
   * hand one out now with no refill or drain: it holds none; a kill is
   * pending for this thread; another thread asked for caches to be drained;
   * free pages are not above LOW plus the reservations.
   *
   * This is bytecode V8 inlines into a caller's loop, and it does so only
   * while the whole path fits its inlining budget (920 bytes): past it, the
   * path's small methods stay calls, and a hot page cost 75-90 ns instead of
   * 45. So the control words are module constants, and the path reuses
   * aboveLow() and takeCached() rather than copying them.
   */
  tryTakeCached(order: number): Page | null {
    const pcp = this.pcp;
    const ctl = this.ctl;
    if (
      pcp === null ||
      pcp.lists[order]!.count === 0 ||
      (ctl[this.sigWord]! & SIGPENDING) !== 0 ||
      ctl[DRAIN_GEN] !== pcp.drainSeen ||
      !this.aboveLow(false)
    ) {
      return null;
    }
    return this.takeCached(order);
  }

  /**
   * May a free go into the page cache? Not while this thread runs shrinkers
   * (reclaim frees go back to the zone), while another thread waits for
   * memory (it needs the page in the zone), or while a drain is asked for;
   * not with a kill pending for this thread.
   */
  cacheTakesFrees(): boolean {
    const pcp = this.pcp;
    const ctl = this.ctl;
    return (
      pcp !== null &&
      this.inReclaim === 0 &&
      ctl[WAITERS] === 0 &&
      ctl[DRAIN_GEN] === pcp.drainSeen &&
      (ctl[this.sigWord]! & SIGPENDING) === 0
    );
  }

  /**
   * The free fast path: puts a live block of order 0 to PCP_MAX_ORDER,
   * charged to this thread's own task, into the page cache and returns true
   * while the cache has room and takes frees (cacheTakesFrees()) and no debug
   * option is on; otherwise returns false with nothing changed, and the slow
   * path says what is wrong. Small for V8's inlining budget, as
   * tryTakeCached.
   */
  cacheFree(page: Page): boolean {
    const pcp = this.pcp;
    if (pcp === null || pcp.count >= pcp.high || !this.fastPathOk || !this.cacheTakesFrees()) return false;
    const gen = takeForCache(page, this, PCP_MAX_ORDER);
    if (gen < 0) return false;
    pcp.push(page.order, page.pfn, gen, pageView(page));
    return true;
  }

  /** The hot end's block of this order in the page cache, as a handle (a refill said there is one). */
  takeCached(order: number): Page {
    const pcp = this.pcp!;
    const list = pcp.lists[order]!;
    const s = pcp.pop(list, order);
    const e = list.entries;
    return makePage(this, e[2 * s]!, order, e[2 * s + 1]!, list.views[s]);
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

  // --- the internal surface (internal.ts PoolInternals) ----------------------

  get poolId(): number {
    return this.id;
  }

  /** Answers other threads' reclaim requests, and nothing else (an uninterruptible sleep takes no kill). */
  serviceReclaimRequests(): void {
    if (!this.closed) this.reclaim.serviceRequests();
  }

  taskLive(task: number): boolean {
    return this.closed || native.taskLive(this.slot, task);
  }

  setOwner(pfn: number, order: number, gen: number, task: number, expectOwner: number): void {
    native.setOwner(this.slot, pfn, order, gen, task, expectOwner);
  }

  retireTask(task: number): number {
    this.tasks.clear(task);
    return native.taskReclaim(this.slot, task, true);
  }

  pageFor(pfn: number, order: number, gen: number, task: number): Page {
    const page = makePage(this, pfn, order, gen);
    if (task !== 0) setPageTask(page, task);
    return page;
  }

  checkPage(page: unknown): number {
    checkPage(page, this);
    return pageGen(page);
  }

  markFreed(page: Page): void {
    markFreed(page);
  }
}
