/**
 * Waiting for memory, the one place that blocks (DESIGN §2). A waiter reads
 * the futex word (FREE_SEQ, or a reclaim mailbox's response word) before it
 * rechecks the pool, then blocks while the word still holds that value, so
 * a free between the recheck and the wait is never lost; every wait is
 * bounded, so a missed notify costs latency, never a hang.
 *
 * - Workers block with Atomics.wait after a short spin, in slices, answering
 *   other threads' reclaim requests between slices (a blocked thread's event
 *   loop cannot).
 * - The main thread never blocks its event loop: a synchronous allocation
 *   that would have to wait throws ERR_WOULD_BLOCK there, unless the pool
 *   was created with allowMainThreadBlocking. allocAsync waits with
 *   Atomics.waitAsync on any thread.
 */
import { isMainThread } from 'node:worker_threads';
import { CTL } from '../binding/control.js';
import { WouldBlockError } from '../errors.js';

/** A wait the slow path asks its driver for. */
export interface Wait {
  /** The array the word is in; the pool's control block when absent. */
  readonly on?: Int32Array;
  /** Word to wait on. */
  readonly word: number;
  /** Block only while the word still holds this value. */
  readonly expect: number;
  /** Upper bound of the wait. */
  readonly ms: number;
  /** Count this thread in WAITERS, so frees notify (waits for free memory). */
  readonly forMemory: boolean;
  /** Count the wait as a memory stall in PSI; default: forMemory. */
  readonly stall?: boolean;
  /** What the caller is waiting for, for ERR_WOULD_BLOCK's message. */
  readonly why: string;
}

export interface WaitHost {
  readonly ctl: Int32Array;
  /** PSI of the pool: waits for memory are memory stalls. */
  readonly psi: { stallEnter(): void; stallLeave(): void };
  /** The word that counts this thread's waits for memory (its task's WAITING), or -1. */
  readonly waitingWord: number;
  readonly allowMainThreadBlocking: boolean;
  /** Answers other threads' reclaim requests (reclaim.ts); called between wait slices. */
  serviceRequests(): void;
}

/** Spin iterations before blocking: a free on another core often lands within microseconds. */
const SPIN = 200;
/** Longest single Atomics.wait before this thread looks at its reclaim mailbox again. */
const SLICE_MS = 5;

export function canBlock(host: WaitHost): boolean {
  return !isMainThread || host.allowMainThreadBlocking;
}

export function waitSync(host: WaitHost, w: Wait): void {
  if (!canBlock(host)) {
    throw new WouldBlockError(
      `a synchronous allocation on the main thread would have to wait (${w.why}); ` +
        'use allocAsync(), or create the pool with allowMainThreadBlocking: true',
    );
  }
  const ctl = host.ctl;
  const on = w.on ?? ctl;
  for (let i = 0; i < SPIN; i++) if (Atomics.load(on, w.word) !== w.expect) return;
  if (w.forMemory) addWaiter(host, 1);
  const stall = w.stall ?? w.forMemory;
  if (stall) host.psi.stallEnter();
  try {
    const deadline = performance.now() + w.ms;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      if (Atomics.wait(on, w.word, w.expect, Math.min(left, SLICE_MS)) !== 'timed-out') return;
      host.serviceRequests();
    }
  } finally {
    if (stall) host.psi.stallLeave();
    if (w.forMemory) addWaiter(host, -1);
  }
}

/**
 * WAITERS counts threads waiting for memory (a free notifies only when it
 * is non-zero); the thread's own WAITING word says how much of it is this
 * thread's, so that native code can take it back if the thread is
 * terminated inside the wait and never runs its finally.
 */
function addWaiter(host: WaitHost, n: number): void {
  if (host.waitingWord >= 0) Atomics.add(host.ctl, host.waitingWord, n);
  Atomics.add(host.ctl, CTL.WAITERS, n);
}

export async function waitAsync(host: WaitHost, w: Wait, signal?: AbortSignal): Promise<void> {
  const ctl = host.ctl;
  signal?.throwIfAborted();
  if (w.forMemory) addWaiter(host, 1);
  const stall = w.stall ?? w.forMemory;
  if (stall) host.psi.stallEnter();
  // Neither Atomics.waitAsync nor AbortSignal.timeout() keeps the event
  // loop alive: a thread with nothing else to do would exit in the middle
  // of the wait (code 13 at a top-level await) instead of reaching its
  // retry or its TimeoutError. A ref'd timer for the (bounded) wait does;
  // it outlasts the wait by a second, since a timer due at the same moment
  // could run first and leave the loop empty before V8 resolves the wait.
  const keepAlive = Number.isFinite(w.ms) ? setTimeout(noop, Math.min(w.ms + 1000, 2 ** 31 - 1)) : undefined;
  try {
    const r = Atomics.waitAsync(w.on ?? ctl, w.word, w.expect, w.ms);
    if (!r.async) return;
    if (signal === undefined) {
      await r.value;
      return;
    }
    // V8 keeps its own record of the wait until the (bounded) timeout;
    // ours — WAITERS — goes at once.
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      r.value.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  } finally {
    clearTimeout(keepAlive);
    if (stall) host.psi.stallLeave();
    if (w.forMemory) addWaiter(host, -1);
  }
}

function noop(): void {}

/** Runs a waiting algorithm to completion, blocking this thread for its waits. */
export function driveSync<T>(host: WaitHost, gen: Generator<Wait, T, void>): T {
  let r = gen.next();
  try {
    while (!r.done) {
      waitSync(host, r.value);
      r = gen.next();
    }
  } catch (e) {
    gen.return(undefined as never);
    throw e;
  }
  return r.value;
}

/** Runs a waiting algorithm to completion, awaiting its waits; abortable. */
export async function driveAsync<T>(host: WaitHost, gen: Generator<Wait, T, void>, signal?: AbortSignal): Promise<T> {
  let r = gen.next();
  try {
    while (!r.done) {
      await waitAsync(host, r.value, signal);
      signal?.throwIfAborted();
      r = gen.next();
    }
  } catch (e) {
    gen.return(undefined as never);
    throw e;
  }
  return r.value;
}
