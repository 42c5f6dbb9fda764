/**
 * fail_page_alloc: the kernel's fault injection for the page allocator
 * (mm/fail_page_alloc.c, lib/fault-inject.c should_fail_ex), so that a
 * caller's failure paths can be exercised on purpose and reproducibly.
 *
 * The decision, in the kernel's order; the first rule that answers wins:
 *   should_fail_alloc_page
 *     order < minOrder                       -> no (default 1: order-0 is never failed)
 *     gfp has __GFP_NOFAIL                   -> no, ever: the contract outranks the test
 *     ignoreGfpWait and gfp may reclaim      -> no (default: only atomic callers fail)
 *   should_fail_ex(size = 4096 << order)
 *     failNth set                            -> count it down; fail exactly the Nth, else no
 *     probability 0                          -> no
 *     times 0                                -> no
 *     space > size                           -> space -= size; no
 *     interval > 1                           -> count++; no unless count % interval == 0
 *     random draw >= probability             -> no
 *     fail: dump (verbose, unless NOWARN); times-- unless -1
 *
 * Where nofail differs, on purpose: `space` is in bytes (the kernel passes
 * 1 << order, i.e. pages, to a knob its documentation calls bytes); `times`
 * defaults to -1, unlimited (the kernel's default of 1 makes `{ probability }`
 * fail once and stop); the PRNG is seeded, so a run can be replayed; the
 * dump goes through warn() and is rate-limited with the other allocation
 * failure warnings. There is no task filter, stack filter or highmem.
 */
import { InvalidArgTypeError, OutOfRangeError } from '../../errors.js';
import { optionKeys, validateOptions } from '../../validators.js';
import { PAGE_SHIFT, parseSize } from '../size.js';
import { warn } from '../stats/warn.js';

// GFP bits (gfp.ts). Not imported: gfp.ts loads the addon, and an injector
// is a pure decision that tests use without one.
const GFP_DIRECT_RECLAIM = 0x400;
const GFP_NOWARN = 0x2000;
const GFP_NOFAIL = 0x8000;

export interface FaultInjectOptions {
  /** Percent of eligible calls to fail, 0..100 (fractions allowed). Default 0: only failNth fails. */
  probability?: number;
  /** Fail only every Nth eligible call that got this far (>= 1). Default 1. */
  interval?: number;
  /** Failures left in total; -1 for unlimited. Default -1. */
  times?: number;
  /** Bytes (or a size string) of allocations to let through before any failure. Default 0. */
  space?: number | string;
  /** Smallest order that may be failed. Default 1, as the kernel: order-0 is never failed. */
  minOrder?: number;
  /** Do not fail allocations that may direct-reclaim (have DIRECT_RECLAIM). Default true. */
  ignoreGfpWait?: boolean;
  /** Fail exactly the Nth eligible call from now (/proc/self/fail-nth); 0 for off. Default 0. */
  failNth?: number;
  /** PRNG seed (uint32), to replay a run. Default: random; read it back from `seed`. */
  seed?: number;
  /** 0: silent; 1: one warning per failure; 2: with the stack. Default 2, as the kernel. */
  verbose?: 0 | 1 | 2;
}

const FAULT_INJECT_KEYS = optionKeys<FaultInjectOptions>()(
  'probability',
  'interval',
  'times',
  'space',
  'minOrder',
  'ignoreGfpWait',
  'failNth',
  'seed',
  'verbose',
);

export interface FaultInjectStats {
  /** Calls to shouldFail(). */
  checked: number;
  /** Failures injected. */
  injected: number;
}

export class FaultInjector {
  readonly probability: number;
  readonly interval: number;
  readonly minOrder: number;
  readonly ignoreGfpWait: boolean;
  readonly verbose: 0 | 1 | 2;
  /** The seed the PRNG started from. */
  readonly seed: number;
  #times: number;
  #space: number;
  #failNth: number;
  /** Eligible calls that reached the interval check (attr->count). */
  #count = 0;
  /** mulberry32 state. */
  #rng: number;
  #checked = 0;
  #injected = 0;

