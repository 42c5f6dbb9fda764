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
 *    0 LOCK     0 free, else holder's   8  STATE_START  last state change
 *               threadId + 1            9  SOME_TOTAL   stall time, some
 *    1 INIT     1 once set up           10 FULL_TOTAL   stall time, full
 *    2 NR_ACTIVE   tasks attached       11 AVG_NEXT_UPDATE  when averages are due
 *    3 NR_STALLED  tasks stalled        12 AVG_LAST_UPDATE  when they were sampled
 *    4..6  avg10/60/300 of some         13 AVG_TOTAL_SOME   SOME_TOTAL at that sample
 *    7..9  avg10/60/300 of full         14 AVG_TOTAL_FULL   FULL_TOTAL at that sample
 *          (percent x FIXED_1)          15..31 unused
 *   10..15 unused
 *
 * Locking: LOCK guards everything else in the region; it is held only for a
 * few arithmetic steps and never across a call out, so waiters spin (the main
 * thread may not Atomics.wait). A holder that vanishes inside the lock (a
 * terminated worker) would hang every other thread, so a waiter that has
 * seen the same holder for LOCK_STEAL_NS (1 s) takes the lock over: a lost holder
 * costs latency and slightly wrong numbers, never a hang. Functions that
 * need the lock held end in `Locked`.
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
import { threadId } from 'node:worker_threads';
import { InvalidArgTypeError, OutOfRangeError } from './errors.js';

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

const LOCK_STEAL_NS = 1_000_000_000n;

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
  /** Nesting of stallEnter() in this thread: only the outermost counts. */
  #depth = 0;
  #started = false;
  #sampler: ReturnType<typeof setTimeout> | undefined;

  constructor(sab: SharedArrayBuffer, byteOffset: number) {
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
    this.#lock();
    if (this.#i32[INIT] === 0) {
      const now = process.hrtime.bigint();
      this.#i64[STATE_START] = now;
      this.#i64[AVG_LAST_UPDATE] = now;
      this.#i64[AVG_NEXT_UPDATE] = now + PSI_FREQ_NS;
      this.#i32[INIT] = 1;
    }
    this.#unlock();
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
    this.#lock();
    this.#updateLocked(process.hrtime.bigint());
    const some = [i32[AVG_SOME]!, i32[AVG_SOME + 1]!, i32[AVG_SOME + 2]!];
    const full = [i32[AVG_FULL]!, i32[AVG_FULL + 1]!, i32[AVG_FULL + 2]!];
    const someTotal = i64[SOME_TOTAL]!;
    const fullTotal = i64[FULL_TOTAL]!;
    this.#unlock();
    return { some: line(some, someTotal), full: line(full, fullTotal) };
  }

  /**
   * Samples the averages on time even when no thread touches the pool
   * (psi_avgs_work). One timer per thread, unref()'d; returns its stop.
   */
  startSampler(): () => void {
    const tick = (): void => {
      this.#lock();
      const now = process.hrtime.bigint();
      this.#updateLocked(now);
      const next = this.#i64[AVG_NEXT_UPDATE]!;
      this.#unlock();
      // Like the kernel's schedule_delayed_work(expires - now + 1): just after the due time.
      this.#sampler = setTimeout(tick, Number((next - now) / 1_000_000n) + 1).unref();
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
    this.#lock();
    const now = process.hrtime.bigint();
    this.#updateLocked(now);
    const total = this.#i64[kind === 'some' ? SOME_TOTAL : FULL_TOTAL]!;
    this.#unlock();
    return { now, total };
  }

  /** A state change: account the time since the last one under the old state, then apply. */
  #change(word: number, delta: number, stalledDelta: number): void {
    this.#lock();
    this.#updateLocked(process.hrtime.bigint());
    this.#i32[word]! += delta;
    if (stalledDelta !== 0) this.#i32[NR_STALLED]! += stalledDelta;
    this.#unlock();
  }

  /** record_times() up to `now`, then update_averages() if they are due. */
  #updateLocked(now: bigint): void {
    const i32 = this.#i32;
    const i64 = this.#i64;
    const start = i64[STATE_START]!;
    if (now > start) {
      const delta = now - start;
      i64[STATE_START] = now;
      const stalled = i32[NR_STALLED]!;
      if (stalled > 0) {
        i64[SOME_TOTAL]! += delta;
        if (stalled >= i32[NR_ACTIVE]!) i64[FULL_TOTAL]! += delta;
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

  #lock(): void {
    if (Atomics.compareExchange(this.#i32, LOCK, 0, threadId + 1) !== 0) this.#lockSlow();
  }

  #lockSlow(): void {
    const me = threadId + 1;
    let holder = 0;
    let since = 0n;
    for (let spins = 1; ; spins++) {
      const seen = Atomics.compareExchange(this.#i32, LOCK, 0, me);
      if (seen === 0) return;
      if (spins % 1024 !== 0) continue;
      const now = process.hrtime.bigint();
      if (seen !== holder) {
        holder = seen;
        since = now;
      } else if (now - since > LOCK_STEAL_NS && Atomics.compareExchange(this.#i32, LOCK, seen, me) === seen) {
        return; // the holder vanished inside the lock: take it over
      }
    }
  }

  #unlock(): void {
    Atomics.store(this.#i32, LOCK, 0);
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

function validateTrigger(opts: PsiTriggerOptions, cb: unknown): PsiTriggerOptions {
  if (opts === null || typeof opts !== 'object') {
    throw new InvalidArgTypeError(`trigger(opts): opts must be { kind, stallUs, windowUs }; received ${opts === null ? 'null' : typeof opts}`);
  }
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
