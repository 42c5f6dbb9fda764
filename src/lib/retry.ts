/**
 * Caller-side retry loops: XFS's kmem_alloc() (fs/xfs/kmem.c, kernel-mm.md
 * §8.1) with the limits of XFS's error configuration (§8.3), so that
 * "retry in the caller with a canary" can be run against "__GFP_NOFAIL in
 * the allocator" on the same pool.
 *
 *   do {
 *     page = alloc(gfp | NOWARN)            // XFS prints its own warning
 *     if (page) return page
 *     if (a limit has expired) fail         // maxRetries, retryTimeoutSeconds
 *     if (!(++retries % 100))
 *       warn "possible memory allocation deadlock size N in CALLER (mode:0x…)"
 *     memalloc_retry_wait(gfp)              // 1 ms if it may block, else 20 ms
 *   } while (1)
 *
 * Limits, as /sys/fs/xfs/<dev>/error/…: maxRetries −1 retries forever, 0
 * fails at the first failure, N fails after N retries (N + 1 attempts);
 * retryTimeoutSeconds −1 forever, 0 fails at the first failure, N gives up
 * once N seconds have passed since the first attempt. Whichever expires
 * first fails the loop, with an AllocError (ENOMEM) that names the caller
 * and the retries made.
 *
 * fail_at_unmount: pool.close() in the loop's thread fails every pending
 * loop of that thread with ERR_POOL_CLOSED, at once, even one asleep or
 * waiting inside the allocator. Only ENOMEM is retried; any other error
 * from the pool (closed, bad arguments, ERR_WOULD_BLOCK) ends the loop.
 *
 * The canary is not rate-limited (XFS's is not) and ignores NOWARN: the
 * caller asked for a retry loop, and the canary is the loop's own report.
 */
import { AllocError, InvalidArgTypeError, OutOfRangeError, PoolClosedError, WouldBlockError } from '../errors.js';
import { optionKeys, validateOptions } from '../validators.js';
import { formatGfp, GFP, type GfpMask, type Page, type Pool, validateGfp } from '../mm/index.js';
import { canBlock, internals, type PoolInternals, retryWaitMs, warn } from '../mm/internal.js';

export interface RetryAllocOptions {
  /** Order of the block: 2^order pages. Default 0. */
  order?: number;
  /** Who is allocating, for the canary and the failure (XFS prints __func__). Default 'unknown'. */
  caller?: string;
  /** −1 (default): retry forever; 0: fail at once; N: fail after N retries. */
  maxRetries?: number;
  /** −1 (default): forever; 0: fail at once; N: give up after N seconds (fractions allowed, at most 86400). */
  retryTimeoutSeconds?: number;
}

const RETRY_KEYS = optionKeys<RetryAllocOptions>()('order', 'caller', 'maxRetries', 'retryTimeoutSeconds');

/** Failures between two canaries, as XFS. */
export const RETRY_CANARY_INTERVAL = 100;
/** The largest retry_timeout_seconds XFS accepts: one day. */
export const RETRY_TIMEOUT_MAX_SECONDS = 86_400;

/** A retry loop that gave up: still an AllocError (ENOMEM), with what the loop did. */
export class RetryAllocError extends AllocError {
  readonly caller: string;
  /** Retries made after the first attempt. */
  readonly retries: number;
  /** The limit that expired first. */
  readonly limit: 'maxRetries' | 'retryTimeoutSeconds';
  constructor(message: string, d: { order: number; gfp: number; caller: string; retries: number; limit: RetryAllocError['limit'] }) {
    super(message, { order: d.order, gfp: d.gfp });
    this.caller = d.caller;
    this.retries = d.retries;
    this.limit = d.limit;
  }
}

interface Resolved {
  order: number;
  caller: string;
  maxRetries: number;
  timeoutMs: number;
}

function resolveOptions(pool: Pool, gfp: unknown, o: RetryAllocOptions): { core: PoolInternals; opts: Resolved } {
  let core: PoolInternals;
  try {
    core = internals(pool);
  } catch {
    throw new InvalidArgTypeError('pool must be a Pool');
  }
  validateGfp(gfp);
  validateOptions(o, 'options', RETRY_KEYS);
  const order = o.order ?? 0;
  if (typeof order !== 'number') throw new InvalidArgTypeError(`options.order must be a number; received ${typeof order}`);
  if (!Number.isInteger(order) || order < 0 || order > core.maxOrder) {
    throw new OutOfRangeError(`options.order must be an integer from 0 to ${core.maxOrder}; received ${order}`);
  }
  const caller = o.caller ?? 'unknown';
  if (typeof caller !== 'string') throw new InvalidArgTypeError(`options.caller must be a string; received ${typeof caller}`);
  const maxRetries = o.maxRetries ?? -1;
  if (typeof maxRetries !== 'number') {
    throw new InvalidArgTypeError(`options.maxRetries must be a number; received ${typeof maxRetries}`);
  }
  if (!Number.isSafeInteger(maxRetries) || maxRetries < -1) {
    throw new OutOfRangeError(`options.maxRetries must be -1 (forever) or an integer >= 0; received ${maxRetries}`);
  }
  const timeout = o.retryTimeoutSeconds ?? -1;
  if (typeof timeout !== 'number') {
    throw new InvalidArgTypeError(`options.retryTimeoutSeconds must be a number; received ${typeof timeout}`);
  }
  if (timeout !== -1 && !(timeout >= 0 && timeout <= RETRY_TIMEOUT_MAX_SECONDS)) {
    throw new OutOfRangeError(
      `options.retryTimeoutSeconds must be -1 (forever) or from 0 to ${RETRY_TIMEOUT_MAX_SECONDS}; received ${timeout}`,
    );
  }
  return { core, opts: { order, caller, maxRetries, timeoutMs: timeout === -1 ? Infinity : timeout * 1000 } };
}

