/**
 * The live board: one SharedArrayBuffer of Int32 words that every worker of
 * a policy run writes its counters to and the main thread reads at any
 * moment — also while a worker is blocked in an allocation and cannot post
 * a message. Every access is an Atomics operation; times are whole
 * milliseconds since the run's origin (clock()).
 *
 * Layout: BOARD_WORDS words of the run (BOARD_WORD), then SLOT_WORDS words (SLOT_WORD) per worker slot.
 * A slot belongs to one worker index; a respawned worker (a new
 * generation) keeps adding to the same slot.
 */

/** Global words. */
export const BOARD_WORD = {
  /** 1 once the main thread asks the workers to stop. */
  STOP: 0,
  /** 1 while the filesystem is read-only (ext4's errors=remount-ro). */
  RO: 1,
  /** When it went read-only (ms). */
  RO_AT: 2,
  /** How many times it went read-only. */
  RO_FLIPS: 3,
  /** ms + 1 when the run started (the workers' schedules count from it); 0 before. */
  START: 4,
  /**
   * The 2015 scene (workloads/scene.ts): its state (SCENE_STATE), and the
   * times (ms + 1 since the clock origin; 0: not yet) and slots (+ 1) of
   * its steps. Written by the cueing worker and the holder, read by the
   * main thread for the report.
   */
  SCENE: 5,
  SCENE_CUE_SLOT: 6,
  SCENE_HOLDER_SLOT: 7,
  SCENE_CUED_AT: 8,
  SCENE_LOCKED_AT: 9,
  /** The cueing worker is about to block on the fs lock. */
  SCENE_QUEUED_AT: 10,
  /** The cueing worker got the fs lock. */
  SCENE_ACQUIRED_AT: 11,
  /** The holder's transaction unlocked the fs lock, and how it ended (1 ok, 2 failed, 3 refused, 4 error). */
  SCENE_RELEASED_AT: 12,
  SCENE_HOLDER_OUTCOME: 13,
  /** The cueing worker's transaction ended before the lock (refused): the holder was let go. */
  SCENE_ABORTED_AT: 14,
  /** The holder's longest allocation in its transaction, µs (written when it releases the lock). */
  SCENE_HOLDER_WAIT_US: 15,
} as const;
const BOARD_WORDS = 16;

/** Per-worker words. */
export const SLOT_WORD = {
  ISSUED: 0,
  /** Operations that did their work. */
  OK: 1,
  /** Operations that failed part-way (an fs transaction that failed, a net burst dropped, …). */
  FAILED: 2,
  /** fs transactions refused before they began (read-only, or the worst case could not be reserved). */
  REFUSED: 3,
  ALLOCS: 4,
  ALLOC_FAILS: 5,
  /** Allocations that took over a second. */
  STALLS: 6,
  /** Pages the workload holds now. */
  HELD: 7,
  /** Pages set aside by the policy and not used yet (reservations, preallocation). */
  IDLE: 8,
  /** Times a worker in this slot was OOM-killed. */
  KILLS: 9,
  GEN: 10,
  /** Digest of the operations issued (FNV-1a, as int32). */
  DIGEST: 11,
  /** 1 while a worker runs in the slot. */
  ALIVE: 12,
  /** ms + 1 when the allocation in flight began; 0 when none. */
  ALLOC_SINCE: 13,
  /** ms of the last successful operation. */
  LAST_OK: 14,
  /** Peak of HELD. */
  HELD_PEAK: 15,
  /** Pages set aside and unused, integrated over time (page·µs). */
  IDLE_PUS: 16,
  /** Digest of the first DIGEST_FIRST_OPS operations issued (plan.ts; FNV-1a, as int32). */
  DIGEST_FIRST: 17,
  /** ms + 1 when the worker began to wait for the fs lock (or the scene's gate); 0 when not waiting. */
  LOCK_SINCE: 18,
} as const;
const SLOT_WORDS = 20;

export type BoardSlot = Record<keyof typeof SLOT_WORD, number>;

export class Board {
  readonly sab: SharedArrayBuffer;
  readonly #w: Int32Array;

  constructor(sabOrSlots: SharedArrayBuffer | number) {
    this.sab = typeof sabOrSlots === 'number' ? new SharedArrayBuffer(4 * (BOARD_WORDS + SLOT_WORDS * sabOrSlots)) : sabOrSlots;
    this.#w = new Int32Array(this.sab);
  }

  get slots(): number {
    return (this.#w.length - BOARD_WORDS) / SLOT_WORDS;
  }

  g(word: number): number {
    return Atomics.load(this.#w, word);
  }

  setG(word: number, v: number): void {
    Atomics.store(this.#w, word, v);
  }

  casG(word: number, expect: number, v: number): boolean {
    return Atomics.compareExchange(this.#w, word, expect, v) === expect;
  }

  addG(word: number, n = 1): void {
    Atomics.add(this.#w, word, n);
  }

  /** Resolves when the global word is no longer `expect`, or after `ms`. */
  async waitG(word: number, expect: number, ms: number): Promise<void> {
    const r = Atomics.waitAsync(this.#w, word, expect, ms);
    if (r.async) await r.value;
  }

  notifyG(word: number): void {
    Atomics.notify(this.#w, word);
  }

  get(slot: number, word: number): number {
    return Atomics.load(this.#w, BOARD_WORDS + slot * SLOT_WORDS + word);
  }

  set(slot: number, word: number, v: number): void {
    Atomics.store(this.#w, BOARD_WORDS + slot * SLOT_WORDS + word, v);
  }

  add(slot: number, word: number, n = 1): void {
    Atomics.add(this.#w, BOARD_WORDS + slot * SLOT_WORDS + word, n);
  }

  /** HELD += n, keeping HELD_PEAK. */
  hold(slot: number, n: number): void {
    const i = BOARD_WORDS + slot * SLOT_WORDS;
    const v = Atomics.add(this.#w, i + SLOT_WORD.HELD, n) + n;
    if (v > Atomics.load(this.#w, i + SLOT_WORD.HELD_PEAK)) Atomics.store(this.#w, i + SLOT_WORD.HELD_PEAK, v);
  }

  /** HELD = v, keeping HELD_PEAK. */
  setHeld(slot: number, v: number): void {
    const i = BOARD_WORDS + slot * SLOT_WORDS;
    Atomics.store(this.#w, i + SLOT_WORD.HELD, v);
    if (v > Atomics.load(this.#w, i + SLOT_WORD.HELD_PEAK)) Atomics.store(this.#w, i + SLOT_WORD.HELD_PEAK, v);
  }

  read(slot: number): BoardSlot {
    const out = {} as BoardSlot;
    for (const [k, v] of Object.entries(SLOT_WORD)) out[k as keyof typeof SLOT_WORD] = this.get(slot, v);
    return out;
  }
}

/** Milliseconds since `origin` (an epoch-based time from now()), comparable across threads. */
export function since(origin: number): number {
  return performance.timeOrigin + performance.now() - origin;
}

/** An epoch-based time in ms with sub-ms precision, the same clock in every thread. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}
