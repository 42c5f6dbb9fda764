/**
 * Pressure Stall Information for one pool (kernel/sched/psi.c, memory only):
 * how much wall time threads attached to the pool spent stalled in
 * reclaim, OOM and reservation waits. Every thread attached to the pool
 * shares one 256-byte region of the control block, so /proc/pressure-style
 * numbers mean the whole pool, not one thread.
 *
 *   some  share of time in which at least one task was stalled
 *   full  share of time in which every active task was stalled at once
 *         (nothing productive ran: the thrashing signal)
 *
 * Each line has avg10/avg60/avg300, decaying averages in percent sampled
 * every PSI_FREQ with the kernel's fixed-point constants, and `total`, the
 * stall time in microseconds.
 *
 * Layout of the region (byteOffset must be 8-byte aligned):
 *
 *   Int32 words                        BigInt64 slots (ns, process.hrtime.bigint)
 *    0 LOCK     a task lock (tasks.ts)  8  STATE_START  last state change
 *                                       9  SOME_TOTAL   stall time, some
 *    1 INIT     1 once set up           10 FULL_TOTAL   stall time, full
 *    2 NR_ACTIVE   tasks attached       11 AVG_NEXT_UPDATE  when averages are due
 *    3 NR_STALLED  tasks stalled        12 AVG_LAST_UPDATE  when they were sampled
 *    4..6  avg10/60/300 of some         13 AVG_TOTAL_SOME   SOME_TOTAL at that sample
 *    7..9  avg10/60/300 of full         14 AVG_TOTAL_FULL   FULL_TOTAL at that sample
 *          (percent x FIXED_1)          15..31 unused
 *   10..15 unused
 *
 * Locking: LOCK guards everything else in the region; it is held only for a
 * few arithmetic steps, never across a wait or a call out, and released in
 * `finally`. It is a task lock (tasks.ts): the word names the holding
 * thread's task, so a waiter takes it over at once from a holder that is
 * gone (a worker terminated inside; its half-done update costs slightly
 * wrong numbers). Waiting for a live holder is bounded: the main thread
 * spins at most MAIN_SPIN_MS, a worker sleeps in short slices for at most
 * WORKER_WAIT_MS; then the caller does without the lock: a state change
 * applies its counts atomically and leaves the time since the last change
 * to be accounted by the next locked update, a reader reads the last
 * published numbers. PSI is statistics: it costs accuracy, never a hang.
 * NR_ACTIVE and NR_STALLED are therefore only ever changed with
 * Atomics.add. A Psi without a host (tests) has no task to name: its
 * holders are never taken over, only waited for within the same bounds.
 * Functions that need the lock held end in `Locked`.
 *
 * Clock: process.hrtime.bigint() (CLOCK_MONOTONIC), the same in every thread.
 * Totals are kept in nanoseconds, as the kernel keeps them, and shown in µs.
 *
 * Sampling is lazy: whichever thread changes state or takes a snapshot after
 * the averages are due updates them (kernel: a delayed work item every 2 s);
 * startSampler() adds the timer for threads that want averages to decay
 * while nothing happens. Late samples are handled as update_averages() does:
 * missed periods decay with zero pressure, the latest period gets the sample,
 * and time beyond the period is carried into the next samples.
 */
// psi.ts loads no addon: its unit test runs it in workers over the bare
// source (test/fixtures/transpile-src.ts), so it imports nothing that does.
import { isMainThread } from 'node:worker_threads';
import { InvalidArgTypeError, OutOfRangeError } from '../../errors.js';
import { optionKeys, validateOptions } from '../../validators.js';
import { HOLDER_BITS, type LockHost, lockHolder, lockTestPause, TASK_LOCK_FLAG, taskUnlock, tryTaskLock } from '../task-lock.js';

export const PSI_BYTES = 256;

/** Sampling period of the averages (the kernel's is 2*HZ+1 jiffies, ≈ 2 s). */
export const PSI_FREQ_MS = 2000;
const PSI_FREQ_NS = BigInt(PSI_FREQ_MS) * 1_000_000n;

/** Fixed point of the averages: 1.0 == FIXED_1 (include/linux/sched/loadavg.h). */
export const FSHIFT = 11;
export const FIXED_1 = 1 << FSHIFT;
/** 1/exp(2s/10s), 1/exp(2s/60s), 1/exp(2s/300s) in fixed point. */
export const EXP_10s = 1677;
export const EXP_60s = 1981;
export const EXP_300s = 2034;