  constructor(opts: FaultInjectOptions = {}) {
    validateOptions(opts, 'faultInject options', FAULT_INJECT_KEYS);
    this.probability = number(opts.probability, 'probability', 0, 0, 100, false);
    this.interval = number(opts.interval, 'interval', 1, 1, Number.MAX_SAFE_INTEGER, true);
    this.#times = number(opts.times, 'times', -1, -1, Number.MAX_SAFE_INTEGER, true);
    this.#space = opts.space === undefined ? 0 : parseSize(opts.space, 'space');
    this.minOrder = number(opts.minOrder, 'minOrder', 1, 0, 31, true);
    this.#failNth = number(opts.failNth, 'failNth', 0, 0, Number.MAX_SAFE_INTEGER, true);
    if (opts.ignoreGfpWait !== undefined && typeof opts.ignoreGfpWait !== 'boolean') {
      throw new InvalidArgTypeError(`ignoreGfpWait must be a boolean; received ${typeof opts.ignoreGfpWait}`);
    }
    this.ignoreGfpWait = opts.ignoreGfpWait ?? true;
    if (opts.seed !== undefined) {
      this.seed = number(opts.seed, 'seed', 0, 0, 0xffffffff, true);
    } else {
      this.seed = Math.floor(Math.random() * 0x1_0000_0000) >>> 0;
    }
    this.#rng = this.seed;
    const verbose = number(opts.verbose, 'verbose', 2, 0, 2, true);
    this.verbose = verbose as 0 | 1 | 2;
  }

  /** Failures left (-1: unlimited). */
  get times(): number {
    return this.#times;
  }

  /** Bytes still to be let through before failures may start. */
  get space(): number {
    return this.#space;
  }

  /** The fail-nth countdown: 0 once the Nth call was failed (or when off), as the kernel reads back. */
  get failNth(): number {
    return this.#failNth;
  }

  get stats(): FaultInjectStats {
    return { checked: this.#checked, injected: this.#injected };
  }

  /** should_fail_alloc_page(): true if this allocation is to fail. */
  shouldFail(gfp: number, order: number): boolean {
    this.#checked++;
    if (order < this.minOrder) return false;
    if (gfp & GFP_NOFAIL) return false;
    if (this.ignoreGfpWait && gfp & GFP_DIRECT_RECLAIM) return false;
    return this.#shouldFailEx(gfp, order, 2 ** (PAGE_SHIFT + order));
  }

  /** should_fail_ex() over an eligible call of `size` bytes. */
  #shouldFailEx(gfp: number, order: number, size: number): boolean {
    // fail-nth outranks every other knob while it is set, and spends itself.
    if (this.#failNth > 0) {
      this.#failNth--;
      if (this.#failNth === 0) return this.#fail(gfp, order);
      return false;
    }
    if (this.probability === 0) return false;
    if (this.#times === 0) return false;
    // Strictly greater, as the kernel: a budget equal to the size is never
    // consumed, and that size may fail from then on.
    if (this.#space > size) {
      this.#space -= size;
      return false;
    }
    if (this.interval > 1) {
      this.#count++;
      if (this.#count % this.interval !== 0) return false;
    }
    if (this.#random() * 100 >= this.probability) return false;
    return this.#fail(gfp, order);
  }

  #fail(gfp: number, order: number): true {
    this.#injected++;
    if (this.verbose > 0 && !(gfp & GFP_NOWARN)) {
      const details: Record<string, unknown> = {
        name: 'fail_page_alloc',
        order,
        mode: `0x${(gfp >>> 0).toString(16)}`,
        interval: this.interval,
        probability: this.probability,
        space: this.#space,
        times: this.#times,
        seed: this.seed,
      };
      if (this.verbose === 2) details.stack = stackHere();
      warn('alloc-failure', 'FAULT_INJECTION: forcing a failure.', details);
    }
    // atomic_dec_not_zero: the fail-nth path fails even with times spent.
    if (this.#times > 0) this.#times--;
    return true;
  }

  /** mulberry32: a uniform number in [0, 1). */
  #random(): number {
    let t = (this.#rng = (this.#rng + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  }
}

/** The caller's stack, from the frame that called shouldFail(). */
function stackHere(): string {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, FaultInjector.prototype.shouldFail);
  return (holder.stack ?? '')
    .split('\n')
    .slice(1)
    .map((line) => line.trim())
    .join('\n');
}

/** An option that is a number in [min, max] (an integer if `integer`), or its default. */
function number(value: unknown, name: string, dflt: number, min: number, max: number, integer: boolean): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number') {
    throw new InvalidArgTypeError(`${name} must be a number; received ${typeof value}`);
  }
  if (Number.isNaN(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    const what = integer ? 'an integer' : 'a number';
    throw new OutOfRangeError(`${name} must be ${what} in ${min}..${max}; received ${value}`);
  }
  return value;
}
