/**
 * Reservations — the 2015 proposals that were never merged, first-class here.
 *
 * watermark (Dave Chinner): a reservation is accounting, not
 *   preallocation. Taking one raises every watermark by `pages` for every
 *   caller without __GFP_RESERVE, and waits — waking kswapd, reclaiming —
 *   while free memory is below the raised mark. Inside reservation.run(),
 *   GFP.RESERVE allocations may use the reserved pages and are charged to
 *   the reservation; release() gives back what is left. When memory is
 *   plentiful a reservation costs one native call to take and one to give
 *   back. (Outside any run() scope GFP.RESERVE grants nothing.)
 *
 * tokens (Andrew Morton): the pages are taken at reserve time and held by
 *   the reservation; allocations in its scope take those first. Simple and
 *   fast inside the scope, but the memory sits idle until used — Chinner's
 *   objection for demand-paged filesystem metadata.
 *
 * Either kind belongs to the thread that took it: the native ledger
 * charges the reservation to the thread's task, so a thread that exits
 * or is terminated leaves nothing reserved.
 */
import { markContextsUsed } from './context.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { CTL } from '../binding/control.js';
import type { Attachment } from './attachment.js';
import { InvalidArgTypeError, OutOfRangeError, PoolClosedError } from '../errors.js';
import { optionKeys, validateOptions } from '../validators.js';
import { GFP } from './gfp.js';
import { Kswapd } from './reclaim/kswapd.js';
import { ALLOC, native, STATUS } from '../binding/native.js';
import { driveAsync, driveSync, type Wait } from './wait.js';

export type ReservationMode = 'watermark' | 'tokens';

export interface ReserveOptions {
  /** 'watermark' (default) or 'tokens'. */
  mode?: ReservationMode;
  /** Give up after this long: a TimeoutError, and nothing stays reserved. */
  timeoutMs?: number;
}

export interface ReserveAsyncOptions extends ReserveOptions {
  /** Abort the wait: the promise rejects with the signal's reason, nothing stays reserved. */
  signal?: AbortSignal;
}

const scope = new AsyncLocalStorage<Reservation>();
let reservationsUsed = false;

/** The reservation whose run() scope we are in, if any. */
export function currentReservation(): Reservation | undefined {
  return reservationsUsed ? scope.getStore() : undefined;
}

export class Reservation {
  /** Pages asked for. */
  readonly pages: number;
  readonly mode: ReservationMode;
  readonly #core: Attachment;
  #remaining: number;
  /** Token pages: (pfn, gen) pairs, the top is used first. */
  readonly #tokens: Int32Array | null;
  #released = false;

  /** @internal pool.reserve() and reserveAsync() make them. */
  static make(core: Attachment, pages: number, mode: ReservationMode, tokens: Int32Array | null): Reservation {
    return new Reservation(core, pages, mode, tokens);
  }

  private constructor(core: Attachment, pages: number, mode: ReservationMode, tokens: Int32Array | null) {
    this.#core = core;
    this.pages = pages;
    this.mode = mode;
    this.#remaining = pages;
    this.#tokens = tokens;
  }

  /** Pages still reserved (not yet used). */
  get remaining(): number {
    return this.#remaining;
  }

  get released(): boolean {
    return this.#released;
  }

  /**
   * Runs fn in the reservation's scope (sync and async): GFP.RESERVE
   * allocations may use a watermark reservation; order-0 allocations take a
   * token reservation's pages first.
   */
  run<T>(fn: () => T): T {
    if (typeof fn !== 'function') throw new InvalidArgTypeError('fn must be a function');
    reservationsUsed = true;
    markContextsUsed();
    return scope.run(this, fn);
  }