/** Trigger windows (WINDOW_MIN_US, WINDOW_MAX_US). */
export const PSI_WINDOW_MIN_US = 500_000;
export const PSI_WINDOW_MAX_US = 10_000_000;

/** How long the main thread spins for LOCK before it does without (Locking above). */
const MAIN_SPIN_MS = 0.1;
/** How long a worker waits for LOCK, in sleeps of WAIT_SLICE_MS, before it does without. */
const WORKER_WAIT_MS = 5;
const WAIT_SLICE_MS = 0.05;
/** Tries between looks at the clock and at the holder (which asks the native ledger). */
const SPINS_PER_CHECK = 64;
/** The holder a Psi without a host writes: one no task id can be mistaken for (never taken over). */
const NO_HOST: LockHost = { taskId: (1 << HOLDER_BITS) - 1, tasks: null as never, taskLive: () => true };

// Int32 word indices.
const LOCK = 0;
const INIT = 1;
const NR_ACTIVE = 2;
const NR_STALLED = 3;
const AVG_SOME = 4;
const AVG_FULL = 7;
// BigInt64 slot indices.
const STATE_START = 8;
const SOME_TOTAL = 9;
const FULL_TOTAL = 10;
const AVG_NEXT_UPDATE = 11;
const AVG_LAST_UPDATE = 12;
const AVG_TOTAL_SOME = 13;
const AVG_TOTAL_FULL = 14;

export type PsiKind = 'some' | 'full';

export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  /** Total stall time, microseconds. */
  total: number;
}

export interface PsiSnapshot {
  some: PsiLine;
  full: PsiLine;
}

export interface PsiTriggerOptions {
  kind: PsiKind;
  /** Stall time within the window that fires the trigger, µs: 1..windowUs. */
  stallUs: number;
  /** The tracking window, µs: 500 000..10 000 000. */
  windowUs: number;
}

export interface PsiEvent extends PsiTriggerOptions {
  /** Stall time seen in the window when the trigger fired, µs. */
  growthUs: number;
}

// --- the kernel's arithmetic, pure -------------------------------------------

/** calc_load(): one step of an exponential decay in fixed point; rounds up while rising. */
export function calcLoad(load: number, exp: number, active: number): number {
  let newload = load * exp + active * (FIXED_1 - exp);
  if (active >= load) newload += FIXED_1 - 1;
  return Math.floor(newload / FIXED_1);
}

/** fixed_power_int(): x^n in fixed point with `fracBits` fraction bits, rounding each step. */
export function fixedPowerInt(x: number, fracBits: number, n: number): number {
  const one = 2 ** fracBits;
  const half = one / 2;
  let result = one;
  if (n > 0) {
    for (;;) {
      if (n & 1) result = Math.floor((result * x + half) / one);
      n = Math.floor(n / 2);
      if (n === 0) break;
      x = Math.floor((x * x + half) / one);
    }
  }
  return result;
}

/** calc_load_n(): `n` steps of calc_load with the same `active`. */
export function calcLoadN(load: number, exp: number, active: number, n: number): number {
  return calcLoad(load, fixedPowerInt(exp, FSHIFT, n), active);
}

/**
 * calc_avgs(): fold `missedPeriods` idle periods, then one period in which
 * `time` of `period` was stalled, into avg[0..2] (10 s, 60 s, 300 s).
 * The sample is whole percent, as the kernel's div_u64(time * 100, period).
 */
export function calcAvgs(avg: number[], missedPeriods: number, time: number, period: number): void {
  if (missedPeriods > 0) {
    avg[0] = calcLoadN(avg[0]!, EXP_10s, 0, missedPeriods);
    avg[1] = calcLoadN(avg[1]!, EXP_60s, 0, missedPeriods);
    avg[2] = calcLoadN(avg[2]!, EXP_300s, 0, missedPeriods);
  }
  const pct = Math.floor((time * 100) / period) * FIXED_1;
  avg[0] = calcLoad(avg[0]!, EXP_10s, pct);
  avg[1] = calcLoad(avg[1]!, EXP_60s, pct);
  avg[2] = calcLoad(avg[2]!, EXP_300s, pct);
}

/** A fixed-point average as /proc/pressure prints it: LOAD_INT.LOAD_FRAC, two decimals. */
export function avgToPercent(avg: number): number {
  const int = Math.floor(avg / FIXED_1);
  const frac = Math.floor(((avg % FIXED_1) * 100) / FIXED_1);
  return (int * 100 + frac) / 100;
}