/**
 * The loop's bookkeeping, shared by both drivers: counts a failure and
 * says what comes next — a RetryAllocError to throw, or how long to sleep.
 */
class RetryState {
  retries = 0;
  readonly #start = performance.now();
  readonly #o: Resolved;
  readonly #gfp: number;

  constructor(o: Resolved, gfp: number) {
    this.#o = o;
    this.#gfp = gfp;
  }

  /** After a failed attempt: the error that ends the loop, or the ms to sleep before the next. */
  failed(): RetryAllocError | number {
    const o = this.#o;
    const elapsed = performance.now() - this.#start;
    let limit: RetryAllocError['limit'] | null = null;
    if (o.maxRetries !== -1 && this.retries >= o.maxRetries) limit = 'maxRetries';
    else if (elapsed >= o.timeoutMs) limit = 'retryTimeoutSeconds';
    if (limit !== null) {
      return new RetryAllocError(
        `${o.caller}: page allocation failed after ${this.retries} retries in ${Math.round(elapsed)} ms ` +
          `(${limit} expired): order:${o.order}, mode:${formatGfp(this.#gfp)}`,
        { order: o.order, gfp: this.#gfp, caller: o.caller, retries: this.retries, limit },
      );
    }
    if (++this.retries % RETRY_CANARY_INTERVAL === 0) {
      warn(
        'alloc-deadlock',
        `possible memory allocation deadlock size ${4096 << o.order} in ${o.caller} (mode:0x${this.#gfp.toString(16)})`,
        { caller: o.caller, size: 4096 << o.order, order: o.order, gfp: this.#gfp, retries: this.retries },
        { ratelimit: false },
      );
    }
    // Never sleep past the deadline: the timeout is checked after the next attempt.
    return Math.max(0, Math.min(retryWaitMs(this.#gfp), o.timeoutMs - elapsed));
  }
}

function isEnomem(e: unknown): boolean {
  return e instanceof AllocError && e.code === 'ENOMEM';
}

/**
 * XFS's kmem_alloc loop, awaiting: retries an allocation of 2^order pages
 * until it succeeds, a limit expires, or the pool is closed. Any thread.
 */
export async function retryAlloc(pool: Pool, gfp: GfpMask, options: RetryAllocOptions = {}): Promise<Page> {
  const { core, opts } = resolveOptions(pool, gfp, options);
  if (core.closed) throw new PoolClosedError();
  const state = new RetryState(opts, gfp);
  const closing = new AbortController();
  let wake: (() => void) | null = null;
  // fail_at_unmount: close() aborts the attempt in flight and cuts a sleep short.
  const hook = () => {
    closing.abort(new PoolClosedError(`the pool was closed while ${opts.caller} was retrying an allocation`));
    wake?.();
  };
  core.closeHooks.add(hook);
  try {
    for (;;) {
      closing.signal.throwIfAborted();
      try {
        const page = await pool.allocAsync(gfp | GFP.NOWARN, opts.order, { signal: closing.signal });
        // Closed while the result was on its way: the page went back with the rest.
        closing.signal.throwIfAborted();
        return page;
      } catch (e) {
        if (closing.signal.aborted) throw closing.signal.reason;
        if (!isEnomem(e)) throw e;
      }
      const next = state.failed();
      if (typeof next !== 'number') throw next;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, next);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    core.closeHooks.delete(hook);
  }
}

/**
 * XFS's kmem_alloc loop, blocking: for workers. On the main thread it
 * throws ERR_WOULD_BLOCK where it would have to sleep (unless the pool
 * allows main-thread blocking).
 */
export function retryAllocSync(pool: Pool, gfp: GfpMask, options: RetryAllocOptions = {}): Page {
  const { core, opts } = resolveOptions(pool, gfp, options);
  if (core.closed) throw new PoolClosedError();
  const state = new RetryState(opts, gfp);
  // Only code this loop runs (a shrinker, a reclaim request) can close the
  // pool in this thread meanwhile; fail_at_unmount applies to it all the same.
  let closed = false;
  const hook = () => {
    closed = true;
  };
  core.closeHooks.add(hook);
  try {
    for (;;) {
      try {
        return pool.alloc(gfp | GFP.NOWARN, opts.order);
      } catch (e) {
        if (closed) throw new PoolClosedError(`the pool was closed while ${opts.caller} was retrying an allocation`);
        if (!isEnomem(e)) throw e;
      }
      const next = state.failed();
      if (typeof next !== 'number') throw next;
      if (!canBlock(core)) {
        throw new WouldBlockError(
          `${opts.caller}: a synchronous retry loop on the main thread would have to sleep; ` +
            'use retryAlloc(), or create the pool with allowMainThreadBlocking: true',
        );
      }
      sleepSync(core, next, () => closed);
      if (closed) throw new PoolClosedError(`the pool was closed while ${opts.caller} was retrying an allocation`);
    }
  } finally {
    core.closeHooks.delete(hook);
  }
}

/**
 * memalloc_retry_wait's sleep, in slices: between them the thread answers
 * other threads' reclaim requests and takes a pending OOM kill, as the
 * allocator's own waits do (wait.ts).
 */
const SLEEP_SLICE_MS = 5;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleepSync(core: PoolInternals, ms: number, closed: () => boolean): void {
  const deadline = performance.now() + ms;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0 || closed()) return;
    Atomics.wait(sleeper, 0, 0, Math.min(left, SLEEP_SLICE_MS));
    if (!core.closed) core.serviceRequests();
  }
}