  /**
   * @internal A watermark reservation lends `pages` to an allocation:
   * they leave the reservation (and the raised watermark) now. Returns
   * false when too few are left.
   */
  charge(pages: number): boolean {
    if (this.#released || this.mode !== 'watermark' || this.#remaining < pages) return false;
    native.addReserved(this.#core.slot, -pages);
    this.#remaining -= pages;
    return true;
  }

  /** @internal The allocation that was charged failed: the pages go back into the reservation. */
  uncharge(pages: number): void {
    if (this.#released) return;
    native.addReserved(this.#core.slot, pages);
    this.#remaining += pages;
  }

  /** @internal A token page for an order-0 allocation charged to `task`, as native.alloc encodes pages; -1 when none is left. */
  takeToken(task: number): number {
    const t = this.#tokens;
    if (t === null || this.#released || this.#remaining === 0) return -1;
    const i = --this.#remaining;
    const pfn = t[2 * i]!;
    const gen = t[2 * i + 1]!;
    // From this thread's task to the allocating task (a logical one, or the
    // thread again: then this is a no-op but for the bookkeeping below).
    if (task !== 0) native.setOwner(this.#core.slot, pfn, 0, gen, task, 0);
    addTokens(this.#core, -1);
    return pfn * 2 ** native.genBits + gen;
  }

  /** Returns what is left of the reservation. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    const core = this.#core;
    const left = this.#remaining;
    this.#remaining = 0;
    if (left === 0 || core.closed) return;
    if (this.mode === 'watermark') {
      native.addReserved(core.slot, -left);
    } else {
      const refs = new Int32Array(3 * left);
      for (let i = 0; i < left; i++) {
        refs[3 * i] = this.#tokens![2 * i]!;
        refs[3 * i + 2] = this.#tokens![2 * i + 1]!;
      }
      native.freeBulk(core.slot, refs, left);
      addTokens(core, -left);
    }
    core.wakeWaiters();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

const RESERVE_KEYS = optionKeys<ReserveAsyncOptions>()('mode', 'timeoutMs', 'signal');

export function checkReserveArgs(core: Attachment, pages: unknown, o: ReserveOptions): { pages: number; mode: ReservationMode } {
  if (core.closed) throw new PoolClosedError();
  if (typeof pages !== 'number') throw new InvalidArgTypeError(`pages must be a number; received ${typeof pages}`);
  if (!Number.isInteger(pages) || pages < 1 || pages > core.totalPages) {
    throw new OutOfRangeError(`pages must be an integer from 1 to ${core.totalPages}; received ${pages}`);
  }
  validateOptions(o, 'options', RESERVE_KEYS);
  const mode = o.mode ?? 'watermark';
  if (mode !== 'watermark' && mode !== 'tokens') throw new OutOfRangeError(`mode must be 'watermark' or 'tokens'; received ${String(mode)}`);
  if (o.timeoutMs !== undefined && (typeof o.timeoutMs !== 'number' || !(o.timeoutMs >= 0) || !Number.isFinite(o.timeoutMs))) {
    throw new OutOfRangeError(`timeoutMs must be a finite number >= 0; received ${String(o.timeoutMs)}`);
  }
  return { pages, mode };
}

/** pool.reserve(): blocks (a worker) or throws ERR_WOULD_BLOCK (the main thread) when it must wait. */
export function reserve(core: Attachment, pages: number, options: ReserveOptions): Reservation {
  const r = checkReserveArgs(core, pages, options);
  // Memory is plentiful: one native call, no waiting machinery.
  if (r.mode === 'watermark' && tryWatermark(core, r.pages)) return Reservation.make(core, r.pages, 'watermark', null);
  return driveSync(core, acquire(core, r.pages, r.mode, options.timeoutMs));
}

/** pool.reserveAsync(): waits without blocking; abortable. */
export function reserveAsync(core: Attachment, pages: number, options: ReserveAsyncOptions): Promise<Reservation> {
  const r = checkReserveArgs(core, pages, options);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new InvalidArgTypeError('options.signal must be an AbortSignal');
  }
  return driveAsync(core, acquire(core, r.pages, r.mode, options.timeoutMs), options.signal);
}

/**
 * Takes a reservation, reclaiming and waiting while free memory is below
 * the raised mark. Yields its waits to a driver (sync or async).
 */
export function* acquire(core: Attachment, pages: number, mode: ReservationMode, timeoutMs: number | undefined): Generator<Wait, Reservation, void> {
  const deadline = timeoutMs === undefined ? Infinity : performance.now() + timeoutMs;
  const tokens = mode === 'tokens' ? new Int32Array(2 * pages) : null;
  let waited = false;
  for (;;) {
    const seq = Atomics.load(core.ctl, CTL.FREE_SEQ);
    if (tokens === null ? tryWatermark(core, pages) : takeTokens(core, pages, tokens)) {
      return Reservation.make(core, pages, mode, tokens);
    }
    if (!waited) {
      waited = true;
      core.vmstat.add('reserve_waits');
    }
    // Below the raised mark: wake kswapd, reclaim here, then wait for frees.
    Kswapd.wake(core);
    core.drainOwn();
    core.psi.stallEnter();
    try {
      yield* core.reclaim.direct(GFP.KERNEL, 0);
    } finally {
      core.psi.stallLeave();
    }
    if (tokens === null ? tryWatermark(core, pages) : takeTokens(core, pages, tokens)) {
      return Reservation.make(core, pages, mode, tokens);
    }
    core.drainAll();
    const left = deadline - performance.now();
    if (left <= 0) throw new DOMException(`reserving ${pages} pages timed out after ${timeoutMs} ms`, 'TimeoutError');
    yield { word: CTL.FREE_SEQ, expect: seq, ms: Math.min(left, 50), forMemory: true, why: `reserving ${pages} pages` };
  }
}

/**
 * Watermark mode: reserved only while free pages stay above MIN plus every
 * reservation — the reservation is pages the allocator could hand out now.
 */
export function tryWatermark(core: Attachment, pages: number): boolean {
  return native.tryReserve(core.slot, pages, ALLOC.WMARK_MIN);
}

/** Token mode: the pages themselves, all or none, above min + the other reservations. */
function takeTokens(core: Attachment, pages: number, out: Int32Array): boolean {
  const r = native.allocBulk(core.slot, pages, 0, ALLOC.WMARK_MIN, 0, out);
  if (r === STATUS.NOMEM_WATERMARK || r === STATUS.NOMEM_FRAGMENTED || r < 0) return false;
  addTokens(core, pages);
  return true;
}

/** Publishes this thread's token pages (its task-table entry), for stats() in every thread. */
function addTokens(core: Attachment, n: number): void {
  if (core.tokensWord >= 0) Atomics.add(core.ctl, core.tokensWord, n);
}
