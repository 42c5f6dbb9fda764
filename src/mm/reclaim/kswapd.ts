/**
 * kswapd: background reclaim. Woken (CTL.KSWAPD_WAKE) when an allocation
 * with __GFP_KSWAPD_RECLAIM finds free pages below `low`, it reclaims until
 * free pages reach `high` — the hysteresis of one watermark gap — so that
 * allocators rarely reclaim themselves.
 *
 * nofail has no kernel thread to run it on: every thread that registered
 * shrinkers runs a kswapd over its own shrinkers on its event loop, between
 * its other work, so it never blocks a caller. Like the kernel's, it is not
 * woken after MAX_RECLAIM_RETRIES (16) consecutive runs that freed nothing,
 * until some reclaim succeeds again (reclaim.ts resets the count).
 */
import { CTL } from '../../binding/control.js';
import { GFP } from '../gfp.js';
import type { VmStat } from '../stats/vmstat.js';
import type { Watermarks } from '../watermarks.js';
import { DEF_PRIORITY } from './shrinker.js';

/** What kswapd needs of its thread's attachment (attachment.ts implements it). */
export interface KswapdHost {
  readonly closed: boolean;
  readonly ctl: Int32Array;
  readonly vmstat: VmStat;
  readonly wmark: Watermarks;
  freePages(): number;
  /** This thread's shrinkers (reclaim.ts): kswapd runs them on this event loop. */
  readonly reclaim: { shrinkLocal(gfp: number, priority: number, kswapd: boolean): number };
}

export const MAX_RECLAIM_RETRIES = 16;

export class Kswapd {
  readonly #core: KswapdHost;
  #running = false;
  /** Bumped by start/stop: a sleep loop of an earlier start() sees it and ends. */
  #generation = 0;
  #seen = 0;
  #balancing = false;

  constructor(core: KswapdHost) {
    this.#core = core;
  }

  /** wakeup_kswapd(): a no-op when hopeless or already balanced. */
  static wake(core: Pick<KswapdHost, 'ctl' | 'vmstat' | 'wmark' | 'freePages'>): void {
    const ctl = core.ctl;
    if (Atomics.load(ctl, CTL.KSWAPD_FAILURES) >= MAX_RECLAIM_RETRIES) {
      core.vmstat.add('kswapd_hopeless');
      return;
    }
    if (core.freePages() >= core.wmark.high) return;
    Atomics.add(ctl, CTL.KSWAPD_WAKE, 1);
    Atomics.notify(ctl, CTL.KSWAPD_WAKE);
    core.vmstat.add('kswapd_wakeups');
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#seen = Atomics.load(this.#core.ctl, CTL.KSWAPD_WAKE);
    this.#sleep(++this.#generation);
    // Below low already: balance soon, from the event loop — never inside
    // the caller that registered the shrinker.
    if (this.#core.freePages() < this.#core.wmark.low) setImmediate(() => void this.#balance());
  }

  stop(): void {
    this.#running = false;
    this.#generation++;
  }

  // Atomics.waitAsync does not keep the process alive: an idle thread with
  // shrinkers can still exit.
  #sleep(generation: number): void {
    if (generation !== this.#generation) return;
    if (!this.#running || this.#core.closed) {
      this.#running = false;
      return;
    }
    const r = Atomics.waitAsync(this.#core.ctl, CTL.KSWAPD_WAKE, this.#seen);
    const woken = () => {
      if (generation !== this.#generation) return;
      this.#seen = Atomics.load(this.#core.ctl, CTL.KSWAPD_WAKE);
      void this.#balance().then(() => this.#sleep(generation));
    };
    if (r.async) r.value.then(woken);
    else queueMicrotask(woken);
  }

  /** balance_pgdat(): priority 12 down to 0 until free pages reach `high`. */
  async #balance(): Promise<void> {
    const core = this.#core;
    if (this.#balancing || !this.#running || core.closed || core.freePages() >= core.wmark.high) return;
    this.#balancing = true;
    Atomics.add(core.ctl, CTL.KSWAPD_ACTIVE, 1);
    let freed = 0;
    try {
      core.vmstat.add('kswapd_runs');
      for (let prio = DEF_PRIORITY; prio >= 0 && core.freePages() < core.wmark.high; prio--) {
        const got = core.reclaim.shrinkLocal(GFP.KERNEL, prio, true);
        freed += got;
        // kswapd is background work: after a step that did something, let
        // the event loop run (and retry the same priority, as balance_pgdat
        // does while it makes progress).
        if (got > 0) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (core.closed) return;
          prio++;
        }
      }
    } finally {
      Atomics.sub(core.ctl, CTL.KSWAPD_ACTIVE, 1);
      this.#balancing = false;
    }
    if (freed === 0) Atomics.add(core.ctl, CTL.KSWAPD_FAILURES, 1);
  }
}
