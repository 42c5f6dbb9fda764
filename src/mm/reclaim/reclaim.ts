/**
 * Reclaim for one thread's attachment to a pool: its shrinkers, direct
 * reclaim on the allocating thread, and requests to the shrinkers of other
 * threads — which run only on their own threads (STYLE: never call
 * JavaScript from a thread that is not its own).
 *
 * Cross-thread requests go through mailboxes in the control block, one per
 * thread that has shrinkers (at most MAILBOXES = 48 such threads per pool;
 * beyond that a thread's shrinkers serve only its own allocations and
 * kswapd). Mailbox words:
 *   OWNER     the owning thread's task (a task lock word, tasks.ts)
 *   LOCK      the requester's task while it holds the mailbox (a task lock:
 *             one request at a time)
 *   REQ_SEQ   bumped by the requester after writing GFP, PRIO and NR
 *   RESP_SEQ  set to the handled REQ_SEQ by the owner after writing FREED
 *   COUNT     freeable objects the owner last counted (for retry decisions)
 * The owner answers from its event loop (Atomics.waitAsync on REQ_SEQ) or,
 * when it is itself blocked in a synchronous wait, between wait slices. A
 * requester waits at most REMOTE_TIMEOUT_MS for all answers together, and
 * lets go of the mailboxes it holds in `finally`.
 * Neither word is ever waited on: a busy mailbox is skipped. One whose
 * requester or owner is gone (a worker terminated while it held or owned
 * it, or its id reused) is taken over by the next requester at once.
 * A thread may hold several mailboxes as a requester, and hold one in two
 * async flows at once: `#requesting` counts them, so that TASK_FLAG.IN_MAILBOX_LOCK
 * is cleared only after the last.
 */
import { CTL, MAILBOX_BASE, MAILBOX_WORDS, MAILBOXES } from '../../binding/control.js';
import { DEF_PRIORITY, doShrinkSlab, type Shrinker, ShrinkerEntry } from './shrinker.js';
import { dropHolder, holderGone, type LockHost, lockHolder, lockTestPause, taskUnlock, tryTaskLock } from '../task-lock.js';
import { TASK_FLAG, type TaskTable } from '../task-table.js';
import type { VmStat } from '../stats/vmstat.js';
import type { Wait } from '../wait.js';
import { warnOnce } from '../stats/warn.js';

const OWNER = 0;
const LOCK = 1;
const REQ_SEQ = 2;
const REQ_GFP = 3;
const REQ_PRIO = 4;
const REQ_NR = 5;
const RESP_SEQ = 6;
const RESP_FREED = 7;
const COUNT = 8;

/** SWAP_CLUSTER_MAX: what one direct reclaim aims to free. */
export const RECLAIM_TARGET = 32;
/** Bound on waiting for other threads' shrinkers, all of them together. */
export const REMOTE_TIMEOUT_MS = 50;

/** What reclaim needs of its thread's attachment (attachment.ts implements it). */
export interface ReclaimHost {
  readonly closed: boolean;
  readonly ctl: Int32Array;
  readonly taskId: number;
  readonly tasks: TaskTable;
  readonly vmstat: VmStat;
  readonly lockHost: LockHost;
  /** > 0 while this thread runs shrinkers: reclaim context (PF_MEMALLOC). */
  inReclaim: number;
  freePages(): number;
  /** This thread's kswapd: it runs while the thread has shrinkers. */
  readonly kswapd: { start(): void; stop(): void };
}

export class Reclaim {
  readonly #core: ReclaimHost;
  /** This thread's task, which a mailbox's OWNER or LOCK names while it owns or holds it. */
  readonly #host: LockHost;
  readonly #entries: ShrinkerEntry[] = [];
  #mailbox = -1;
  #handled = 0;
  #listening = false;
  /** Bumped when the mailbox is given up: a listen loop of an earlier claim sees it and ends. */
  #generation = 0;
  /** How many times this thread holds each other thread's mailbox as a requester, by index. */
  readonly #requesting = new Map<number, number>();
  #requestingTotal = 0;

  constructor(core: ReclaimHost) {
    this.#core = core;
    this.#host = core.lockHost;
  }

