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
 *   OWNER     task id of the owning thread, 0 when free
 *   LOCK      1 while a requester holds the mailbox (one request at a time)
 *   REQ_SEQ   bumped by the requester after writing GFP, PRIO and NR
 *   RESP_SEQ  set to the handled REQ_SEQ by the owner after writing FREED
 *   COUNT     freeable objects the owner last counted (for retry decisions)
 * The owner answers from its event loop (Atomics.waitAsync on REQ_SEQ) or,
 * when it is itself blocked in a synchronous wait, between wait slices. A
 * requester waits at most REMOTE_TIMEOUT_MS for all answers together.
 */
import { CTL, MAILBOX_BASE, MAILBOX_WORDS, MAILBOXES } from './control.js';
import type { PoolCore } from './core.js';
import { native } from './native.js';
import { DEF_PRIORITY, doShrinkSlab, type Shrinker, ShrinkerEntry } from './shrinker.js';
import type { Wait } from './wait.js';
import { warnOnce } from './warn.js';

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

export class Reclaim {
  readonly #core: PoolCore;
  readonly #entries: ShrinkerEntry[] = [];
  #mailbox = -1;
  #handled = 0;
  #listening = false;
  /** Bumped when the mailbox is given up: a listen loop of an earlier claim sees it and ends. */
  #generation = 0;

  constructor(core: PoolCore) {
    this.#core = core;
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
      const base = MAILBOX_BASE + this.#mailbox * MAILBOX_WORDS;
      Atomics.store(this.#core.ctl, base + COUNT, 0);
      Atomics.store(this.#core.ctl, base + OWNER, 0);
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
      if (i !== this.#mailbox && Atomics.load(ctl, base + OWNER) !== 0) n += Atomics.load(ctl, base + COUNT);
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
    const sent: { base: number; seq: number }[] = [];
    for (let i = 0; i < MAILBOXES; i++) {
      if (i === this.#mailbox) continue;
      const base = MAILBOX_BASE + i * MAILBOX_WORDS;
      const owner = Atomics.load(ctl, base + OWNER);
      if (owner === 0) continue;
      if (!native.taskLive(core.slot, owner)) {
        // Its thread is gone without giving the mailbox back.
        Atomics.compareExchange(ctl, base + OWNER, owner, 0);
        continue;
      }
      if (Atomics.compareExchange(ctl, base + LOCK, 0, 1) !== 0) continue;
      Atomics.store(ctl, base + REQ_GFP, gfp);
      Atomics.store(ctl, base + REQ_PRIO, 0);
      Atomics.store(ctl, base + REQ_NR, nr);
      const seq = (Atomics.load(ctl, base + REQ_SEQ) + 1) | 0;
      Atomics.store(ctl, base + REQ_SEQ, seq);
      Atomics.notify(ctl, base + REQ_SEQ);
      sent.push({ base, seq });
      core.vmstat.add('remote_reclaim_requests');
    }
    let freed = 0;
    const deadline = performance.now() + REMOTE_TIMEOUT_MS;
    try {
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
      for (const { base } of sent) Atomics.store(ctl, base + LOCK, 0);
    }
    return freed;
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
    const ctl = this.#core.ctl;
    for (let i = 0; i < MAILBOXES; i++) {
      const base = MAILBOX_BASE + i * MAILBOX_WORDS;
      if (Atomics.compareExchange(ctl, base + OWNER, 0, this.#core.taskId) === 0) {
        this.#mailbox = i;
        this.#handled = Atomics.load(ctl, base + REQ_SEQ);
        Atomics.store(ctl, base + RESP_SEQ, this.#handled);
        Atomics.store(ctl, base + LOCK, 0);
        this.#listen();
        return;
      }
    }
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