// --- the shared state --------------------------------------------------------

export class Psi {
  readonly #i32: Int32Array;
  readonly #i64: BigInt64Array;
  /** This thread's task in the pool whose control block holds the region; NO_HOST for a bare region. */
  readonly #host: LockHost;
  /** Nesting of stallEnter() in this thread: only the outermost counts. */
  #depth = 0;
  #started = false;
  #sampler: ReturnType<typeof setTimeout> | undefined;

  /**
   * `host`: this thread's task in the pool whose control block holds the
   * region (lockHost(core)), which the lock word names; without one the lock
   * cannot be taken over from a dead holder.
   */
  constructor(sab: SharedArrayBuffer, byteOffset: number, host?: LockHost) {
    if (!(sab instanceof SharedArrayBuffer)) {
      throw new InvalidArgTypeError(`Psi(sab): sab must be a SharedArrayBuffer; received ${typeof sab}`);
    }
    if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % 8 !== 0 || byteOffset + PSI_BYTES > sab.byteLength) {
      throw new OutOfRangeError(
        `Psi(byteOffset): must be a multiple of 8 with ${PSI_BYTES} bytes after it inside the buffer (${sab.byteLength} bytes); received ${byteOffset}`,
      );
    }
    this.#i32 = new Int32Array(sab, byteOffset, PSI_BYTES / 4);
    this.#i64 = new BigInt64Array(sab, byteOffset, PSI_BYTES / 8);
    this.#host = host ?? NO_HOST;
    // The creating thread sets the region up before any other can reach it.
    if (!this.#lock()) return;
    try {
      if (this.#i32[INIT] === 0) {
        const now = process.hrtime.bigint();
        this.#i64[STATE_START] = now;
        this.#i64[AVG_LAST_UPDATE] = now;
        this.#i64[AVG_NEXT_UPDATE] = now + PSI_FREQ_NS;
        this.#i32[INIT] = 1;
      }
    } finally {
      this.#unlock();
    }
  }