  register(s: Shrinker): () => void {
    const e = new ShrinkerEntry(s);
    this.#entries.push(e);
    this.#claimMailbox();
    this.#core.kswapd.start();
    this.#publishCount();
    return () => {
      const i = this.#entries.indexOf(e);
      if (i >= 0) this.#entries.splice(i, 1);
      if (this.#entries.length === 0) this.release();
    };
  }

  /** Gives up this thread's mailbox (no shrinkers left, or the pool closes here). */
  release(): void {
    if (this.#mailbox >= 0) {
      const core = this.#core;
      const base = MAILBOX_BASE + this.#mailbox * MAILBOX_WORDS;
      Atomics.store(core.ctl, base + COUNT, 0);
      taskUnlock(this.#host, core.ctl, base + OWNER);
      core.tasks.clearFlags(core.taskId, TASK_FLAG.MAILBOX_OWNER);
      this.#mailbox = -1;
    }
    this.#listening = false;
    this.#generation++;
    this.#core.kswapd.stop();
  }

  /**
   * Runs this thread's shrinkers once at `priority` in reclaim context.
   * Returns the pages they gave back.
   */
  shrinkLocal(gfp: number, priority: number, kswapd: boolean): number {
    const core = this.#core;
    let freed = 0;
    let scanned = 0;
    let deferred = 0;
    core.inReclaim++;
    try {
      for (const e of [...this.#entries]) {
        const r = doShrinkSlab(e, gfp, priority, kswapd, (err, entry) =>
          warnOnce(`shrinker-error:${entry.shrinker.name}`, 'gfp-misuse', `shrinker ${entry.shrinker.name} threw: ${String(err)}`, {
            shrinker: entry.shrinker.name,
          }),
        );
        freed += r.freed;
        scanned += r.scanned;
        deferred += r.deferred;
      }
    } finally {
      core.inReclaim--;
    }
    core.vmstat.add(kswapd ? 'pgscan_kswapd' : 'pgscan_direct', scanned);
    core.vmstat.add(kswapd ? 'pgsteal_kswapd' : 'pgsteal_direct', freed);
    if (deferred > 0) core.vmstat.add('shrinker_deferred', deferred);
    if (freed > 0) Atomics.store(core.ctl, CTL.KSWAPD_FAILURES, 0);
    this.#publishCount();
    return freed;
  }

  /** Freeable objects of this thread's shrinkers. */
  countLocal(): number {
    let n = 0;
    for (const e of this.#entries) {
      try {
        const c = e.shrinker.count();
        if (c > 0) n += c;
      } catch {
        // reported when it is scanned
      }
    }
    return n;
  }

  /** Freeable objects in every thread's shrinkers (others' as last published). */
  reclaimable(): number {
    const ctl = this.#core.ctl;
    let n = this.countLocal();
    for (let i = 0; i < MAILBOXES; i++) {
      const base = MAILBOX_BASE + i * MAILBOX_WORDS;
      if (i !== this.#mailbox && lockHolder(Atomics.load(ctl, base + OWNER)) !== 0) n += Atomics.load(ctl, base + COUNT);
    }
    return n;
  }

  /**
   * Direct reclaim (try_to_free_pages): priority 12 down to 0 until the
   * target is met, this thread's shrinkers first, then other threads'
   * through their mailboxes. Yields the waits for their answers.
   */
  *direct(gfp: number, order: number): Generator<Wait, number, void> {
    const target = Math.max(RECLAIM_TARGET, 1 << order);
    let reclaimed = 0;
    let askedRemote = false;
    for (let prio = DEF_PRIORITY; prio >= 0 && reclaimed < target; prio--) {
      reclaimed += this.shrinkLocal(gfp, prio, false);
      // Others are asked once, at the priority where this thread alone fell
      // short — they run the whole descent themselves.
      if (reclaimed < target && !askedRemote && (prio === 0 || this.#core.freePages() === 0)) {
        askedRemote = true;
        reclaimed += yield* this.#askOthers(gfp, target - reclaimed);
      }
    }
    return reclaimed;
  }

  *#askOthers(gfp: number, nr: number): Generator<Wait, number, void> {
    const core = this.#core;
    const ctl = core.ctl;
    const sent: { i: number; base: number; seq: number }[] = [];
    let freed = 0;
    try {
      for (let i = 0; i < MAILBOXES; i++) {
        if (i === this.#mailbox) continue;
        const base = MAILBOX_BASE + i * MAILBOX_WORDS;
        const owner = Atomics.load(ctl, base + OWNER);
        if (lockHolder(owner) === 0) continue;
        if (holderGone(this.#host, lockHolder(owner), TASK_FLAG.MAILBOX_OWNER, false)) {
          // Its thread is gone without giving the mailbox back.
          dropHolder(ctl, base + OWNER, owner);
          continue;
        }
        if (!this.#lockMailbox(i, base)) continue;
        const req = { i, base, seq: 0 };
        sent.push(req);
        lockTestPause?.('mailbox');
        Atomics.store(ctl, base + REQ_GFP, gfp);
        Atomics.store(ctl, base + REQ_PRIO, 0);
        Atomics.store(ctl, base + REQ_NR, nr);
        req.seq = (Atomics.load(ctl, base + REQ_SEQ) + 1) | 0;
        Atomics.store(ctl, base + REQ_SEQ, req.seq);
        Atomics.notify(ctl, base + REQ_SEQ);
        core.vmstat.add('remote_reclaim_requests');
      }
      const deadline = performance.now() + REMOTE_TIMEOUT_MS;
      for (const { base, seq } of sent) {
        for (;;) {
          const resp = Atomics.load(ctl, base + RESP_SEQ);
          if (resp === seq) {
            freed += Atomics.load(ctl, base + RESP_FREED);
            break;
          }
          const left = deadline - performance.now();
          if (left <= 0) {
            core.vmstat.add('remote_reclaim_timeouts');
            break;
          }
          yield { word: base + RESP_SEQ, expect: resp, ms: left, forMemory: false, why: 'another thread reclaiming' };
        }
      }
    } finally {
      for (const { i, base } of sent) this.#unlockMailbox(i, base);
    }
    return freed;
  }

  /** Takes another thread's mailbox for one request (from a requester that is gone too); never waits. */
  #lockMailbox(i: number, base: number): boolean {
    const core = this.#core;
    const held = this.#requesting.get(i) ?? 0;
    // The bit before the word (tasks.ts invariant).
    if (this.#requestingTotal === 0) core.tasks.setFlags(core.taskId, TASK_FLAG.IN_MAILBOX_LOCK);
    if (tryTaskLock(this.#host, core.ctl, base + LOCK, TASK_FLAG.IN_MAILBOX_LOCK, true, held > 0)) {
      this.#requesting.set(i, held + 1);
      this.#requestingTotal++;
      return true;
    }
    if (this.#requestingTotal === 0) core.tasks.clearFlags(core.taskId, TASK_FLAG.IN_MAILBOX_LOCK);
    return false;
  }

  #unlockMailbox(i: number, base: number): void {
    const core = this.#core;
    taskUnlock(this.#host, core.ctl, base + LOCK);
    const held = this.#requesting.get(i)! - 1;
    if (held === 0) this.#requesting.delete(i);
    else this.#requesting.set(i, held);
    // The bit after the word, and only after the last one.
    if (--this.#requestingTotal === 0) core.tasks.clearFlags(core.taskId, TASK_FLAG.IN_MAILBOX_LOCK);
  }

  /** Answers a pending request in this thread's mailbox, if any. */
  serviceRequests(): void {
    if (this.#mailbox < 0) return;
    const ctl = this.#core.ctl;
    const base = MAILBOX_BASE + this.#mailbox * MAILBOX_WORDS;
    const seq = Atomics.load(ctl, base + REQ_SEQ);
    if (seq === this.#handled) return;
    this.#handled = seq;
    const gfp = Atomics.load(ctl, base + REQ_GFP);
    const nr = Atomics.load(ctl, base + REQ_NR);
    let freed = 0;
    for (let prio = DEF_PRIORITY; prio >= 0 && freed < nr; prio--) freed += this.shrinkLocal(gfp, prio, false);
    Atomics.store(ctl, base + RESP_FREED, freed);
    Atomics.store(ctl, base + RESP_SEQ, seq);
    Atomics.notify(ctl, base + RESP_SEQ);
  }

  #claimMailbox(): void {
    if (this.#mailbox >= 0) return;
    const core = this.#core;
    const ctl = core.ctl;
    // A mailbox naming this task is left by a dead earlier task with the same
    // id: free it first, so that MAILBOX_OWNER vouches for this thread's own
    // mailbox only (tasks.ts invariant).
    for (let i = 0; i < MAILBOXES; i++) {
      const base = MAILBOX_BASE + i * MAILBOX_WORDS;
      const owner = Atomics.load(ctl, base + OWNER);
      if (lockHolder(owner) === core.taskId) dropHolder(ctl, base + OWNER, owner);
    }
    core.tasks.setFlags(core.taskId, TASK_FLAG.MAILBOX_OWNER);
    for (let i = 0; i < MAILBOXES; i++) {
      const base = MAILBOX_BASE + i * MAILBOX_WORDS;
      if (tryTaskLock(this.#host, ctl, base + OWNER, TASK_FLAG.MAILBOX_OWNER, true)) {
        this.#mailbox = i;
        this.#handled = Atomics.load(ctl, base + REQ_SEQ);
        Atomics.store(ctl, base + RESP_SEQ, this.#handled);
        this.#listen();
        return;
      }
    }
    core.tasks.clearFlags(core.taskId, TASK_FLAG.MAILBOX_OWNER);
    warnOnce('mailboxes-full', 'gfp-misuse', `more than ${MAILBOXES} threads have shrinkers on one pool; this thread's serve only its own reclaim`);
  }

  // The owner's event loop answers requests; Atomics.waitAsync does not keep
  // the process alive, so a listening thread can still exit.
  #listen(): void {
    if (this.#listening || this.#mailbox < 0) return;
    this.#listening = true;
    const generation = this.#generation;
    const loop = (): void => {
      if (generation !== this.#generation) return;
      if (!this.#listening || this.#mailbox < 0 || this.#core.closed) {
        this.#listening = false;
        return;
      }
      const base = MAILBOX_BASE + this.#mailbox * MAILBOX_WORDS;
      const r = Atomics.waitAsync(this.#core.ctl, base + REQ_SEQ, this.#handled);
      const next = () => {
        this.serviceRequests();
        loop();
      };
      if (r.async) r.value.then(next);
      else queueMicrotask(next);
    };
    loop();
  }

  #publishCount(): void {
    if (this.#mailbox < 0) return;
    Atomics.store(this.#core.ctl, MAILBOX_BASE + this.#mailbox * MAILBOX_WORDS + COUNT, this.countLocal());
  }
}