  /** This thread becomes an active task of the pool (once; attach). */
  taskStart(): void {
    if (this.#started) return;
    this.#started = true;
    this.#change(NR_ACTIVE, 1, 0);
  }

  /** This thread stops being a task (detach); a stall it is in ends with it. */
  taskStop(): void {
    if (!this.#started) return;
    this.#started = false;
    const stalled = this.#depth > 0 ? -1 : 0;
    this.#depth = 0;
    this.#change(NR_ACTIVE, -1, stalled);
  }

  /** psi_memstall_enter(): this thread starts waiting for memory. Nests. */
  stallEnter(): void {
    if (this.#depth++ === 0) this.#change(NR_STALLED, 1, 0);
  }

  /** psi_memstall_leave(): the matching end; unmatched calls do nothing. */
  stallLeave(): void {
    if (this.#depth === 0) return;
    if (--this.#depth === 0) this.#change(NR_STALLED, -1, 0);
  }

  /** /proc/pressure/memory for this pool. */
  snapshot(): PsiSnapshot {
    const i32 = this.#i32;
    const i64 = this.#i64;
    const locked = this.#lock();
    try {
      if (locked) this.#updateLocked(process.hrtime.bigint());
      const avgs = (w: number) => [Atomics.load(i32, w), Atomics.load(i32, w + 1), Atomics.load(i32, w + 2)];
      return {
        some: line(avgs(AVG_SOME), Atomics.load(i64, SOME_TOTAL)),
        full: line(avgs(AVG_FULL), Atomics.load(i64, FULL_TOTAL)),
      };
    } finally {
      if (locked) this.#unlock();
    }
  }

  /**
   * Samples the averages on time even when no thread touches the pool
   * (psi_avgs_work). One timer per thread, unref()'d; returns its stop.
   */
  startSampler(): () => void {
    const tick = (): void => {
      const locked = this.#lock();
      const now = process.hrtime.bigint();
      let next: bigint;
      try {
        if (locked) this.#updateLocked(now);
        next = Atomics.load(this.#i64, AVG_NEXT_UPDATE);
      } finally {
        if (locked) this.#unlock();
      }
      // Like the kernel's schedule_delayed_work(expires - now + 1): just
      // after the due time (soon, when the lock was not had and it is past).
      this.#sampler = setTimeout(tick, Math.max(0, Number((next - now) / 1_000_000n)) + 1).unref();
    };
    if (this.#sampler === undefined) tick();
    return () => {
      clearTimeout(this.#sampler);
      this.#sampler = undefined;
    };
  }

  /**
   * A pressure trigger (`echo "some 150000 1000000" > /proc/pressure/memory`
   * then poll for POLLPRI): `cb` runs when the stall time of `kind` grew by
   * at least `stallUs` within the last `windowUs`, at most once per window.
   * Polled 10 times per window from an unref()'d timer on this thread.
   * Returns the function that removes the trigger.
   */
  trigger(opts: PsiTriggerOptions, cb: (e: PsiEvent) => void): () => void {
    const { kind, stallUs, windowUs } = validateTrigger(opts, cb);
    const win = BigInt(windowUs) * 1000n;
    const threshold = BigInt(stallUs) * 1000n;
    // psi_trigger_create: window_reset(now, total, 0); last_event_time 0.
    let { now, total } = this.#readTotal(kind);
    let winStart = now;
    let winStartValue = total;
    let prevGrowth = 0n;
    let lastTotal = total;
    let lastEventTime = 0n;
    let pending = false;
    let growth = 0n;
    const poll = (): void => {
      ({ now, total } = this.#readTotal(kind));
      const newStall = total !== lastTotal;
      lastTotal = total;
      // update_triggers(): only new stall, or a breach held back by the
      // once-per-window limit, can fire.
      if (!newStall && !pending) return;
      if (newStall) {
        // window_update(): a sliding window approximated by interpolating
        // the previous window's growth over the part not yet elapsed.
        const elapsed = now - winStart;
        growth = total - winStartValue;
        if (elapsed > win) {
          winStart = now;
          winStartValue = total;
          prevGrowth = growth;
        } else {
          growth += (prevGrowth * (win - elapsed)) / win;
        }
        if (!pending) {
          if (growth < threshold) return;
          pending = true;
        }
      }
      if (now < lastEventTime + win) return;
      lastEventTime = now;
      pending = false;
      cb({ kind, stallUs, windowUs, growthUs: Number(growth / 1000n) });
    };
    const timer = setInterval(poll, windowUs / 10_000).unref();
    return () => clearInterval(timer);
  }

  #readTotal(kind: PsiKind): { now: bigint; total: bigint } {
    const locked = this.#lock();
    try {
      const now = process.hrtime.bigint();
      if (locked) this.#updateLocked(now);
      return { now, total: Atomics.load(this.#i64, kind === 'some' ? SOME_TOTAL : FULL_TOTAL) };
    } finally {
      if (locked) this.#unlock();
    }
  }

  /**
   * A state change: account the time since the last one under the old
   * state, then apply (without the lock: only apply, see Locking).
   */
  #change(word: number, delta: number, stalledDelta: number): void {
    const locked = this.#lock();
    try {
      if (locked) this.#updateLocked(process.hrtime.bigint());
      Atomics.add(this.#i32, word, delta);
      if (stalledDelta !== 0) Atomics.add(this.#i32, NR_STALLED, stalledDelta);
    } finally {
      if (locked) this.#unlock();
    }
  }

  /** record_times() up to `now`, then update_averages() if they are due. */
  #updateLocked(now: bigint): void {
    const i32 = this.#i32;
    const i64 = this.#i64;
    const start = i64[STATE_START]!;
    if (now > start) {
      const delta = now - start;
      i64[STATE_START] = now;
      const stalled = Atomics.load(i32, NR_STALLED);
      if (stalled > 0) {
        i64[SOME_TOTAL]! += delta;
        if (stalled >= Atomics.load(i32, NR_ACTIVE)) i64[FULL_TOTAL]! += delta;
      }
    }
    if (now >= i64[AVG_NEXT_UPDATE]!) i64[AVG_NEXT_UPDATE] = this.#updateAveragesLocked(now);
  }

  /** update_averages(): returns when the next sample is due. */
  #updateAveragesLocked(now: bigint): bigint {
    const i32 = this.#i32;
    const i64 = this.#i64;
    const expires = i64[AVG_NEXT_UPDATE]!;
    const missed = now - expires >= PSI_FREQ_NS ? (now - expires) / PSI_FREQ_NS : 0n;
    // Fixed steps from the first due time, so a late sample does not drift
    // the schedule; the sample itself covers the time that really passed.
    const next = expires + (1n + missed) * PSI_FREQ_NS;
    const period = now - (i64[AVG_LAST_UPDATE]! + missed * PSI_FREQ_NS);
    i64[AVG_LAST_UPDATE] = now;
    if (period <= 0n) return next;
    const avg = [0, 0, 0];
    for (const [totalSlot, seenSlot, avgWord] of [
      [SOME_TOTAL, AVG_TOTAL_SOME, AVG_SOME],
      [FULL_TOTAL, AVG_TOTAL_FULL, AVG_FULL],
    ] as const) {
      let sample = i64[totalSlot]! - i64[seenSlot]!;
      // Stall beyond the period (a late sample) is not dropped and not
      // shown as more than 100 %: it is carried into the next periods.
      if (sample > period) sample = period;
      i64[seenSlot]! += sample;
      for (let w = 0; w < 3; w++) avg[w] = i32[avgWord + w]!;
      calcAvgs(avg, Number(missed), Number(sample), Number(period));
      for (let w = 0; w < 3; w++) i32[avgWord + w] = avg[w]!;
    }
    return next;
  }

  /**
   * Takes LOCK, from a holder that is gone too; false when a live holder
   * kept it past this thread's bound (Locking above): the caller goes on
   * without it.
   */
  #lock(): boolean {
    const host = this.#host;
    if (host !== NO_HOST) host.tasks.setFlags(host.taskId, TASK_LOCK_FLAG.IN_PSI_LOCK);
    if (tryTaskLock(host, this.#i32, LOCK, TASK_LOCK_FLAG.IN_PSI_LOCK, false) || this.#lockSlow()) {
      lockTestPause?.('psi');
      return true;
    }
    if (host !== NO_HOST) host.tasks.clearFlags(host.taskId, TASK_LOCK_FLAG.IN_PSI_LOCK);
    return false;
  }

  #lockSlow(): boolean {
    const host = this.#host;
    const i32 = this.#i32;
    const deadline = performance.now() + (isMainThread ? MAIN_SPIN_MS : WORKER_WAIT_MS);
    for (let n = 1; ; n++) {
      const check = n % SPINS_PER_CHECK === 0;
      if (tryTaskLock(host, i32, LOCK, TASK_LOCK_FLAG.IN_PSI_LOCK, check && host !== NO_HOST)) return true;
      if (!check) continue;
      if (performance.now() > deadline) return false;
      if (!isMainThread) {
        const seen = Atomics.load(i32, LOCK);
        if (lockHolder(seen) !== 0) Atomics.wait(i32, LOCK, seen, WAIT_SLICE_MS);
      }
    }
  }

  #unlock(): void {
    const host = this.#host;
    taskUnlock(host, this.#i32, LOCK);
    if (host !== NO_HOST) host.tasks.clearFlags(host.taskId, TASK_LOCK_FLAG.IN_PSI_LOCK);
  }
}

function line(avg: number[], totalNs: bigint): PsiLine {
  return {
    avg10: avgToPercent(avg[0]!),
    avg60: avgToPercent(avg[1]!),
    avg300: avgToPercent(avg[2]!),
    total: Number(totalNs / 1000n),
  };
}

const PSI_TRIGGER_KEYS = optionKeys<PsiTriggerOptions>()('kind', 'stallUs', 'windowUs');

function validateTrigger(opts: PsiTriggerOptions, cb: unknown): PsiTriggerOptions {
  validateOptions(opts, 'psiTrigger options', PSI_TRIGGER_KEYS);
  const { kind, stallUs, windowUs } = opts;
  if (kind !== 'some' && kind !== 'full') {
    throw new InvalidArgTypeError(`trigger: kind must be 'some' or 'full'; received ${String(kind)}`);
  }
  if (typeof windowUs !== 'number' || typeof stallUs !== 'number') {
    throw new InvalidArgTypeError(`trigger: windowUs and stallUs must be numbers of microseconds`);
  }
  if (!Number.isInteger(windowUs) || windowUs < PSI_WINDOW_MIN_US || windowUs > PSI_WINDOW_MAX_US) {
    throw new OutOfRangeError(
      `trigger: windowUs must be an integer in ${PSI_WINDOW_MIN_US}..${PSI_WINDOW_MAX_US} (0.5 s to 10 s); received ${windowUs}`,
    );
  }
  if (!Number.isInteger(stallUs) || stallUs < 1 || stallUs > windowUs) {
    throw new OutOfRangeError(`trigger: stallUs must be an integer in 1..windowUs (${windowUs}); received ${stallUs}`);
  }
  if (typeof cb !== 'function') {
    throw new InvalidArgTypeError(`trigger(opts, cb): cb must be a function; received ${typeof cb}`);
  }
  return { kind, stallUs, windowUs };
}
